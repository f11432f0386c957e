import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { runCtl } from '../../cli/ctl.js';
import { runKeepalived } from '../../cluster/keepalived-cli.js';
import { ConfigError } from '../../config/errors.js';
import { validateConfig } from '../../config/load.js';
import { missingBinary, selfSigned, testCa, type TestCert } from '../../test-helpers/certs.js';
import { rawRequest, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';

const TOKEN = 'adm1n-t0ken';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request verified against `ca`; resolves with the first `maxBytes` of the body (an event stream does not end). */
function get(port: number, path: string, ca: string, headers: Record<string, string> = {}, maxBytes = Infinity): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, headers, agent: false, servername: 'localhost' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      const done = (): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      res.on('data', (c: string) => {
        body += c;
        if (body.length >= maxBytes) {
          done();
          req.destroy();
        }
      });
      res.on('end', done);
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The fingerprint of the certificate the server presents now. */
function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      s.destroy();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

function run(cmd: string, args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, out, errOut) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out, err: errOut });
    });
  });
}

async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(argv, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

describe('the admin API over HTTPS (admin.tls)', () => {
  let origins: Origin[];
  let dir: string;
  let ca: ReturnType<typeof testCa>;
  let cert: TestCert;
  let certFile: string;
  let keyFile: string;
  let p: Portico;
  let port: number;
  const curlMissing = missingBinary('curl');

  before(async () => {
    origins = await startOrigins(1);
    dir = mkdtempSync(join(tmpdir(), 'portico-admin-tls-'));
    ca = testCa();
    cert = ca.issue(['localhost', '127.0.0.1']);
    // The files the configuration names; the test replaces them to check the reload.
    certFile = join(dir, 'admin.pem');
    keyFile = join(dir, 'admin.key');
    copyFileSync(cert.certFile, certFile);
    copyFileSync(cert.keyFile, keyFile);
    p = createPortico({
      log: { level: 'error' },
      stateDir: dir,
      admin: { listen: '127.0.0.1:0', token: TOKEN, tls: { cert: certFile, key: keyFile, reloadCheck: '100ms' } },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
    });
    await p.start();
    port = p.admin!.address.port;
  });
  after(async () => {
    await p.stop();
    for (const o of origins) await o.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the status, /metrics and the event stream over HTTPS, and reports an https URL', async () => {
    assert.equal(p.admin!.url, `https://127.0.0.1:${port}`);
    const status = await get(port, '/api/v1/status', ca.cert);
    assert.equal(status.status, 200);
    assert.equal((JSON.parse(status.body) as { ready: unknown }).ready !== undefined, true);
    const metrics = await get(port, '/metrics', ca.cert);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^# (HELP|TYPE) /m);
    const events = await get(port, '/api/v1/events', ca.cert, {}, 200);
    assert.equal(events.status, 200);
    assert.match(String(events.headers['content-type']), /text\/event-stream/);
    assert.match(events.body, /event: hello/);
    const page = await get(port, '/', ca.cert);
    assert.equal(page.status, 200);
    assert.match(page.body, /<html/i);
  });

  it('curl with --cacert reads /api/v1/status and /metrics; curl without it is refused', { skip: curlMissing }, async () => {
    const base = `https://127.0.0.1:${port}`;
    const s = await run('curl', ['--silent', '--fail', '--cacert', ca.certFile, `${base}/api/v1/status`]);
    assert.equal(s.code, 0, s.err);
    assert.equal((JSON.parse(s.out) as { pid: number }).pid, process.pid);
    const m = await run('curl', ['--silent', '--fail', '--cacert', ca.certFile, `${base}/metrics`]);
    assert.equal(m.code, 0, m.err);
    assert.match(m.out, /portico_/);
    const unverified = await run('curl', ['--silent', '--fail', `${base}/api/v1/status`]);
    assert.equal(unverified.code, 60, 'curl: the certificate does not verify against the system CAs');
  });

  it('refuses plain HTTP on the TLS port (no HTTP answer, the connection is closed)', async () => {
    const started = Date.now();
    const answer = await rawRequest(port, 'GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 3000);
    assert.doesNotMatch(answer, /HTTP\/1\.1 200/);
    assert.doesNotMatch(answer, /"pid"/);
    assert.ok(Date.now() - started < 2500, 'closed at once, not at the timeout');
  });

  it('portico ctl talks HTTPS with --cacert; without it says why; --insecure skips the check', async () => {
    const url = `https://127.0.0.1:${port}`;
    const ok = await ctl('--admin', url, '--cacert', ca.certFile, 'status');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /listener|node/i);
    const drain = await ctl('--admin', url, '--cacert', ca.certFile, '--token', TOKEN, 'drain', 'web/o1');
    assert.equal(drain.code, 0, drain.err);
    assert.equal(p.pools.get('web')!.byName('o1')!.admin, 'drain');
    const ready = await ctl('--admin', url, '--cacert', ca.certFile, '--token', TOKEN, 'ready', 'web/o1');
    assert.equal(ready.code, 0, ready.err);
    const refused = await ctl('--admin', url, 'status');
    assert.equal(refused.code, 3);
    assert.match(refused.err, /--cacert FILE/);
    const wrongCa = await ctl('--admin', url, '--cacert', selfSigned(['localhost']).certFile, 'status');
    assert.equal(wrongCa.code, 3);
    const insecure = await ctl('--admin', url, '--insecure', 'status');
    assert.equal(insecure.code, 0, insecure.err);
    const usage = await ctl('--admin', `http://127.0.0.1:${port}`, '--cacert', ca.certFile, 'status');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /https:\/\/ admin URL/);
  });

  it('uses a new certificate written over the files without restart; a broken file keeps the old one', async () => {
    const before = await presented(port);
    assert.equal(before, new X509Certificate(cert.cert).fingerprint256);
    const next = ca.issue(['localhost', '127.0.0.1']);
    // The key first, then the certificate: the store only takes a pair that matches.
    copyFileSync(next.keyFile, keyFile);
    copyFileSync(next.certFile, certFile);
    const want = new X509Certificate(next.cert).fingerprint256;
    await waitFor(async () => (await presented(port)) === want, 15_000, 'the new certificate');
    const s = await get(port, '/api/v1/status', ca.cert);
    assert.equal(s.status, 200);
    writeFileSync(certFile, 'not a certificate\n');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(await presented(port), want);
  });

  it('portico keepalived -c FILE checks readiness over https with --insecure, and that command passes', { skip: curlMissing }, async () => {
    const file = join(dir, 'portico.json');
    const listen = `127.0.0.1:${port}`;
    writeFileSync(
      file,
      JSON.stringify({
        admin: { listen, token: TOKEN, tls: { cert: cert.certFile, key: cert.keyFile } },
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:8080', routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', servers: [{ name: 'a', address: '127.0.0.1:9' }] }],
      }),
    );
    let out = '';
    let err = '';
    const code = runKeepalived(['--vip', '192.0.2.10', '--interface', 'eth0', '--priority', '100', '-c', file], { out: (s) => (out += s), err: (s) => (err += s) });
    assert.equal(code, 0, err);
    const script = /script "([^"]+)"/.exec(out)?.[1];
    assert.ok(script !== undefined, out);
    assert.match(script, new RegExp(`--insecure .*https://127\\.0\\.0\\.1:${port}/api/v1/status/ready$`));
    const [, ...args] = script.split(' ');
    const r = await run('curl', args);
    assert.equal(r.code, 0, `${script}: ${r.err}`);
  });

  it('names the file that does not load at start', () => {
    const build = (tls: { cert: string; key: string }): unknown => {
      try {
        createPortico({ log: { level: 'error' }, stateDir: dir, admin: { listen: '127.0.0.1:0', tls }, listeners: [], pools: [] });
        return undefined;
      } catch (err) {
        return err;
      }
    };
    const swapped = build({ cert: cert.keyFile, key: cert.certFile });
    assert.ok(swapped instanceof ConfigError);
    assert.match(swapped.lines().join('\n'), new RegExp(`admin\\.tls\\.cert.*${cert.keyFile.replace(/[.]/g, '\\.')}: holds no PEM certificate`));
    const missing = build({ cert: join(dir, 'nope.pem'), key: cert.keyFile });
    assert.ok(missing instanceof ConfigError);
    assert.match(missing.lines().join('\n'), /nope\.pem: cannot be read \(ENOENT\)/);
    const other = selfSigned(['localhost']);
    const mismatch = build({ cert: cert.certFile, key: other.keyFile });
    assert.ok(mismatch instanceof ConfigError);
    assert.match(mismatch.lines().join('\n'), /admin\.tls\.key.*does not match/);
  });
});

describe('reads behind the token (admin.protectReads)', () => {
  let origins: Origin[];
  let dir: string;
  let cert: TestCert;
  let p: Portico;
  let port: number;
  const auth = { authorization: `Bearer ${TOKEN}` };

  before(async () => {
    origins = await startOrigins(1);
    dir = mkdtempSync(join(tmpdir(), 'portico-admin-reads-'));
    cert = selfSigned(['localhost', '127.0.0.1']);
    p = createPortico({
      log: { level: 'error' },
      stateDir: dir,
      admin: { listen: '127.0.0.1:0', token: TOKEN, protectReads: true, tls: { cert: cert.certFile, key: cert.keyFile } },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
    });
    await p.start();
    port = p.admin!.address.port;
  });
  after(async () => {
    await p.stop();
    for (const o of origins) await o.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses every read without the token (401) and serves it with the token', async () => {
    for (const path of ['/api/v1/status', '/api/v1/pools', '/api/v1/pools/web', '/api/v1/pools/web/servers/o1', '/api/v1', '/metrics', '/api/v1/events']) {
      const no = await get(port, path, cert.cert, {}, 400);
      assert.equal(no.status, 401, path);
      assert.equal((JSON.parse(no.body) as { error: { code: string } }).error.code, 'LB_ADMIN_UNAUTHORIZED', path);
      assert.match(String(no.headers['www-authenticate']), /^Bearer/);
      const wrong = await get(port, path, cert.cert, { authorization: 'Bearer nope' }, 400);
      assert.equal(wrong.status, 401, path);
      const yes = await get(port, path, cert.cert, auth, 200);
      assert.equal(yes.status, 200, path);
    }
    // A missing pool is a 404 only for the token's holders: the others learn nothing.
    assert.equal((await get(port, '/api/v1/pools/nope', cert.cert)).status, 401);
    assert.equal((await get(port, '/api/v1/pools/nope', cert.cert, auth)).status, 404);
  });

  it('keeps the readiness check and the dashboard page open', async () => {
    const ready = await get(port, '/api/v1/status/ready', cert.cert);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { ready: true });
    assert.equal((await get(port, '/', cert.cert)).status, 200);
    assert.equal((await get(port, '/dashboard/dashboard.js', cert.cert)).status, 200);
  });

  it('portico ctl reads with the token and is refused without it', async () => {
    const url = `https://127.0.0.1:${port}`;
    const ok = await ctl('--admin', url, '--cacert', cert.certFile, '--token', TOKEN, 'servers', 'web');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /o1/);
    const no = await ctl('--admin', url, '--cacert', cert.certFile, 'servers', 'web');
    assert.equal(no.code, 1);
    assert.match(no.err, /LB_ADMIN_UNAUTHORIZED/);
  });

  it('with metricsOpen /metrics stays open; the settings change in place (as a reload applies them)', async () => {
    const ap = p.admin!;
    ap.update({ token: TOKEN, protectReads: true, openReads: ['/metrics'] });
    assert.equal((await get(port, '/metrics', cert.cert)).status, 200);
    assert.equal((await get(port, '/api/v1/status', cert.cert)).status, 401);
    ap.update({ token: TOKEN, protectReads: false });
    assert.equal((await get(port, '/api/v1/status', cert.cert)).status, 200);
    ap.update({ token: TOKEN, protectReads: true });
    assert.equal((await get(port, '/metrics', cert.cert)).status, 401);
  });

  it('the configuration refuses protectReads without a token', () => {
    assert.throws(
      () => validateConfig({ admin: { listen: '127.0.0.1:0', protectReads: true }, listeners: [], pools: [] }),
      (err: unknown) => err instanceof ConfigError && /admin\.protectReads.*needs admin\.token/.test(err.lines().join('\n')),
    );
    const c = validateConfig({ admin: { listen: '127.0.0.1:0', token: 't', protectReads: true, metricsOpen: true }, listeners: [], pools: [] });
    assert.equal(c.admin.protectReads, true);
    assert.equal(c.admin.metricsOpen, true);
    assert.equal(c.admin.tls, false);
  });
});
