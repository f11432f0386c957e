import { strict as assert } from 'node:assert';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import { startOrigin, type Origin } from '../../test-helpers/origins.js';
import { connect as tlsConnect } from 'node:tls';

const skip = missingBinary('openssl');

interface H2Answer {
  status: number;
  body: string;
  trailers: Record<string, unknown> | undefined;
  rstCode: number;
}

function h2get(client: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':path': path, ':authority': 'www.example.com', ...headers });
    let status = 0;
    let body = '';
    let trailers: Record<string, unknown> | undefined;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('trailers', (t) => (trailers = Object.fromEntries(Object.entries(t))));
    req.on('close', () => resolve({ status, body, trailers, rstCode: req.rstCode ?? 0 }));
    req.on('error', () => {});
    setTimeout(() => reject(new Error('timeout')), 5000).unref();
    req.end();
  });
}

describe('h2: response trailers from an HTTP/1.1 server', { skip }, () => {
  let origin: Origin;
  let p: Portico;
  let port: number;
  let client: ClientHttp2Session;
  /** The TE field each request reached the server with. */
  const seenTe: (string | undefined)[] = [];
  before(async () => {
    origin = await startOrigin('o1', (req, res) => {
      seenTe.push(req.headers.te as string | undefined);
      req.resume();
      req.on('end', () => {
        if (req.url === '/grpc') {
          res.writeHead(200, { 'content-type': 'application/grpc', trailer: 'grpc-status, grpc-message' });
          res.write('message one;');
          setTimeout(() => {
            res.write('message two');
            res.addTrailers([
              ['grpc-status', '0'],
              ['grpc-message', 'all good'],
              ['x-checksum', 'a'],
              ['X-Checksum', 'b'],
              // Fields that may not be trailers: dropped.
              ['content-type', 'text/html'],
              ['set-cookie', 'sid=1'],
              ['content-length', '3'],
              ['location', '/elsewhere'],
              ['cache-control', 'no-store'],
            ]);
            res.end();
          }, 10);
          return;
        }
        if (req.url === '/chunked') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('no ');
          res.end('trailers');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 6 });
        res.end('length');
      });
    });
    const cert = selfSigned(['www.example.com']);
    p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] }, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await p.start();
    port = p.address('s')!.port;
    client = h2connect(`https://127.0.0.1:${port}`, { servername: 'www.example.com', rejectUnauthorized: false });
  });
  after(async () => {
    client?.destroy();
    await p?.stop(100);
    await origin?.close();
  });

  it('a chunked response with trailers ends with a trailing HEADERS frame; forbidden fields are dropped; TE: trailers reaches the server', async () => {
    seenTe.length = 0;
    const r = await h2get(client, '/grpc', { te: 'trailers' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'message one;message two');
    assert.equal(r.rstCode, 0);
    assert.deepEqual(r.trailers, { 'grpc-status': '0', 'grpc-message': 'all good', 'x-checksum': 'a, b' });
    assert.deepEqual(seenTe, ['trailers']);
  });

  it('a client that did not send TE: trailers gets them too (HTTP/2 always carries them)', async () => {
    seenTe.length = 0;
    const r = await h2get(client, '/grpc');
    assert.equal(r.trailers?.['grpc-status'], '0');
    assert.deepEqual(seenTe, [undefined], 'no TE toward the server for a client that did not send it');
  });

  it('without trailers: a chunked body ends cleanly, no trailers event; a content-length body is unchanged', async () => {
    const c = await h2get(client, '/chunked', { te: 'trailers' });
    assert.equal(c.body, 'no trailers');
    assert.equal(c.trailers, undefined);
    assert.equal(c.rstCode, 0);
    const l = await h2get(client, '/length');
    assert.equal(l.body, 'length');
    assert.equal(l.trailers, undefined);
  });

  it('HTTP/1.1 clients get the trailer section as the server sent it; their TE: trailers reaches the server', async () => {
    seenTe.length = 0;
    const raw = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'www.example.com', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
        s.write('GET /grpc HTTP/1.1\r\nHost: www.example.com\r\nTE: trailers\r\nConnection: close, TE\r\n\r\n');
      });
      let out = '';
      s.on('data', (c: Buffer) => (out += c.toString('latin1')));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    assert.match(raw, /\r\n0\r\ngrpc-status: 0\r\ngrpc-message: all good\r\n/);
    assert.deepEqual(seenTe, ['trailers']);
  });
});
