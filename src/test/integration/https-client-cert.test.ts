import { strict as assert } from 'node:assert';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned, testPki, type PkiCert, type TestCert, type TestPki } from '../../test-helpers/certs.js';
import { rawRequest, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';

const skip = missingBinary('openssl');

interface Answer {
  status: number;
  /** The headers the server received (from the echo origin), or undefined for Portico's own answers. */
  seen: Record<string, string> | undefined;
  body: string;
}

interface ClientOpts {
  cert?: TestCert | undefined;
  headers?: Record<string, string>;
  session?: Buffer | undefined;
}

/** One HTTP/1.1 request over a new TLS connection; rejects when the connection fails. */
function get11(port: number, path: string, o: ClientOpts = {}): Promise<Answer & { session: Buffer | undefined; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: 'www.example.com',
        rejectUnauthorized: false,
        agent: false,
        headers: { host: 'www.example.com', ...o.headers },
        ...(o.cert === undefined ? {} : { cert: o.cert.cert, key: o.cert.key }),
        ...(o.session === undefined ? {} : { session: o.session }),
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          const sock = res.socket as import('node:tls').TLSSocket;
          resolve({ status: res.statusCode ?? 0, seen: parseSeen(res.headers['content-type'], body), body, session: sock.getSession(), reused: sock.isSessionReused() });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** One h2 request on a new connection; rejects when the connection or stream fails. */
function get2(port: number, path: string, o: ClientOpts = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const client = h2connect(`https://127.0.0.1:${port}`, {
      servername: 'www.example.com',
      rejectUnauthorized: false,
      ...(o.cert === undefined ? {} : { cert: o.cert.cert, key: o.cert.key }),
    });
    const done = (err: Error | undefined, a?: Answer): void => {
      client.close();
      client.destroy();
      if (err !== undefined) reject(err);
      else resolve(a!);
    };
    client.on('error', (e) => done(e));
    const timer = setTimeout(() => done(new Error('timeout')), 5000);
    const req = client.request({ ':path': path, ':authority': 'www.example.com', ...o.headers });
    let h: Record<string, unknown> = {};
    let body = '';
    req.on('response', (r) => (h = r));
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      clearTimeout(timer);
      if (h[':status'] === undefined) return done(new Error('no response'));
      done(undefined, { status: Number(h[':status']), seen: parseSeen(h['content-type'] as string | undefined, body), body });
    });
    req.on('error', (e) => {
      clearTimeout(timer);
      done(e);
    });
    req.on('close', () => {
      clearTimeout(timer);
      if (h[':status'] === undefined) done(new Error(`stream closed (${req.rstCode})`));
    });
    req.end();
  });
}

function parseSeen(type: string | undefined, body: string): Record<string, string> | undefined {
  return type === 'application/json' ? (JSON.parse(body) as { headers: Record<string, string> }).headers : undefined;
}

const both = [
  ['HTTP/1.1', get11],
  ['h2', get2],
] as const;

function sha256Hex(cert: TestCert): string {
  return createHash('sha256').update(new X509Certificate(cert.cert).raw).digest('hex');
}

describe('https listener: client certificates (mutual TLS)', { skip }, () => {
  let pki: TestPki;
  let other: TestPki;
  let good: PkiCert;
  let revoked: PkiCert;
  let stranger: PkiCert;
  let selfMade: TestCert;
  let origin: Origin;
  let p: Portico;
  let required: number;
  let optional: number;
  let cached: number;
  /** What the server received for /swr (a cached route: the miss, then the background refresh). */
  const swrSeen: Record<string, string | string[] | undefined>[] = [];
  before(async () => {
    pki = testPki('Client CA');
    other = testPki('Other CA');
    good = pki.client('alice', { uri: 'spiffe://example.org/ns/web/sa/alice', dns: ['alice.example.org', 'a2.example.org'] });
    revoked = pki.client('mallory');
    pki.revoke(revoked);
    stranger = other.client('bob');
    selfMade = selfSigned(['alice']);
    const crl = pki.crl();
    const server = selfSigned(['www.example.com']);
    origin = await startOrigin('o1', (req, res) => {
      if (req.url === '/swr') {
        swrSeen.push(req.headers);
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=0, stale-while-revalidate=60', etag: '"s"' });
        res.end('stale but usable');
        return;
      }
      const body = JSON.stringify({ headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const tls = (verify: string): unknown => ({ certificates: [{ cert: server.certFile, key: server.keyFile }], clientAuth: { ca: pki.certFile, crl, verify } });
    p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      caches: [{ name: 'main', memory: '1MiB', maxObjectSize: '64KiB' }],
      listeners: [
        { name: 'req', protocol: 'https', listen: '127.0.0.1:0', tls: tls('required'), routes: [{ pool: 'web' }] },
        { name: 'cached', protocol: 'https', listen: '127.0.0.1:0', tls: tls('required'), routes: [{ pool: 'web', cache: 'main' }] },
        {
          name: 'opt',
          protocol: 'https',
          listen: '127.0.0.1:0',
          tls: tls('optional'),
          routes: [
            { match: { path: '/private/', clientCert: 'verified' }, pool: 'web' },
            { match: { path: '/private/' }, respond: { status: 403, body: 'a client certificate is needed' } },
            { pool: 'web' },
          ],
        },
      ],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await p.start();
    required = p.address('req')!.port;
    optional = p.address('opt')!.port;
    cached = p.address('cached')!.port;
  });
  after(async () => {
    await p?.stop(100);
    await origin?.close();
  });

  for (const [proto, get] of both) {
    it(`${proto}, verify: required: a valid certificate is served; its details reach the server; a forged header is removed`, async () => {
      const r = await get(required, '/x', { cert: good, headers: { 'x-forwarded-client-cert': 'Hash=forged;Subject="CN=admin"', 'x-client-verify': 'SUCCESS' } });
      assert.equal(r.status, 200);
      const seen = r.seen!;
      assert.equal(seen['x-client-verify'], 'SUCCESS');
      assert.equal(
        seen['x-forwarded-client-cert'],
        `Hash=${sha256Hex(good)};Subject="CN=alice";URI=spiffe://example.org/ns/web/sa/alice;DNS=alice.example.org;DNS=a2.example.org`,
      );
    });

    it(`${proto}, verify: required: no certificate, another CA's, a self-signed one, a revoked one (CRL) fail the handshake`, async () => {
      for (const [what, cert] of [
        ['none', undefined],
        ['other CA', stranger],
        ['self-signed', selfMade],
        ['revoked', revoked],
      ] as const) {
        await assert.rejects(get(required, '/x', { cert }), Error, `${what} must be refused`);
      }
    });

    it(`${proto}, verify: optional: every client is served and the server learns the outcome`, async () => {
      const none = await get(optional, '/x', { headers: { 'x-forwarded-client-cert': 'Hash=forged', 'X-Client-Verify': 'SUCCESS' } });
      assert.equal(none.seen!['x-client-verify'], 'NONE');
      assert.equal(none.seen!['x-forwarded-client-cert'], undefined, 'the forged header is removed');

      const ok = await get(optional, '/x', { cert: good });
      assert.equal(ok.seen!['x-client-verify'], 'SUCCESS');
      assert.match(ok.seen!['x-forwarded-client-cert']!, new RegExp(`^Hash=${sha256Hex(good)};Subject="CN=alice";`));

      const wrong = await get(optional, '/x', { cert: stranger, headers: { 'x-forwarded-client-cert': 'Hash=forged' } });
      assert.match(wrong.seen!['x-client-verify']!, /^FAILED:(UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
      assert.equal(wrong.seen!['x-forwarded-client-cert'], undefined);

      const rev = await get(optional, '/x', { cert: revoked });
      assert.equal(rev.seen!['x-client-verify'], 'FAILED:CERT_REVOKED');
      assert.equal(rev.seen!['x-forwarded-client-cert'], undefined);
    });

    it(`${proto}: routes match on clientCert`, async () => {
      assert.equal((await get(optional, '/private/a', { cert: good })).status, 200);
      const refused = await get(optional, '/private/a', { cert: stranger });
      assert.equal(refused.status, 403);
      assert.equal(refused.body, 'a client certificate is needed');
      assert.equal((await get(optional, '/private/a')).status, 403);
    });
  }

  it('a stale-while-revalidate refresh carries the client-certificate fields of the request that found the object stale, as a forwarded request does', async () => {
    const miss = await get11(cached, '/swr', { cert: good });
    assert.equal(miss.body, 'stale but usable');
    const stale = await get11(cached, '/swr', { cert: good });
    assert.equal(stale.body, 'stale but usable');
    await waitFor(() => swrSeen.length === 2, 10_000, 'the background refresh at the server');
    const [forwarded, refresh] = swrSeen as [Record<string, unknown>, Record<string, unknown>];
    assert.equal(refresh['if-none-match'], '"s"', 'the refresh is the revalidation');
    assert.equal(refresh['x-client-verify'], 'SUCCESS');
    assert.equal(refresh['x-forwarded-client-cert'], forwarded['x-forwarded-client-cert']);
    assert.match(String(refresh['x-forwarded-client-cert']), new RegExp(`^Hash=${sha256Hex(good)};Subject="CN=alice";`));
    assert.equal(refresh['x-forwarded-proto'], 'https');
  });

  it('the forged headers are removed on plain http listeners too', async () => {
    const q = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'plain', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await q.start();
    try {
      const raw = await rawRequest(q.address('plain')!.port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Client-Cert: Hash=forged\r\nX-Client-Verify: SUCCESS\r\nConnection: close\r\n\r\n');
      const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
      assert.equal(body.headers['x-forwarded-client-cert'], undefined);
      assert.equal(body.headers['x-client-verify'], undefined);
    } finally {
      await q.stop(100);
    }
  });
});

it('a client CA or CRL file that does not load stops the start, naming the file', { skip }, () => {
  const server = selfSigned(['www.example.com']);
  const pki = testPki();
  const make = (clientAuth: Record<string, unknown>) => () =>
    createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: server.certFile, key: server.keyFile }], clientAuth }, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: '127.0.0.1:1' }] }],
    });
  assert.throws(make({ ca: server.keyFile }), (e: Error) => e.message.includes(`listeners.s.tls.clientAuth.ca: ${server.keyFile}: holds no PEM certificate`));
  assert.throws(make({ ca: '/nonexistent/ca.pem' }), /listeners\.s\.tls\.clientAuth\.ca: \/nonexistent\/ca\.pem: cannot be read \(ENOENT\)/);
  assert.throws(make({ ca: pki.certFile, crl: server.certFile }), (e: Error) => e.message.includes(`listeners.s.tls.clientAuth.crl: ${server.certFile}: holds no PEM certificate revocation list`));
  assert.doesNotThrow(make({ ca: pki.certFile, crl: pki.crl() }));
});

describe('https listener: client CA and CRL reloaded without restart', { skip }, () => {
  it('a changed CRL refuses a certificate revoked since (no resumption of its old session); a changed CA file takes other clients', async () => {
    const pki = testPki('Client CA');
    const next = testPki('Next CA');
    const alice = pki.client('alice');
    const carol = next.client('carol');
    const dir = mkdtempSync(join(tmpdir(), 'portico-mtls-reload-'));
    const caFile = join(dir, 'ca.pem');
    const crlFile = join(dir, 'crl.pem');
    copyFileSync(pki.certFile, caFile);
    copyFileSync(pki.crl(), crlFile);
    const server = selfSigned(['www.example.com']);
    const origin = await startOrigin('o1', (_req, res) => res.end('ok'));
    const p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [
        {
          name: 's',
          protocol: 'https',
          listen: '127.0.0.1:0',
          tls: { certificates: [{ cert: server.certFile, key: server.keyFile }], clientAuth: { ca: caFile, crl: crlFile }, reloadCheck: '100ms' },
          routes: [{ pool: 'web' }],
        },
      ],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await p.start();
    const port = p.address('s')!.port;
    try {
      const first = await get11(port, '/', { cert: alice });
      assert.equal(first.status, 200);
      const again = await get11(port, '/', { cert: alice, session: first.session });
      assert.equal(again.reused, true, 'sessions resume while nothing changed');

      pki.revoke(alice);
      copyFileSync(pki.crl(), crlFile);
      await waitFor(async () => get11(port, '/', { cert: alice }).then(() => false, () => true), 5000);
      // The session made before the revocation is not resumed either: a full handshake fails.
      await assert.rejects(get11(port, '/', { cert: alice, session: again.session }));

      await assert.rejects(get11(port, '/', { cert: carol }));
      copyFileSync(next.certFile, caFile);
      copyFileSync(next.crl(), crlFile);
      await waitFor(async () => get11(port, '/', { cert: carol }).then((r) => r.status === 200, () => false), 5000);
    } finally {
      await p.stop(100);
      await origin.close();
    }
  });
});
