import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Portico } from '../../app/app.js';
import { rawRequest, startRawServer, type RawServer } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';

/**
 * Malformed and ambiguous requests sent on raw sockets. Each must get its 4xx (or 5xx for
 * unsupported features), the connection must close, and no byte may reach the server.
 * The server here is a raw TCP listener that records everything it receives.
 */

const H = 'Host: example.com\r\n';

const CASES: [name: string, request: string | string[], status: number][] = [
  // request line
  ['garbage request line', 'HELLO\r\n\r\n', 400],
  ['HTTP/0.9 request', 'GET /\r\n\r\n', 400],
  ['lowercase version', `GET / http/1.1\r\n${H}\r\n`, 400],
  ['version 1.10', `GET / HTTP/1.10\r\n${H}\r\n`, 400],
  ['version 2.0', `GET / HTTP/2.0\r\n${H}\r\n`, 505],
  ['version 3.1', `GET / HTTP/3.1\r\n${H}\r\n`, 505],
  ['trailing junk after version', `GET / HTTP/1.1 x\r\n${H}\r\n`, 400],
  ['double space in request line', `GET  / HTTP/1.1\r\n${H}\r\n`, 400],
  ['space in target', `GET /a b HTTP/1.1\r\n${H}\r\n`, 400],
  ['control char in target', `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, 400],
  ['non-ASCII in target', `GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, 400],
  ['bad method char', `GE(T / HTTP/1.1\r\n${H}\r\n`, 400],
  ['URI too long', `GET /${'a'.repeat(9000)} HTTP/1.1\r\n${H}\r\n`, 414],
  // line endings and folding
  ['bare LF line endings', 'GET / HTTP/1.1\nHost: example.com\n\n', 400],
  ['bare LF after a header', `GET / HTTP/1.1\r\nHost: example.com\nX: y\r\n\r\n`, 400],
  ['CR without LF', `GET / HTTP/1.1\r\nHost: example.com\rX: y\r\n\r\n`, 400],
  ['obs-fold continuation', `GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, 400],
  ['obs-fold with tab', `GET / HTTP/1.1\r\n${H}X-A: one\r\n\ttwo\r\n\r\n`, 400],
  // header syntax
  ['space before colon', `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`, 400],
  ['empty header name', `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`, 400],
  ['header without colon', `GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, 400],
  ['NUL in header value', `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 400],
  ['control char in header value', `GET / HTTP/1.1\r\n${H}X-A: a\x07b\r\n\r\n`, 400],
  ['invalid char in header name', `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, 400],
  // Host
  ['missing Host on HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['two Host headers', `GET / HTTP/1.1\r\n${H}Host: evil.com\r\n\r\n`, 400],
  ['Host with a space', 'GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n', 400],
  // Content-Length / Transfer-Encoding smuggling
  ['CL then TE', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE then CL', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, 400],
  ['two equal Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, 400],
  ['two different Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400],
  ['Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello`, 400],
  ['Content-Length +5', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400],
  ['Content-Length -1', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400],
  ['Content-Length hex', `POST / HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, 400],
  ['Content-Length empty', `POST / HTTP/1.1\r\n${H}Content-Length: \r\n\r\n`, 400],
  ['Content-Length overflow', `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999\r\n\r\n`, 400],
  ['TE chunked not last', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE with tab separator', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip,\tchunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE with empty element', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked with parameter', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n`, 400],
  ['TE identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 400],
  ['TE on HTTP/1.0', `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['two TE headers ending in gzip', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n`, 400],
  // chunked bodies (the head is valid, the body is not: the request is cut before the server sees the bad bytes)
  // limits
  ['too many headers', `GET / HTTP/1.1\r\n${H}${'X-A: b\r\n'.repeat(120)}\r\n`, 431],
  ['header section too large', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20000)}\r\n\r\n`, 431],
  ['body larger than maxBodyBytes', `POST / HTTP/1.1\r\n${H}Content-Length: 2000000\r\n\r\n`, 413],
  ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
  // Connection nominating a field that frames or routes the request (issue 16, defects 1 and 3)
  ['Connection: Content-Length smuggling', `POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 36\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['Connection: Host', `GET / HTTP/1.1\r\n${H}Connection: Host\r\n\r\n`, 400],
  ...['content-length', 'CONTENT-LENGTH', 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-forwarded-client-cert', 'x-client-verify'].map(
    (f): [string, string, number] => [`Connection: keep-alive, ${f}`, `GET / HTTP/1.1\r\n${H}Connection: keep-alive, ${f}\r\n\r\n`, 400],
  ),
  ['second Connection header nominating Content-Length', `POST / HTTP/1.1\r\n${H}Connection: keep-alive\r\nConnection: content-length\r\nContent-Length: 1\r\n\r\nx`, 400],
  ['Connection with a non-token option', `GET / HTTP/1.1\r\n${H}Connection: close;x\r\n\r\n`, 400],
  ['Connection options separated by space', `GET / HTTP/1.1\r\n${H}Connection: close keep-alive\r\n\r\n`, 400],
];

describe('hostile requests never reach a server', () => {
  let backend: RawServer;
  const received: Buffer[] = [];
  let p: Portico;
  let port = 0;

  before(async () => {
    backend = await startRawServer((s) => {
      s.on('data', (c) => {
        received.push(c);
        // answers GET heads only; a POST is left waiting for its body
        if (c.toString('latin1').startsWith('GET ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    ({ p, port } = await startPortico(
      webConfig([{ name: 'web', servers: [{ name: 'raw', address: `127.0.0.1:${backend.port}` }] }], { limits: { maxBodyBytes: 1_000_000 } }),
    ));
  });

  after(async () => {
    await p.stop(100);
    await backend.close();
  });

  it('the suite has at least 40 cases', () => {
    assert.ok(CASES.length >= 60, `${CASES.length} cases`);
  });

  it('a valid request does reach the server (control)', async () => {
    const out = await rawRequest(port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 200/);
    assert.equal(received.length, 1);
    received.length = 0;
  });

  for (const [name, request, status] of CASES) {
    it(`${name} → ${status}`, async () => {
      received.length = 0;
      const out = await rawRequest(port, request, 3000);
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(out);
      assert.ok(m !== null, `no status line in ${JSON.stringify(out.slice(0, 80))}`);
      assert.equal(Number(m[1]), status);
      assert.match(out, /\r\nConnection: close\r\n/i);
      assert.equal(received.length, 0, `server received: ${Buffer.concat(received).toString('latin1').slice(0, 100)}`);
    });
  }

  it('a bad chunk size in a body is cut: the client gets 400 and the connection closes', async () => {
    received.length = 0;
    const out = await rawRequest(port, [
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`,
      '0x5\r\nhello\r\n0\r\n\r\n',
    ]);
    // The head was valid and may have been forwarded; the invalid chunk never is.
    const seen = Buffer.concat(received).toString('latin1');
    assert.ok(!seen.includes('0x5'), 'bad chunk forwarded');
    assert.match(out, /^HTTP\/1\.1 400 /);
  });

  it('a chunk size that overflows is cut', async () => {
    received.length = 0;
    const out = await rawRequest(port, [
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`,
      'fffffffffffffffffff\r\nhello\r\n0\r\n\r\n',
    ]);
    const seen = Buffer.concat(received).toString('latin1');
    assert.ok(!seen.includes('fffffffffffffffffff'), 'bad chunk forwarded');
    assert.match(out, /^HTTP\/1\.1 400 /);
  });

  it('smuggling via a pipelined second request after a bad one is never forwarded', async () => {
    received.length = 0;
    const out = await rawRequest(
      port,
      `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`,
    );
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.equal((out.match(/HTTP\/1\.1/g) ?? []).length, 1);
    assert.equal(received.length, 0);
  });
});
