import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import { hello, startTlsBackend, type TlsBackend } from '../../test-helpers/tls-backend.js';


const skip = missingBinary('openssl');

/** A Duplex over a TCP connection that sends the first write (the ClientHello) one byte per segment. */
function byteByByte(port: number): Duplex {
  const sock = netConnect({ port, host: '127.0.0.1', noDelay: true });
  let first = true;
  const d = new Duplex({
    read() {
      sock.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (!first) {
        sock.write(chunk, () => cb());
        return;
      }
      first = false;
      void (async () => {
        for (let i = 0; i < chunk.length; i++) {
          if (sock.destroyed) break;
          sock.write(chunk.subarray(i, i + 1));
          await new Promise((r) => setTimeout(r, 1));
        }
        cb();
      })();
    },
    final(cb) {
      sock.end();
      cb();
    },
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  sock.on('data', (c: Buffer) => {
    if (!d.push(c)) sock.pause();
  });
  sock.on('end', () => d.push(null));
  sock.on('error', (e) => d.destroy(e));
  return d;
}

async function startInspect(listener: Record<string, unknown>, pools: unknown[]): Promise<{ p: Portico; port: number }> {
  const p = createPortico({
    log: { level: 'error' },
    admin: { listen: '127.0.0.1:0' },
    listeners: [{ name: 'l4', protocol: 'tcp', listen: '127.0.0.1:0', inspect: 'tls', ...listener }],
    pools,
  });
  await p.start();
  return { p, port: p.address('l4')!.port };
}

describe('tcp listener, inspect: tls: routing by SNI', { skip }, () => {
  let a: TlsBackend;
  let b: TlsBackend;
  let c: TlsBackend;
  let p: Portico;
  let port: number;
  before(async () => {
    a = await startTlsBackend('a', selfSigned(['a.example.com']));
    b = await startTlsBackend('b', selfSigned(['*.b.example.com']));
    c = await startTlsBackend('c', selfSigned(['default.example.com']));
    ({ p, port } = await startInspect(
      {
        routes: [
          { match: { sni: 'a.example.com' }, pool: 'pa' },
          { match: { sni: ['*.b.example.com', 'b.example.org'] }, pool: 'pb' },
          { pool: 'pc' },
        ],
      },
      [
        { name: 'pa', servers: [{ name: 'a', address: a.address }] },
        { name: 'pb', servers: [{ name: 'b', address: b.address }] },
        { name: 'pc', servers: [{ name: 'c', address: c.address }] },
      ],
    ));
  });
  after(async () => {
    await p?.stop(100);
    await Promise.all([a, b, c].map((x) => x?.close()));
  });

  it('each server name reaches its pool; no SNI or an unknown one takes the last route', async () => {
    const cases: [string | undefined, string][] = [
      ['a.example.com', 'a'],
      ['A.EXAMPLE.COM', 'a'],
      ['x.b.example.com', 'b'],
      ['deep.x.b.example.com', 'b'],
      ['b.example.org', 'b'],
      ['b.example.com', 'c'],
      ['other.example.com', 'c'],
      [undefined, 'c'],
    ];
    for (const [sni, want] of cases) {
      const r = await hello({ port, ...(sni === undefined ? {} : { servername: sni }) });
      assert.equal(r.line.split(' ')[0], want, `SNI ${sni}`);
      r.sock.destroy();
    }
  });

  it('a ClientHello written one byte per TCP segment is read whole and routed', async () => {
    const s = byteByByte(port);
    const r = await hello({ socket: s, servername: 'a.example.com' });
    assert.equal(r.line, 'a new');
    const rows = (await (await fetch(p.admin!.url + '/api/v1/listeners/l4/bindings')).json()) as { bindings: { sni: string; server: string }[] };
    assert.deepEqual(
      rows.bindings.map((x) => [x.sni, x.server]),
      [['a.example.com', 'a']],
    );
    // The TLS session goes on normally after the hello: an echo through the tunnel.
    const echoed = await new Promise<string>((resolve) => {
      r.sock.removeAllListeners('data');
      r.sock.on('data', (chunk: Buffer) => resolve(chunk.toString()));
      r.sock.write('over tls');
    });
    assert.equal(echoed, 'over tls');
    r.sock.destroy();
  });

  it('garbage, a truncated hello and a silent client are closed without reaching any server', async () => {
    const accepted = a.handshakes + b.handshakes + c.handshakes;
    const rawTcp = (data: Buffer | string | undefined, end: boolean): Promise<{ bytes: number; ms: number }> =>
      new Promise((resolve) => {
        const t0 = Date.now();
        let bytes = 0;
        const s = netConnect(port, '127.0.0.1', () => {
          if (data !== undefined) s.write(data);
          if (end) s.end();
        });
        s.on('data', (d: Buffer) => (bytes += d.length));
        s.on('error', () => {});
        s.on('close', () => resolve({ bytes, ms: Date.now() - t0 }));
        setTimeout(() => s.destroy(), 5000);
      });
    // Plain HTTP on a TLS port
    const g = await rawTcp('GET / HTTP/1.1\r\nHost: x\r\n\r\n', false);
    assert.equal(g.bytes, 0);
    assert.ok(g.ms < 1000, `closed after ${g.ms} ms`);
    // Random bytes that start like a TLS record
    const r = await rawTcp(Buffer.from([22, 3, 1, 0, 36, 1, 0, 0, 32, 3, 3, ...new Array(30).fill(0x41)]), false);
    assert.equal(r.bytes, 0);
    // A real hello cut short, then the client ends its side
    const full = await captureHello('a.example.com');
    const cut = await rawTcp(full.subarray(0, full.length >> 1), true);
    assert.equal(cut.bytes, 0);
    assert.ok(cut.ms < 1000);
    assert.equal(a.handshakes + b.handshakes + c.handshakes, accepted);
    assert.equal(p.stats.rejectedFor('l4', 'bad-client-hello'), 3);
    // And Portico still serves.
    const ok = await hello({ port, servername: 'a.example.com' });
    assert.equal(ok.line, 'a new');
    ok.sock.destroy();
  });

  it('a hello larger than inspectMaxBytes is refused; a silent client is closed at inspectTimeout', async () => {
    const small = await startInspect({ inspectMaxBytes: 512, inspectTimeout: '400ms', pool: 'pa' }, [{ name: 'pa', servers: [{ name: 'a', address: a.address }] }]);
    try {
      const before = a.handshakes;
      const full = await captureHello('a.example.com');
      const t0 = Date.now();
      await new Promise<void>((resolve) => {
        const s = netConnect(small.port, '127.0.0.1', () => s.write(full.subarray(0, 20)));
        s.on('error', () => {});
        s.on('close', () => resolve());
      });
      const ms = Date.now() - t0;
      assert.ok(ms >= 350 && ms < 2000, `closed after ${ms} ms`);
      assert.equal(small.p.stats.rejectedFor('l4', 'timeout'), 1);
      const protocols = Array.from({ length: 60 }, (_, i) => `protocol-number-${i}`);
      await assert.rejects(hello({ port: small.port, servername: 'a.example.com', ALPNProtocols: protocols }));
      assert.equal(a.handshakes, before);
      const fine = await hello({ port: small.port, servername: 'a.example.com' });
      assert.equal(fine.line, 'a new');
      fine.sock.destroy();
    } finally {
      await small.p.stop(100);
    }
  });
});

/** The first bytes (the ClientHello) of a node:tls client. */
async function captureHello(servername: string): Promise<Buffer> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  const got = new Promise<Buffer>((resolve) => srv.once('connection', (s: Socket) => s.once('data', (c: Buffer) => (s.destroy(), resolve(c)))));
  const c = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  c.on('error', () => {});
  const buf = await got;
  c.destroy();
  srv.close();
  return buf;
}

describe('tcp listener, inspect: tls: persistence by TLS session id', { skip }, () => {
  let x: TlsBackend;
  let y: TlsBackend;
  before(async () => {
    const cert = selfSigned(['localhost']);
    x = await startTlsBackend('x', cert);
    y = await startTlsBackend('y', cert);
  });
  after(async () => {
    await x?.close();
    await y?.close();
  });

  const pools = (persistence: unknown): unknown[] => [
    { name: 'tls', balance: 'roundrobin', persistence, servers: [{ name: 'x', address: x.address }, { name: 'y', address: y.address }] },
  ];

  it('a resumed TLS 1.2 session goes back to the server that holds it (node:tls client)', async () => {
    const { p, port } = await startInspect({ pool: 'tls' }, pools({ type: 'tls-session', ttl: '1m' }));
    try {
      const first = await hello({ port, servername: 'localhost', maxVersion: 'TLSv1.2' });
      first.sock.destroy();
      const home = first.line.split(' ')[0];
      assert.equal(first.reused, false);
      for (let i = 0; i < 6; i++) {
        const r = await hello({ port, servername: 'localhost', maxVersion: 'TLSv1.2', session: first.session });
        assert.equal(r.line, `${home} reused`, `reconnect ${i}`);
        assert.equal(r.reused, true);
        r.sock.destroy();
      }
      // A new session (no id offered) is balanced normally: round-robin moves on to the other server.
      const fresh = await hello({ port, servername: 'localhost', maxVersion: 'TLSv1.2' });
      fresh.sock.destroy();
      const other = await hello({ port, servername: 'localhost', maxVersion: 'TLSv1.2' });
      other.sock.destroy();
      assert.notEqual(fresh.line.split(' ')[0], other.line.split(' ')[0]);
    } finally {
      await p.stop(100);
    }
  });

  it('without persistence the same reconnects are spread and often not resumed (the control)', async () => {
    const { p, port } = await startInspect({ pool: 'tls' }, pools(false));
    try {
      const first = await hello({ port, servername: 'localhost', maxVersion: 'TLSv1.2' });
      first.sock.destroy();
      let notResumed = 0;
      for (let i = 0; i < 6; i++) {
        const r = await hello({ port, servername: 'localhost', maxVersion: 'TLSv1.2', session: first.session });
        if (!r.reused) notResumed++;
        r.sock.destroy();
      }
      assert.ok(notResumed >= 2, `only ${notResumed} reconnects missed their session`);
    } finally {
      await p.stop(100);
    }
  });

  it('openssl s_client -reconnect: every reconnect is resumed on the same server', async () => {
    const { p, port } = await startInspect({ pool: 'tls' }, pools({ type: 'tls-session', ttl: '1m' }));
    try {
      const before = { x: x.handshakes, y: y.handshakes, resumed: x.resumed + y.resumed };
      const out = await new Promise<string>((resolve) => {
        const child = execFile(
          'openssl',
          ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-tls1_2', '-no_ticket', '-reconnect'],
          { timeout: 15_000 },
          (_err, stdout) => resolve(stdout),
        );
        child.stdin?.end();
      });
      const reused = out.split('\n').filter((l) => l.startsWith('Reused, TLSv1.2'));
      assert.equal(reused.length, 5, out.slice(0, 2000));
      const dx = x.handshakes - before.x;
      const dy = y.handshakes - before.y;
      assert.deepEqual([dx, dy].sort(), [0, 6], `handshakes x=${dx} y=${dy}`);
      assert.equal(x.resumed + y.resumed - before.resumed, 5);
    } finally {
      await p.stop(100);
    }
  });

  it('TLS 1.3 sessions (ticket resumption) are balanced normally, never pinned by the random legacy id', async () => {
    const { p, port } = await startInspect({ pool: 'tls' }, pools({ type: 'tls-session', ttl: '1m' }));
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const r = await hello({ port, servername: 'localhost' });
        seen.add(r.line.split(' ')[0]!);
        r.sock.destroy();
      }
      assert.deepEqual([...seen].sort(), ['x', 'y']);
    } finally {
      await p.stop(100);
    }
  });
});


