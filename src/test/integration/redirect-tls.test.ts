import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned, type TestCert } from '../../test-helpers/certs.js';
import { rawRequest, waitFor } from '../../test-helpers/origins.js';

const skip = missingBinary('openssl');

function fingerprint(cert: TestCert): string {
  return createHash('sha256').update(Buffer.from(cert.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64')).digest('hex');
}

/** Handshake only: the certificate the server presented, and whether the session was resumed. */
function handshake(port: number, opts: ConnectionOptions): Promise<{ fp: string; reused: boolean; session: Buffer | undefined; alpn: string | false | null; sock: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      const raw = s.getPeerCertificate(false).raw as Buffer | undefined; // absent on a resumed session
      const fp = raw === undefined ? '' : createHash('sha256').update(raw).digest('hex');
      // A TLS 1.3 ticket arrives after the handshake: give it a moment.
      setTimeout(() => resolve({ fp, reused: s.isSessionReused(), session: s.getSession(), alpn: s.alpnProtocol, sock: s }), 30);
    });
    s.on('error', reject);
  });
}

/** One request over TLS, the server's certificate verified against `ca` for `servername`. */
function httpsGet(port: number, path: string, servername: string, ca: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername, ca, headers: { host: servername }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const SERVERS = [
  { name: 'server3', address: '127.0.0.1:9', url: 'https://server3.example.com' },
  { name: 'server4', address: '127.0.0.1:9', url: 'https://server4.example.com/mirror/' },
];

describe('redirect listener over TLS', { skip }, () => {
  let lb: TestCert;
  let other: TestCert;
  let p: Portico;
  let port = 0;

  before(async () => {
    lb = selfSigned(['lb.example.com']);
    other = selfSigned(['other.example.com', '*.other.example.com']);
    p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [
        {
          name: 'mirror',
          protocol: 'redirect',
          listen: '127.0.0.1:0',
          pool: 'web',
          tls: { certificates: [{ cert: lb.certFile, key: lb.keyFile }, { cert: other.certFile, key: other.keyFile }] },
        },
      ],
      pools: [{ name: 'web', balance: 'roundrobin', servers: SERVERS }],
    });
    await p.start();
    port = p.address('mirror')!.port;
  });
  after(async () => {
    await p.stop(100);
  });

  it("https://lb.example.com/x answers a redirect to the server's https URL (certificate verified by the client)", async () => {
    const before = p.stats.requests;
    const a = await httpsGet(port, '/x?y=1', 'lb.example.com', lb.cert);
    const b = await httpsGet(port, '/x?y=1', 'lb.example.com', lb.cert);
    assert.equal(a.status, 302);
    assert.equal(a.headers['location'], 'https://server3.example.com/x?y=1');
    assert.equal(b.headers['location'], 'https://server4.example.com/mirror/x?y=1');
    assert.equal(a.headers['cache-control'], 'no-store');
    assert.equal(p.stats.requests - before, 2, 'the TLS redirects are counted');
  });

  it('SNI picks the certificate: exact name, wildcard, and the first one without a match or without SNI', async () => {
    const cases: [ConnectionOptions, TestCert][] = [
      [{ servername: 'lb.example.com' }, lb],
      [{ servername: 'other.example.com' }, other],
      [{ servername: 'a.other.example.com' }, other],
      [{ servername: 'unknown.example.org' }, lb],
      [{}, lb],
    ];
    for (const [opts, want] of cases) {
      const h = await handshake(port, opts);
      h.sock.destroy();
      assert.equal(h.fp, fingerprint(want), JSON.stringify(opts));
      assert.equal(h.alpn, false, 'no ALPN asked, none chosen');
    }
    const h2 = await handshake(port, { servername: 'other.example.com', ALPNProtocols: ['h2', 'http/1.1'] });
    h2.sock.destroy();
    assert.equal(h2.alpn, 'http/1.1', 'a redirect listener speaks HTTP/1.1 only');
  });

  it('a plain-HTTP request on the TLS port is refused: no answer, the connection closed, counted; TLS clients go on', async () => {
    const before = p.stats.rejectedFor('mirror', 'tls-handshake');
    const text = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: lb.example.com\r\n\r\n', 3000);
    assert.equal(text, '');
    await waitFor(() => p.stats.rejectedFor('mirror', 'tls-handshake') === before + 1, 15_000, 'the refusal to be counted');
    const r = await httpsGet(port, '/after', 'lb.example.com', lb.cert);
    assert.equal(r.status, 302);
  });

  it('sessions resume (TLS 1.2 by id, TLS 1.3 by ticket)', async () => {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await handshake(port, { servername: 'lb.example.com', maxVersion });
      first.sock.destroy();
      assert.ok(first.session !== undefined);
      const again = await handshake(port, { servername: 'lb.example.com', maxVersion, session: first.session });
      again.sock.destroy();
      assert.equal(again.reused, true, maxVersion);
    }
  });
});

describe('redirect listener over TLS: certificates and configuration', { skip }, () => {
  it('a certificate replaced on disk is served after the reload check; a broken one keeps the old', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-redirect-reload-'));
    const first = selfSigned(['lb.example.com']);
    const second = selfSigned(['lb.example.com', 'new.example.com']);
    const certFile = join(dir, 'lb.pem');
    const keyFile = join(dir, 'lb.key');
    copyFileSync(first.certFile, certFile);
    copyFileSync(first.keyFile, keyFile);
    const p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web', tls: { certificates: [{ cert: certFile, key: keyFile }], reloadCheck: '100ms' } }],
      pools: [{ name: 'web', servers: SERVERS }],
    });
    await p.start();
    const port = p.address('mirror')!.port;
    try {
      const before = await handshake(port, { servername: 'lb.example.com' });
      assert.equal(before.fp, fingerprint(first));
      copyFileSync(second.keyFile, keyFile);
      copyFileSync(second.certFile, certFile);
      await waitFor(
        async () => {
          const h = await handshake(port, { servername: 'new.example.com' });
          h.sock.destroy();
          return h.fp === fingerprint(second);
        },
        15_000,
        'the new certificate',
      );
      // A client that verifies the new certificate is redirected; the connection made before the reload still works.
      assert.equal((await httpsGet(port, '/n', 'new.example.com', second.cert)).status, 302);
      assert.equal(before.sock.destroyed, false);
      before.sock.destroy();
      writeFileSync(certFile, 'not a certificate');
      await new Promise((r) => setTimeout(r, 400));
      const still = await handshake(port, { servername: 'lb.example.com' });
      still.sock.destroy();
      assert.equal(still.fp, fingerprint(second));
    } finally {
      await p.stop(100);
    }
  });

  it('a reload that adds tls rebuilds the listener on its port; one that keeps tls changes the status in place', async () => {
    const cert = selfSigned(['lb.example.com']);
    const config = (port: number, listener: Record<string, unknown>): Record<string, unknown> => ({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'mirror', protocol: 'redirect', listen: `127.0.0.1:${port}`, pool: 'web', ...listener }],
      pools: [{ name: 'web', servers: SERVERS }],
    });
    const p = createPortico(config(0, {}));
    await p.start();
    const port = p.address('mirror')!.port;
    try {
      assert.match(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 302 /);
      const tls = { certificates: [{ cert: cert.certFile, key: cert.keyFile }] };
      const r1 = await p.reload(config(port, { tls }));
      assert.ok(r1.changes.length > 0);
      assert.equal(p.address('mirror')!.port, port);
      assert.equal((await httpsGet(port, '/a', 'lb.example.com', cert.cert)).status, 302);
      assert.equal(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: lb\r\n\r\n'), '', 'plain HTTP is refused now');
      await p.reload(config(port, { tls, status: 307 }));
      assert.equal((await httpsGet(port, '/b', 'lb.example.com', cert.cert)).status, 307);
    } finally {
      await p.stop(100);
    }
  });

  it('cookie persistence over TLS sets a Secure cookie', async () => {
    const cert = selfSigned(['lb.example.com']);
    const config = (tls: unknown): Record<string, unknown> => ({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web', tls }],
      pools: [{ name: 'web', servers: SERVERS, persistence: { type: 'cookie', name: 'MIRROR' } }],
    });
    const p = createPortico(config({ certificates: [{ cert: cert.certFile, key: cert.keyFile }] }));
    await p.start();
    try {
      const r = await httpsGet(p.address('mirror')!.port, '/c', 'lb.example.com', cert.cert);
      assert.equal(r.status, 302);
      assert.match(String(r.headers['set-cookie']), /^MIRROR=[^;]+; Path=\/; .*Secure/);
    } finally {
      await p.stop(100);
    }
  });

  it('a certificate that does not load stops the start, naming the file and the key', () => {
    const good = selfSigned(['lb.example.com']);
    const mk = (cert: string): unknown => ({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web', tls: { certificates: [{ cert, key: good.keyFile }] } }],
      pools: [{ name: 'web', servers: SERVERS }],
    });
    assert.throws(() => createPortico(mk('/nonexistent.pem')), /listeners\.mirror\.tls\.certificates: \/nonexistent\.pem: cannot be read \(ENOENT\)/);
  });
});
