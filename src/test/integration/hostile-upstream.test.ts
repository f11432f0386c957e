import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import type { Portico } from '../../app/app.js';
import { rawRequest } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';
import { startRecordingOrigin, type RecordingOrigin } from '../../test-helpers/recording-origin.js';

/**
 * Hostile server responses. The server answers the request path's entry in the tables below; the
 * client must get 502 (the head is refused) or a visibly cut response (the body breaks its framing),
 * never the malformed bytes (each malformed part carries the marker EVIL), and the server
 * connection is never used again.
 */

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** Heads Portico refuses: the client gets 502 and none of the response. */
const REFUSED: [name: string, response: string][] = [
  ['two different Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['two equal Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\nEVIL'],
  ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nEVIL\r\n0\r\n\r\n'],
  ['Transfer-Encoding and Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nEVIL\r\n0\r\n\r\n'],
  ['negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\nEVIL'],
  ['hex Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 0x4\r\n\r\nEVIL'],
  ['Content-Length with a plus sign', 'HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\nEVIL'],
  ['Content-Length split by a space', 'HTTP/1.1 200 OK\r\nContent-Length: 4 4\r\n\r\nEVIL'],
  ['Content-Length overflow', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nEVIL'],
  ['Transfer-Encoding chunked twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n4\r\nEVIL\r\n0\r\n\r\n'],
  ['Transfer-Encoding with space before colon', 'HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n4\r\nEVIL\r\n0\r\n\r\n'],
  ['status 2000', 'HTTP/1.1 2000 OK\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['status 20', 'HTTP/1.1 20 OK\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['status 099', 'HTTP/1.1 099 Low\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['status with letters', 'HTTP/1.1 2O0 OK\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['a tab after the status', 'HTTP/1.1 200\tOK\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['status with a leading zero', 'HTTP/1.1 0200 OK\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['HTTP/2.0 status line', 'HTTP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['HTTP/1.1 in lowercase', 'http/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL'],
  ['HTTP/0.9 style body without a head', 'EVIL body with no status line\r\n\r\n'],
  ['obs-fold in the head', 'HTTP/1.1 200 OK\r\nX-A: a\r\n EVIL\r\nContent-Length: 2\r\n\r\nok'],
  ['bare LF line endings', 'HTTP/1.1 200 OK\nContent-Length: 4\n\nEVIL'],
  ['bare CR in the head', 'HTTP/1.1 200 OK\r\nX-A: a\rEVIL\r\nContent-Length: 2\r\n\r\nok'],
  ['NUL in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\x00EVIL\r\nContent-Length: 2\r\n\r\nok'],
  ['space before a colon', 'HTTP/1.1 200 OK\r\nX-EVIL : a\r\nContent-Length: 2\r\n\r\nok'],
  ['header line without colon', 'HTTP/1.1 200 OK\r\nEVIL\r\nContent-Length: 2\r\n\r\nok'],
  ['invalid header name character', 'HTTP/1.1 200 OK\r\nX(EVIL): a\r\nContent-Length: 2\r\n\r\nok'],
  ['response head larger than the limit', `HTTP/1.1 200 OK\r\nX-Big: EVIL${'a'.repeat(70_000)}\r\nContent-Length: 2\r\n\r\nok`],
  ['more header fields than the limit', `HTTP/1.1 200 OK\r\n${'X-EVIL: a\r\n'.repeat(300)}Content-Length: 2\r\n\r\nok`],
  ['garbage instead of a response', 'SSH-2.0-EVIL\r\n\r\n'],
  ['unsolicited 101', 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nEVIL'],
  ['1xx with Transfer-Encoding', 'HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nEVIL\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ['1xx with a Content-Length body', 'HTTP/1.1 100 Continue\r\nContent-Length: 4\r\n\r\nEVILHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
];

/** Bodies that break their framing after a valid head: the response is cut, the bad bytes never relayed. */
const CUT: [name: string, response: string][] = [
  ['chunk size not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nEVIL\r\n0\r\n\r\n'],
  ['chunk size overflow', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nEVIL\r\n0\r\n\r\n'],
  ['bare LF after a chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\nEVIL\r\n0\r\n\r\n'],
  ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokEVIL\r\n0\r\n\r\n'],
  ['chunk size with a sign', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+4\r\nEVIL\r\n0\r\n\r\n'],
  ['bare LF in a chunk extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x\nEVIL\r\n0\r\n\r\n'],
  ['obs-fold in response trailers', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: a\r\n EVIL\r\n\r\n'],
  ['bare LF ending the last chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\nEVIL\r\n\r\n'],
];

/**
 * Responses relayed, but never as received: the extra bytes after the framing (a smuggled second
 * response) are dropped and the connection is not reused. [name, response, what the client gets]
 */
const TRIMMED: [name: string, response: string, status: number][] = [
  ['a second response after Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL', 200],
  ['a body on a 204', 'HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nEVIL', 204],
  ['a body on a 304', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\nEVIL', 304],
  ['a second response after a chunked body', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL', 200],
  ['a Set-Cookie split over two lines (one field each)', 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nokEVIL', 200],
];

describe('hostile server responses', () => {
  let origin: RecordingOrigin;
  let p: Portico;
  let port = 0;
  const byPath = new Map<string, string>();
  /** path → the connection number that served it. */
  const servedOn: [string, number][] = [];
  const socketIds = new WeakMap<object, number>();
  let nextId = 0;

  before(async () => {
    [...REFUSED, ...CUT].forEach(([, res], i) => byPath.set(`/r${i}`, res));
    TRIMMED.forEach(([, res], i) => byPath.set(`/t${i}`, res));
    byPath.set('/flood', `${'HTTP/1.1 100 Continue\r\n\r\n'.repeat(5000)}${OK}`);
    byPath.set('/hints', `${'HTTP/1.1 103 Early Hints\r\nLink: </EVIL>\r\n\r\n'.repeat(2000)}${OK}`);
    origin = await startRecordingOrigin((head, s) => {
      const path = head.split(' ')[1] ?? '/';
      if (!socketIds.has(s)) socketIds.set(s, ++nextId);
      servedOn.push([path, socketIds.get(s)!]);
      return byPath.get(path) ?? OK;
    });
    ({ p, port } = await startPortico(webConfig([{ name: 'web', retries: 0, servers: [{ name: 'rec', address: `127.0.0.1:${origin.port}` }] }])));
  });

  after(async () => {
    await p.stop(100);
    await origin.close();
  });

  /** The connection that served `path` serves nothing after it. */
  async function notReused(path: string): Promise<void> {
    const ok = await rawRequest(port, 'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5000);
    assert.match(ok, /^HTTP\/1\.1 200 /);
    const at = servedOn.findIndex(([p]) => p === path);
    assert.ok(at >= 0, `${path} never reached the server`);
    const id = servedOn[at]![1];
    assert.ok(!servedOn.slice(at + 1).some(([, i]) => i === id), `the connection that served ${path} was reused`);
  }

  REFUSED.forEach(([name, _res], i) => {
    test(`response: ${name} → 502, nothing relayed`, async () => {
      const out = await rawRequest(port, `GET /r${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 5000);
      assert.match(out, /^HTTP\/1\.1 502 /);
      assert.ok(!out.includes('EVIL'), JSON.stringify(out.slice(0, 200)));
      await notReused(`/r${i}`);
    });
  });

  CUT.forEach(([name, _res], k) => {
    const i = REFUSED.length + k;
    test(`response body: ${name} → cut, bad bytes never relayed`, async () => {
      const out = await rawRequest(port, `GET /r${i} HTTP/1.1\r\nHost: x\r\n\r\n`, 5000);
      assert.match(out, /^HTTP\/1\.1 200 /);
      assert.ok(!out.includes('EVIL'), JSON.stringify(out));
      assert.ok(!out.endsWith('0\r\n\r\n'), 'the cut response must not look complete');
      await notReused(`/r${i}`);
    });
  });

  TRIMMED.forEach(([name, _res, status], i) => {
    test(`response: ${name} → relayed without the extra bytes, connection not reused`, async () => {
      const out = await rawRequest(port, `GET /t${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 5000);
      assert.match(out, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.ok(!out.includes('EVIL'), JSON.stringify(out));
      assert.equal((out.match(/HTTP\/1\.1 /g) ?? []).length, 1);
      await notReused(`/t${i}`);
    });
  });

  test('a flood of 5,000 100 Continue responses ends in the final response, bounded', async () => {
    const out = await rawRequest(port, 'GET /flood HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 10_000);
    const finals = out.match(/HTTP\/1\.1 [2-5]\d\d /g) ?? [];
    assert.equal(finals.length, 1, JSON.stringify(out.slice(-200)));
    assert.ok((out.match(/HTTP\/1\.1 100 /g) ?? []).length <= 5000);
  });

  test('a flood of 2,000 103 Early Hints ends in one final response; other clients unaffected', async () => {
    const [flooded, other] = await Promise.all([
      rawRequest(port, 'GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 10_000),
      rawRequest(port, 'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 10_000),
    ]);
    assert.equal((flooded.match(/HTTP\/1\.1 [2-5]\d\d /g) ?? []).length, 1);
    assert.match(other, /^HTTP\/1\.1 200 /);
  });
});
