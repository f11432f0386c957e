import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { Portico } from '../../app/app.js';
import { rawRequest, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';

/** HTTP/1.1 semantics through the proxy: pipelining, framing, versions, limits and deadlines. */
describe('http semantics through the proxy', () => {
  let echo: Origin;
  let p: Portico;
  let port = 0;

  before(async () => {
    echo = await startOrigin('echo', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (req.url === '/chunked-out') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('part1-');
          setTimeout(() => res.end('part2'), 20);
          return;
        }
        const text = `${req.method} ${req.url} ${body.length}:${body}`;
        res.writeHead(200, {
          'content-type': 'text/plain',
          'content-length': String(Buffer.byteLength(text)),
          'x-method': req.method ?? '',
          'x-version': req.httpVersion,
        });
        res.end(text);
      });
    });
    ({ p, port } = await startPortico(
      webConfig([{ name: 'web', servers: [{ name: 'echo', address: echo.address }] }], {
        limits: { headerTimeout: '300ms', keepAliveTimeout: '400ms', maxBodyBytes: 1000, maxRequestsPerConnection: 3, maxConnections: 50 },
        routes: [{ pool: 'web' }],
      }),
    ));
  });

  after(async () => {
    await p.stop(100);
    await echo.close();
  });

  it('pipelined requests are answered in order on one connection', async () => {
    const out = await rawRequest(
      port,
      'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const bodies = [...out.matchAll(/GET (\/\w) 0:/g)].map((m) => m[1]);
    assert.deepEqual(bodies, ['/a', '/b', '/c']);
  });

  it('a chunked request body reaches the server intact', async () => {
    const out = await rawRequest(
      port,
      'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n1;ext=v\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n',
    );
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.ok(out.endsWith('\r\n\r\nPOST /up 11:hello world'), out);
  });

  it('a chunked response is relayed chunked', async () => {
    const out = await rawRequest(port, 'GET /chunked-out HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out, /\r\nTransfer-Encoding: chunked\r\n/i);
    assert.ok(out.includes('part1-') && out.includes('part2') && out.endsWith('0\r\n\r\n'), out);
  });

  it('an HTTP/1.0 client gets keep-alive only when it asks, and the server sees 1.0', async () => {
    const out = await rawRequest(port, 'GET /ten HTTP/1.0\r\nHost: x\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.match(out, /\r\nConnection: close\r\n/i);
    assert.match(out, /\r\nx-version: 1\.0\r\n/i);
    const ka = await rawRequest(port, 'GET /ten HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /ten2 HTTP/1.0\r\nHost: x\r\n\r\n');
    assert.equal((ka.match(/HTTP\/1\.1 200 /g) ?? []).length, 2);
    assert.match(ka, /\r\nConnection: keep-alive\r\n/i);
  });

  it('HEAD gets the head only', async () => {
    const out = await rawRequest(port, 'HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.ok(out.endsWith('\r\n\r\n'), 'no body after a HEAD response');
  });

  it('Expect: 100-continue is relayed and the body follows', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/cont', headers: { expect: '100-continue', 'content-length': '4' }, agent: false });
      req.on('continue', () => req.end('data'));
      req.on('response', (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
    });
    assert.equal(body, 'POST /cont 4:data');
  });

  it('a chunked body over maxBodyBytes is cut with 413', async () => {
    const big = 'a'.repeat(600);
    const out = await rawRequest(port, [
      'POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      `258\r\n${big}\r\n`,
      `258\r\n${big}\r\n0\r\n\r\n`,
    ]);
    assert.match(out, /^HTTP\/1\.1 413 /);
  });

  it('a request head not complete within headerTimeout gets 408 and the connection closes', async () => {
    const t0 = Date.now();
    const out = await rawRequest(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n', 3000);
    assert.match(out, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - t0 < 1500, `${Date.now() - t0} ms`);
  });

  it('an idle keep-alive connection is closed after keepAliveTimeout', async () => {
    const sock = connect(port, '127.0.0.1');
    let closedAt = 0;
    sock.on('close', () => (closedAt = Date.now()));
    sock.on('data', () => {});
    sock.write('GET /k HTTP/1.1\r\nHost: x\r\n\r\n');
    const t0 = Date.now();
    await waitFor(() => closedAt > 0, 15_000, 'idle close');
    assert.ok(closedAt - t0 >= 300 && closedAt - t0 < 1500, `${closedAt - t0} ms`);
  });

  it('maxRequestsPerConnection closes the connection after that many requests', async () => {
    const reqs = Array.from({ length: 5 }, (_, i) => `GET /m${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join('');
    const out = await rawRequest(port, reqs);
    assert.equal((out.match(/HTTP\/1\.1 200 /g) ?? []).length, 3);
    assert.match(out, /\r\nConnection: close\r\n/i);
  });
});
