import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Portico } from '../../app/app.js';
import { rawRequest, startRawServer, type RawServer } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';

/**
 * A raw server that answers each request with a response chosen by the request path,
 * so that framing anomalies can be served on purpose. It counts its connections.
 */
const RESPONSES: Record<string, string> = {
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  '/dup-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
  '/bad-cl': 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok',
  '/extra': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA-BYTES',
  '/bad-status': 'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok',
  '/obs-fold': 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok',
  '/bare-lf': 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
  '/garbage': 'SSH-2.0-OpenSSH_9.2\r\n',
  '/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  '/close-delimited': 'HTTP/1.1 200 OK\r\n\r\nuntil close',
};

describe('responses with framing anomalies', () => {
  let backend: RawServer;
  let connections = 0;
  /** path → the id of the connection that served it, in order. */
  const servedOn: [string, number][] = [];
  let p: Portico;
  let port = 0;

  before(async () => {
    backend = await startRawServer((s) => {
      const id = ++connections;
      let buf = '';
      s.on('data', (c) => {
        buf += c.toString('latin1');
        let end: number;
        while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
          const head = buf.slice(0, end);
          buf = buf.slice(end + 4);
          const path = head.split(' ')[1] ?? '/';
          const res = RESPONSES[path] ?? RESPONSES['/ok']!;
          servedOn.push([path, id]);
          s.write(res);
          if (path === '/close-delimited') s.end();
        }
      });
    });
    ({ p, port } = await startPortico(webConfig([{ name: 'web', retries: 0, servers: [{ name: 'raw', address: `127.0.0.1:${backend.port}` }] }])));
  });

  after(async () => {
    await p.stop(100);
    await backend.close();
  });

  /** After an anomaly on `path`, further requests never run on the connection that served it. */
  async function assertNotReused(path: string): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const ok = await rawRequest(port, 'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(ok, /^HTTP\/1\.1 200 /);
    }
    const bad = servedOn.filter(([p]) => p === path).map(([, id]) => id);
    assert.equal(bad.length, 1);
    const later = servedOn.slice(servedOn.findIndex(([p]) => p === path) + 1);
    assert.ok(!later.some(([, id]) => id === bad[0]), `connection ${bad[0]} was reused after ${path}`);
  }

  for (const path of ['/cl-te', '/dup-cl', '/bad-cl', '/bad-status', '/obs-fold', '/bare-lf', '/garbage']) {
    it(`${path}: the client gets 502 and the server connection is not reused`, async () => {
      const out = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(out, /^HTTP\/1\.1 502 /);
      await assertNotReused(path);
    });
  }

  it('bytes after a complete response: the response is relayed, the connection is never reused', async () => {
    const out = await rawRequest(port, 'GET /extra HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.ok(out.endsWith('\r\n\r\nok'), JSON.stringify(out));
    await assertNotReused('/extra');
  });

  it('a bad chunk in a response truncates it visibly (the client connection is cut)', async () => {
    const out = await rawRequest(port, 'GET /bad-chunk HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.ok(!out.includes('0\r\n\r\n'), 'no final chunk reaches the client');
  });

  it('a close-delimited response is relayed whole and the client connection closes after it', async () => {
    const out = await rawRequest(port, 'GET /close-delimited HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.match(out, /\r\nConnection: close\r\n/);
    assert.ok(out.endsWith('until close'));
  });

  it('a pooled connection is reused for ordinary responses', async () => {
    const before = connections;
    const out = await rawRequest(
      port,
      'GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.equal((out.match(/HTTP\/1\.1 200 /g) ?? []).length, 3);
    assert.ok(connections - before <= 1);
  });
});
