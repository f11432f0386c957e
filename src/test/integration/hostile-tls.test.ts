import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned, type TestCert } from '../../test-helpers/certs.js';
import { startOrigin, type Origin } from '../../test-helpers/origins.js';

/**
 * Hostile TLS clients against an https listener and a redirect listener with `tls`: client
 * renegotiation, no SNI, bytes that are not a ClientHello, truncated and lying records, slow
 * handshakes. Each case asserts the refusal (the connection closed with no ServerHello, or an
 * alert) and that the listener then serves a well-behaved client. The handshake deadline is the
 * listener's headerTimeout (1 s here), so a stalled handshake ends without the test waiting on a clock.
 */

const skip = missingBinary('openssl');

/** Longest any single exchange may take before the test fails instead of hanging. */
const GUARD_MS = 15_000;

interface Exchange {
  /** Bytes the server sent. */
  readonly got: Buffer;
  /** The server closed (or reset) the connection. */
  readonly closed: boolean;
  /** Bytes of `drip` written before the close (drip mode only). */
  readonly written: number;
}

/**
 * Write `parts` on a new connection (`end`: then half-close), collect what comes back until the
 * server closes. With `drip`, `parts` is sent one byte per `dripMs` until the server closes.
 */
function exchange(port: number, parts: readonly Buffer[], o: { end?: boolean; drip?: number } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const sock: Socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let written = 0;
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the server did not close within ${GUARD_MS} ms`));
    }, GUARD_MS);
    const done = (): void => {
      clearTimeout(guard);
      if (timer !== undefined) clearTimeout(timer);
      sock.destroy();
      resolve({ got: Buffer.concat(chunks), closed: true, written });
    };
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('close', done);
    sock.on('error', () => {});
    sock.on('connect', () => {
      if (o.drip !== undefined) {
        const all = Buffer.concat(parts);
        const step = (): void => {
          if (sock.destroyed || written >= all.length) return;
          sock.write(all.subarray(written, written + 1));
          written++;
          timer = setTimeout(step, o.drip);
        };
        step();
        return;
      }
      for (const p of parts) sock.write(p);
      if (o.end === true) sock.end();
    });
  });
}

/** A TLS record. */
function record(type: number, body: Buffer, version = 0x0301): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt16BE(version, 1);
  h.writeUInt16BE(body.length, 3);
  return Buffer.concat([h, body]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ext(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

interface HelloSpec {
  version?: number;
  ciphers?: readonly number[];
  compression?: readonly number[];
  serverName?: string | Buffer;
  /** Extensions after the usual ones. */
  extra?: readonly Buffer[];
  /** The handshake message's own length field, when it should lie. */
  lieLength?: number;
}

/** A ClientHello handshake message (TLS 1.2 shape: ECDHE with P-256, the usual signature algorithms). */
function clientHello(s: HelloSpec = {}): Buffer {
  const ciphers = s.ciphers ?? [0xc02b, 0xc02f, 0xc02c, 0xc030];
  const exts: Buffer[] = [
    ext(0x000a, Buffer.concat([u16(2), u16(0x0017)])), // supported_groups: secp256r1
    ext(0x000b, Buffer.from([1, 0])), // ec_point_formats: uncompressed
    ext(0x000d, Buffer.concat([u16(6), u16(0x0403), u16(0x0804), u16(0x0401)])), // signature_algorithms
    ext(0xff01, Buffer.from([0])), // renegotiation_info (initial)
  ];
  if (s.serverName !== undefined) {
    const name = Buffer.isBuffer(s.serverName) ? s.serverName : Buffer.from(s.serverName, 'latin1');
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    exts.push(ext(0x0000, Buffer.concat([u16(entry.length), entry])));
  }
  exts.push(...(s.extra ?? []));
  const extBytes = Buffer.concat(exts);
  const comp = s.compression ?? [0];
  const body = Buffer.concat([
    u16(s.version ?? 0x0303),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    u16(ciphers.length * 2),
    ...ciphers.map(u16),
    Buffer.from([comp.length, ...comp]),
    u16(extBytes.length),
    extBytes,
  ]);
  const len = s.lieLength ?? body.length;
  return Buffer.concat([Buffer.from([1, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff]), body]);
}

const hello = (s: HelloSpec = {}): Buffer => record(22, clientHello(s));

/** True when `got` holds no ServerHello: nothing, or only alert records. */
function noServerHello(got: Buffer): boolean {
  let at = 0;
  while (at + 5 <= got.length) {
    if (got[at] !== 21) return false;
    at += 5 + got.readUInt16BE(at + 3);
  }
  return true;
}

/** The alert description of the first record when it is an alert, else undefined. */
function alertOf(got: Buffer): number | undefined {
  return got.length >= 7 && got[0] === 21 ? got[6] : undefined;
}

function httpsGet(port: number, servername: string | undefined, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port, path: '/', ca, agent: false as const, headers: { host: servername ?? 'lb.example.com' } };
    const req = httpsRequest(servername === undefined ? { ...opts, rejectUnauthorized: false } : { ...opts, servername }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A TLS 1.2 client that completes its handshake, then asks for a renegotiation: what happened. */
function renegotiate(port: number, opts: ConnectionOptions = {}): Promise<{ renegotiated: boolean; error: string }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'lb.example.com', rejectUnauthorized: false, maxVersion: 'TLSv1.2', ...opts }, () => {
      const ok = s.renegotiate({ rejectUnauthorized: false }, (err) => {
        s.destroy();
        resolve({ renegotiated: err == null, error: err?.message ?? '' });
      });
      if (!ok) {
        s.destroy();
        resolve({ renegotiated: false, error: 'refused locally' });
      }
    });
    s.on('error', (err) => {
      s.destroy();
      resolve({ renegotiated: false, error: err.message });
    });
    setTimeout(() => reject(new Error('renegotiation neither done nor refused')), GUARD_MS).unref();
  });
}

/** `openssl s_client -tls1_2` sending its interactive `R` (renegotiate) command: its exit code and output. */
function sClientRenegotiate(port: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'lb.example.com', '-tls1_2'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const onOut = (b: Buffer): void => {
      out += b.toString('latin1');
      // The session summary ends the handshake output; then ask for the renegotiation.
      if (!sent && out.includes('Verify return code')) {
        sent = true;
        c.stdin.write('R\n');
      }
    };
    c.stdout.on('data', onOut);
    c.stderr.on('data', onOut);
    const guard = setTimeout(() => c.kill('SIGKILL'), GUARD_MS);
    c.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, out });
    });
  });
}

describe('hostile TLS clients', { skip }, () => {
  let cert: TestCert;
  let origin: Origin;
  let p: Portico;
  let https = 0;
  let redirect = 0;
  const handshakeErrors = (): number => p.stats.rejectedFor('tls', 'tls-handshake');

  before(async () => {
    cert = selfSigned(['lb.example.com']);
    origin = await startOrigin('o1');
    const tls = { certificates: [{ cert: cert.certFile, key: cert.keyFile }] };
    p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [
        { name: 'tls', protocol: 'https', listen: '127.0.0.1:0', tls: { ...tls, http2: true }, limits: { headerTimeout: '1s' }, routes: [{ pool: 'web' }] },
        { name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web', tls, limits: { headerTimeout: '1s' } },
      ],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address, url: 'https://o1.example.com' }] }],
    });
    await p.start();
    https = p.address('tls')!.port;
    redirect = p.address('mirror')!.port;
  });
  after(async () => {
    await p.stop(100);
    await origin.close();
  });

  /** The https listener and the redirect listener serve a client that behaves. */
  async function assertHealthy(): Promise<void> {
    const a = await httpsGet(https, 'lb.example.com', cert.cert);
    assert.equal(a.status, 200);
    assert.equal(a.body, 'o1');
    const b = await httpsGet(redirect, 'lb.example.com', cert.cert);
    assert.equal(b.status, 302);
  }

  const RENEGOTIATION: [name: string, port: () => number, opts: ConnectionOptions][] = [
    ['client renegotiation (TLS 1.2) on the https listener is refused', () => https, {}],
    ['client renegotiation after ALPN h2 on the https listener is refused', () => https, { ALPNProtocols: ['h2'] }],
    ['client renegotiation after ALPN http/1.1 on the https listener is refused', () => https, { ALPNProtocols: ['http/1.1'] }],
    ['client renegotiation on the redirect listener with tls is refused', () => redirect, {}],
  ];
  for (const [name, port, opts] of RENEGOTIATION) {
    test(name, async () => {
      const r = await renegotiate(port(), opts);
      assert.equal(r.renegotiated, false, 'the second handshake must not complete');
      assert.match(r.error, /no renegotiation|socket hang up|ECONNRESET/i);
      await assertHealthy();
    });
  }

  test("openssl s_client's R (renegotiate) command is refused", async () => {
    const r = await sClientRenegotiate(https);
    assert.match(r.out, /Verify return code/, 'the first handshake completed');
    assert.match(r.out, /no renegotiation/i, r.out.slice(-400));
    assert.notEqual(r.code, 0);
    await assertHealthy();
  });

  test('no SNI: the handshake completes with the default certificate and the request is served', async () => {
    const r = await httpsGet(https, undefined, cert.cert);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'o1');
  });

  // Raw byte sequences that are not a usable ClientHello: the connection closes with no ServerHello.
  const REFUSED: [name: string, bytes: () => Buffer[], o: { end?: boolean; alert?: number }][] = [
    ['garbage bytes instead of a ClientHello', () => [Buffer.from('\x8f\x12\x00\xffgarbage that is not TLS at all\r\n\r\n', 'latin1')], { end: true }],
    ['a plain HTTP request on the TLS port', () => [Buffer.from('GET / HTTP/1.1\r\nHost: lb.example.com\r\n\r\n')], {}],
    ['an SSLv2-format ClientHello', () => [Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10, ...Buffer.alloc(21 + 16, 1)])], { end: true }],
    ['a record claiming 65535 bytes (over the 16 KiB + 2048 TLS limit)', () => [Buffer.concat([Buffer.from([22, 3, 1, 0xff, 0xff]), Buffer.alloc(18_000, 0)])], { end: true }],
    ['application data before any handshake', () => [record(23, Buffer.alloc(64, 0x41))], { end: true }],
    ['a change_cipher_spec record before the ClientHello', () => [record(20, Buffer.from([1])), hello()], { end: true }],
    ['an alert record before the ClientHello', () => [record(21, Buffer.from([2, 40]))], { end: true }],
    ['a heartbeat record before the ClientHello', () => [record(24, Buffer.from([1, 0x40, 0x00, ...Buffer.alloc(16, 0)]))], { end: true }],
    ['a ServerHello sent by the client', () => [record(22, Buffer.concat([Buffer.from([2, 0, 0, 38]), u16(0x0303), Buffer.alloc(32, 1), Buffer.from([0]), u16(0xc02b), Buffer.from([0])]))], { end: true }],
    ['a ClientHello offering TLS 1.0 only', () => [hello({ version: 0x0301, ciphers: [0xc013, 0x002f] })], { alert: 70 }],
    ['a ClientHello offering SSL 3.0 only', () => [hello({ version: 0x0300, ciphers: [0x002f] })], {}],
    ['a ClientHello offering only the NULL cipher', () => [hello({ ciphers: [0x0000] })], { alert: 40 }],
    ['a ClientHello offering only export and RC4 ciphers', () => [hello({ ciphers: [0x0003, 0x0004, 0x0005, 0x0017] })], { alert: 40 }],
    ['a ClientHello with an empty cipher list', () => [hello({ ciphers: [] })], {}],
    ['a ClientHello without the null compression method', () => [hello({ compression: [1] })], {}],
    ['a ClientHello whose length overruns its record', () => [hello({ lieLength: 4000 }), record(21, Buffer.from([1, 0]))], { end: true }],
    ['a ClientHello whose length is shorter than its body', () => [hello({ lieLength: 20 })], {}],
    ['a ClientHello with a malformed server_name extension', () => [hello({ extra: [ext(0x0000, Buffer.from([0, 9, 0, 0, 200, 1, 2]))] })], {}],
    ['a ClientHello with the same extension twice', () => [hello({ extra: [ext(0x000b, Buffer.from([1, 0]))] })], {}],
    ['a ClientHello whose extension lengths lie', () => [hello({ extra: [Buffer.from([0x00, 0x10, 0x7f, 0xff, 0x00])] })], {}],
  ];
  for (const [name, bytes, o] of REFUSED) {
    test(`${name} is refused`, async () => {
      const before = handshakeErrors();
      const r = await exchange(https, bytes(), { end: o.end ?? false });
      assert.ok(r.closed);
      assert.ok(noServerHello(r.got), `no handshake answer: ${r.got.subarray(0, 16).toString('hex')}`);
      if (o.alert !== undefined) assert.equal(alertOf(r.got), o.alert, `alert ${o.alert}: ${r.got.subarray(0, 16).toString('hex')}`);
      assert.equal(handshakeErrors() - before, 1, 'counted as a failed handshake');
      await assertHealthy();
    });
  }

  test('a ClientHello with NUL and control bytes in its server name is refused or served the default certificate, never crashes', async () => {
    const r = await exchange(https, [hello({ serverName: Buffer.from('a\x00b\x07.example.com', 'latin1') })]);
    assert.ok(r.closed);
    await assertHealthy();
  });

  // Handshakes that never finish: cut at the listener's deadline (headerTimeout) and counted.
  const STALLED: [name: string, bytes: () => Buffer[], o: { drip?: number }][] = [
    ['a client that connects and sends nothing', () => [], {}],
    ['a record header alone, then silence', () => [Buffer.from([22, 3, 1, 0x02, 0x00])], {}],
    ['half a ClientHello record, then silence', () => [hello().subarray(0, 40)], {}],
    ['a ClientHello split over many one-byte records, the last missing', () => [...[...clientHello()].slice(0, 30).map((b) => record(22, Buffer.from([b])))], {}],
    ['a ClientHello dripped one byte every 100 ms (slow handshake)', () => [hello({ serverName: 'lb.example.com'.repeat(10) })], { drip: 100 }],
  ];
  for (const [name, bytes, o] of STALLED) {
    test(`${name} is cut at the handshake deadline`, async () => {
      const before = handshakeErrors();
      const all = bytes();
      const r = await exchange(https, all, o);
      assert.ok(r.closed);
      assert.equal(r.got.length, 0, 'nothing answered');
      if (o.drip !== undefined) assert.ok(r.written < Buffer.concat(all).length, `cut before the hello was complete (${r.written} bytes)`);
      assert.equal(handshakeErrors() - before, 1, 'counted as a failed handshake');
      await assertHealthy();
    });
  }

  test('a truncated ClientHello followed by a half-close is refused at once', async () => {
    const before = handshakeErrors();
    const r = await exchange(https, [hello().subarray(0, 60)], { end: true });
    assert.ok(r.closed);
    assert.ok(noServerHello(r.got));
    assert.equal(handshakeErrors() - before, 1);
    await assertHealthy();
  });

  test('64 stalled handshakes at once do not keep a well-behaved client out, and all are cut', async () => {
    const before = handshakeErrors();
    const stalled = Array.from({ length: 64 }, () => exchange(https, [hello().subarray(0, 50)]));
    await assertHealthy();
    const rs = await Promise.all(stalled);
    assert.ok(rs.every((r) => r.closed && r.got.length === 0));
    assert.equal(handshakeErrors() - before, 64);
    await assertHealthy();
  });

  test('garbage on the redirect listener with tls is refused the same way', async () => {
    const before = p.stats.rejectedFor('mirror', 'tls-handshake');
    const r = await exchange(redirect, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    assert.ok(r.closed);
    assert.ok(noServerHello(r.got));
    assert.equal(p.stats.rejectedFor('mirror', 'tls-handshake') - before, 1);
    await assertHealthy();
  });
});

describe('hostile TLS clients of the admin API over HTTPS', { skip }, () => {
  let p: Portico;
  let admin = 0;

  before(async () => {
    const cert = selfSigned(['lb.example.com', '127.0.0.1']);
    p = createPortico({
      log: { level: 'error' },
      admin: { listen: '127.0.0.1:0', tls: { cert: cert.certFile, key: cert.keyFile }, timeouts: { header: '1s' } },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: '127.0.0.1:9' }] }],
    });
    await p.start();
    admin = p.admin!.address.port;
  });
  after(async () => {
    await p.stop(0);
  });

  async function assertReady(): Promise<void> {
    const r = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: admin, path: '/api/v1/status/ready', rejectUnauthorized: false, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(r, 200);
  }

  test('client renegotiation on the admin API is refused', async () => {
    const r = await renegotiate(admin);
    assert.equal(r.renegotiated, false);
    assert.match(r.error, /no renegotiation|socket hang up|ECONNRESET/i);
    await assertReady();
  });

  test('a stalled handshake on the admin API is cut at admin.timeouts.header', async () => {
    const r = await exchange(admin, [hello().subarray(0, 40)]);
    assert.ok(r.closed);
    assert.equal(r.got.length, 0);
    await assertReady();
  });

  test('garbage instead of a ClientHello on the admin API is refused', async () => {
    const r = await exchange(admin, [Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')]);
    assert.ok(r.closed);
    assert.ok(noServerHello(r.got));
    await assertReady();
  });
});
