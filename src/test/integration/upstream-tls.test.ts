import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned, testCa, type TestCa, type TestCert } from '../../test-helpers/certs.js';

const skip = missingBinary('openssl');

interface HttpsOrigin {
  readonly port: number;
  /** TLS connections accepted, and how many resumed a session. */
  connections: number;
  resumed: number;
  /** X-Forwarded-Proto and the request count. */
  requests: number;
  close(): Promise<void>;
}

async function startHttpsOrigin(cert: TestCert, name: string): Promise<HttpsOrigin> {
  const server: HttpsServer = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    o.requests++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${name} ${(req.socket as TLSSocket).encrypted ? 'tls' : 'plain'}`);
  });
  const o = {
    port: 0,
    connections: 0,
    resumed: 0,
    requests: 0,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  server.on('secureConnection', (s: TLSSocket) => {
    o.connections++;
    if (s.isSessionReused()) o.resumed++;
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  o.port = (server.address() as { port: number }).port;
  return o;
}

function get(port: number, agent = false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startHttp(tls: unknown, port: number): Promise<{ p: Portico; port: number }> {
  const p = createPortico({
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'secure' }] }],
    pools: [{ name: 'secure', retries: 0, tls, servers: [{ name: 's1', address: `127.0.0.1:${port}` }] }],
  });
  await p.start();
  return { p, port: p.address('web')!.port };
}

describe('TLS toward servers (pool tls)', { skip }, () => {
  let ca: TestCa;
  let good: HttpsOrigin;
  let selfSignedOrigin: HttpsOrigin;
  before(async () => {
    ca = testCa();
    good = await startHttpsOrigin(ca.issue(['localhost', '127.0.0.1']), 'good');
    selfSignedOrigin = await startHttpsOrigin(selfSigned(['127.0.0.1']), 'self');
  });
  after(async () => {
    await good?.close();
    await selfSignedOrigin?.close();
  });

  it('verifies the server against the pool CA, and reuses the TLS connection (keep-alive)', async () => {
    const { p, port } = await startHttp({ ca: ca.certFile }, good.port);
    try {
      const before = good.connections;
      for (let i = 0; i < 5; i++) {
        const r = await get(port);
        assert.equal(r.status, 200);
        assert.equal(r.body, 'good tls');
      }
      assert.equal(good.connections - before, 1, 'one TLS connection for five requests');
    } finally {
      await p.stop(100);
    }
  });

  it('refuses a server whose certificate does not verify: 502, nothing sent to it', async () => {
    const noCa = await startHttp(true, selfSignedOrigin.port);
    const wrongName = await startHttp({ ca: ca.certFile, servername: 'other.example.com' }, good.port);
    try {
      const before = selfSignedOrigin.requests;
      assert.equal((await get(noCa.port)).status, 502);
      assert.equal(selfSignedOrigin.requests, before);
      assert.equal((await get(wrongName.port)).status, 502);
    } finally {
      await noCa.p.stop(100);
      await wrongName.p.stop(100);
    }
  });

  it('verify: false accepts any certificate', async () => {
    const { p, port } = await startHttp({ verify: false }, selfSignedOrigin.port);
    try {
      const r = await get(port);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'self tls');
    } finally {
      await p.stop(100);
    }
  });

  it('new connections resume the TLS session of the previous one', async () => {
    // No idle connection is kept, so every request opens a new TLS connection.
    const p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'secure' }] }],
      pools: [{ name: 'secure', keepAlive: { maxIdlePerServer: 0 }, tls: { ca: ca.certFile }, servers: [{ name: 's1', address: `127.0.0.1:${good.port}` }] }],
    });
    await p.start();
    try {
      const port = p.address('web')!.port;
      const before = { c: good.connections, r: good.resumed };
      for (let i = 0; i < 4; i++) assert.equal((await get(port)).status, 200);
      assert.equal(good.connections - before.c, 4);
      assert.equal(good.resumed - before.r, 3, 'every connection after the first resumed');
    } finally {
      await p.stop(100);
    }
  });

  it('a tcp listener can speak TLS to its servers too', async () => {
    const p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'l4', protocol: 'tcp', listen: '127.0.0.1:0', pool: 'secure' }],
      pools: [{ name: 'secure', tls: { ca: ca.certFile }, servers: [{ name: 's1', address: `127.0.0.1:${good.port}` }] }],
    });
    await p.start();
    try {
      const port = p.address('l4')!.port;
      const text = await new Promise<string>((resolve) => {
        let out = '';
        const s = connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
        s.on('data', (c: Buffer) => (out += c.toString()));
        s.on('close', () => resolve(out));
        s.on('error', () => resolve(out));
      });
      assert.match(text, /^HTTP\/1\.1 200/);
      assert.match(text, /good tls/);
    } finally {
      await p.stop(100);
    }
  });

  it('a CA file that cannot be read stops the start with the pool named', () => {
    assert.throws(
      () =>
        createPortico({
          log: { level: 'error' },
          admin: { enabled: false },
          listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'secure' }] }],
          pools: [{ name: 'secure', tls: { ca: '/nonexistent/ca.pem' }, servers: [{ name: 's1', address: '127.0.0.1:1' }] }],
        }),
      /pool secure: tls\.ca: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/,
    );
  });
});
