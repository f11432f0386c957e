import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { createPortico, type Portico } from '../../app/app.js';
import { HttpsListener } from '../../proxy/http/https-listener.js';
import { missingBinary, selfSigned, testPki, type PkiCert, type TestPki } from '../../test-helpers/certs.js';
import { freePort, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { checkOcspResponse, ocspTarget, OcspStapler } from '../../tls/ocsp.js';

const skip = missingBinary('openssl');

/** `openssl ocsp` answering for the PKI's index on port, responses valid for 5 minutes; resolves once it listens. */
async function startResponder(pki: TestPki, port: number): Promise<ChildProcess> {
  const p = spawn('openssl', ['ocsp', '-index', pki.indexFile, '-port', String(port), '-rsigner', pki.certFile, '-rkey', pki.keyFile, '-CA', pki.certFile, '-nmin', '5'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr!.resume();
  await waitFor(() => out.includes('ACCEPT'), 15_000, 'the OCSP responder');
  return p;
}

function stop(p: ChildProcess | undefined): Promise<void> {
  if (p === undefined || p.exitCode !== null) return Promise.resolve();
  return new Promise((r) => {
    p.once('exit', () => r());
    p.kill();
  });
}

/** A handshake asking for the certificate status (status_request); the stapled response, or null. */
function stapled(port: number, servername: string): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    let resp: Buffer | null = null;
    const opts = { host: '127.0.0.1', port, servername, rejectUnauthorized: false, requestOCSP: true };
    const s = tlsConnect(opts as ConnectionOptions, () => {
      s.destroy();
      resolve(resp);
    });
    s.on('OCSPResponse', (r: Buffer) => {
      resp = r;
    });
    s.on('error', reject);
  });
}

/** The status OpenSSL reads from a stapled response, after verifying it with the CA. */
function opensslStatus(pki: TestPki, cert: PkiCert, der: Buffer): Promise<string> {
  const f = join(mkdtempSync(join(tmpdir(), 'portico-ocsp-')), 'resp.der');
  writeFileSync(f, der);
  return new Promise((resolve, reject) => {
    execFile('openssl', ['ocsp', '-respin', f, '-issuer', pki.certFile, '-cert', cert.certFile, '-CAfile', pki.certFile], (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`${err.message}: ${stderr}`));
      if (!/Response verify OK/.test(stderr + stdout)) return reject(new Error(`not verified: ${stderr}`));
      const m = new RegExp(`${cert.certFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (\\w+)`).exec(stdout);
      resolve(m?.[1] ?? `unparsed: ${stdout}`);
    });
  });
}

/** The certificate followed by its issuer: the chain file `ocsp: true` needs. */
function chainFile(cert: PkiCert, pki: TestPki): string {
  const f = join(mkdtempSync(join(tmpdir(), 'portico-chain-')), 'chain.pem');
  writeFileSync(f, cert.cert + pki.cert);
  return f;
}

describe('https listener: OCSP stapling', { skip }, () => {
  let pki: TestPki;
  let good: PkiCert;
  let revoked: PkiCert;
  let plain: PkiCert;
  let renewed: PkiCert;
  let goodChain: string;
  let responder: ChildProcess | undefined;
  let responderPort: number;
  let origin: Origin;
  let p: Portico;
  let port: number;
  before(async () => {
    pki = testPki('OCSP CA');
    responderPort = await freePort();
    const url = `http://127.0.0.1:${responderPort}`;
    good = pki.server(['www.example.com'], { ocspUrl: url });
    revoked = pki.server(['old.example.com'], { ocspUrl: url });
    plain = pki.server(['plain.example.com'], { ocspUrl: url });
    renewed = pki.server(['www.example.com'], { ocspUrl: url });
    pki.revoke(revoked);
    goodChain = chainFile(good, pki);
    responder = await startResponder(pki, responderPort);
    origin = await startOrigin('o1', (_req, res) => res.end('ok'));
    p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [
        {
          name: 's',
          protocol: 'https',
          listen: '127.0.0.1:0',
          tls: {
            certificates: [
              { cert: goodChain, key: good.keyFile, ocsp: true },
              { cert: chainFile(revoked, pki), key: revoked.keyFile, ocsp: true },
              { cert: plain.certFile, key: plain.keyFile },
            ],
          },
          routes: [{ pool: 'web' }],
        },
      ],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await p.start();
    port = p.address('s')!.port;
  });
  after(async () => {
    await p?.stop(100);
    await origin?.close();
    await stop(responder);
  });

  it('staples a response the client can verify: good for a good certificate, revoked for a revoked one, none without ocsp', async () => {
    await waitFor(async () => (await stapled(port, 'www.example.com')) !== null && (await stapled(port, 'old.example.com')) !== null, 15_000, 'stapled responses');
    assert.equal(await opensslStatus(pki, good, (await stapled(port, 'www.example.com'))!), 'good');
    assert.equal(await opensslStatus(pki, revoked, (await stapled(port, 'old.example.com'))!), 'revoked');
    assert.equal(await stapled(port, 'plain.example.com'), null);
  });

  it('keeps stapling the last good response while the responder is down', async () => {
    const l = (p as unknown as { listeners: unknown[] }).listeners.find((x) => x instanceof HttpsListener) as HttpsListener;
    const s = [...l.staplers.values()].find((x) => x.target.leaf.subject.includes('www.example.com'))!;
    await stop(responder);
    assert.equal(await s.refresh(), false);
    assert.ok(s.failures > 0);
    assert.equal(await opensslStatus(pki, good, (await stapled(port, 'www.example.com'))!), 'good');
    s.stop();
    responder = await startResponder(pki, responderPort);
    assert.equal(await s.refresh(), true);
  });

  it('a certificate replaced in its file gets its own response; the old one is no longer asked about', async () => {
    const l = (p as unknown as { listeners: unknown[] }).listeners.find((x) => x instanceof HttpsListener) as HttpsListener;
    const before = [...l.staplers.keys()];
    writeFileSync(goodChain, renewed.cert + pki.cert);
    copyFileSync(renewed.keyFile, good.keyFile);
    assert.equal(await l.reloadCertificates(), true);
    assert.equal(l.staplers.size, 2);
    assert.notDeepEqual([...l.staplers.keys()].sort(), before.sort());
    await waitFor(async () => {
      const der = await stapled(port, 'www.example.com');
      return der !== null && (await opensslStatus(pki, renewed, der).catch(() => '')) === 'good';
    }, 5000, 'a response for the renewed certificate');
  });
});

describe('OCSP responses are checked, and never stapled past nextUpdate', { skip }, () => {
  let pki: TestPki;
  let responder: ChildProcess | undefined;
  let url: string;
  let port: number;
  let a: PkiCert;
  let b: PkiCert;
  before(async () => {
    pki = testPki('OCSP CA');
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // openssl ocsp reads its index when it starts: the certificates are made first.
    a = pki.server(['a.example.com'], { ocspUrl: url });
    b = pki.server(['b.example.com'], { ocspUrl: url });
    responder = await startResponder(pki, port);
  });
  after(() => stop(responder));

  it('an expired response is not stapled; a response about another certificate or with a broken signature is refused', async () => {
    let now = Date.now();
    const sa = new OcspStapler(ocspTarget(a.cert + pki.cert), { now: () => now });
    assert.equal(await sa.refresh(), true);
    sa.stop();
    const der = sa.current()!;
    assert.equal(sa.answer!.status, 'good');
    const next = sa.answer!.nextUpdate!;
    assert.ok(next > now && next <= now + 5 * 60_000 + 1000, 'openssl -nmin 5');
    now = next - 1;
    assert.ok(sa.current() !== undefined);
    now = next;
    assert.equal(sa.current(), undefined, 'never stapled at or after nextUpdate');
    assert.throws(() => checkOcspResponse(der, ocspTarget(a.cert + pki.cert), next), /expired/);

    assert.throws(() => checkOcspResponse(der, ocspTarget(b.cert + pki.cert), Date.now()), /says nothing about this certificate/);
    // A changed digit of producedAt (the first GeneralizedTime): the signature no longer matches.
    const broken = Buffer.from(der);
    const at = der.indexOf(Buffer.from([0x18, 0x0f])) + 2 + 13;
    broken[at] = broken[at]! ^ 0x01;
    assert.throws(() => checkOcspResponse(broken, ocspTarget(a.cert + pki.cert), Date.now()), /signature does not verify|not an OCSP response/);
  });

  it('ocsp: true needs a responder URL in the certificate and its issuer in the file', () => {
    const noAia = pki.server(['n.example.com']);
    const withAia = pki.server(['w.example.com'], { ocspUrl: url });
    const build = (cert: string, key: string) => () =>
      createPortico({
        log: { level: 'error' },
        admin: { enabled: false },
        listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert, key, ocsp: true }] }, routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', servers: [{ name: 'o1', address: '127.0.0.1:1' }] }],
      });
    assert.throws(build(chainFile(noAia, pki), noAia.keyFile), /ocsp: names no OCSP responder/);
    assert.throws(build(withAia.certFile, withAia.keyFile), /ocsp: holds no issuer certificate after the leaf/);
    const self = selfSigned(['s.example.com']);
    assert.throws(build(self.certFile, self.keyFile), /ocsp: names no OCSP responder/);
    assert.doesNotThrow(build(chainFile(withAia, pki), withAia.keyFile));
  });
});
