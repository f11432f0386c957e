import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { createPortico, type Portico } from '../../app/app.js';
import { freePort, waitFor } from '../../test-helpers/origins.js';

/** A TCP server on 127.0.0.1: each connection gets `greet` (if any), then `onConn` runs. */
interface TcpOrigin {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** Connections accepted so far. */
  accepted: number;
  /** The first bytes of each accepted connection (up to 256). */
  readonly firstBytes: Buffer[];
  close(): Promise<void>;
}

async function startTcp(name: string, onConn: (s: Socket, o: TcpOrigin) => void): Promise<TcpOrigin> {
  const sockets = new Set<Socket>();
  const srv: NetServer = createServer({ allowHalfOpen: true });
  const o: TcpOrigin = {
    name,
    port: 0,
    address: '',
    accepted: 0,
    firstBytes: [],
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
  srv.on('connection', (s) => {
    o.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const at = o.firstBytes.push(Buffer.alloc(0)) - 1;
    s.on('data', (c: Buffer) => {
      const first = o.firstBytes[at]!;
      if (first.length < 256) o.firstBytes[at] = Buffer.concat([first, c]).subarray(0, 256);
    });
    onConn(s, o);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  (o as { port: number }).port = (srv.address() as { port: number }).port;
  (o as { address: string }).address = `127.0.0.1:${o.port}`;
  return o;
}

/** Echo with the server's name first; ends its side when the client ends. */
const echo = (s: Socket, o: TcpOrigin): void => {
  s.write(o.name + '\n');
  s.on('data', (c: Buffer) => s.write(c));
  s.on('end', () => s.end());
};

/** Connect, send `data` (then end unless keepOpen), collect everything until the server closes. */
function exchange(port: number, data: Buffer | string, opts: { keepOpen?: boolean; ms?: number } = {}): Promise<{ bytes: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      s.write(data);
      if (opts.keepOpen !== true) s.end();
    });
    const t = setTimeout(() => finish(false), opts.ms ?? 3000);
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed });
    };
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      if (opts.keepOpen === true) s.end();
    });
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}

async function startL4(listener: Record<string, unknown>, pools: unknown[], extra: Record<string, unknown> = {}): Promise<{ p: Portico; port: number }> {
  const p = createPortico({
    log: { level: 'error' },
    admin: { listen: '127.0.0.1:0' },
    listeners: [{ name: 'l4', protocol: 'tcp', listen: '127.0.0.1:0', ...listener }],
    pools,
    ...extra,
  });
  await p.start();
  return { p, port: p.address('l4')!.port };
}

async function adminGet(p: Portico, path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(p.admin!.url + path);
  return { status: r.status, body: await r.json() };
}

describe('tcp listener: bytes, balancing, half-close', () => {
  let a: TcpOrigin;
  let b: TcpOrigin;
  before(async () => {
    a = await startTcp('a', echo);
    b = await startTcp('b', echo);
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('relays 1 MiB both ways unchanged and balances connections round-robin', async () => {
    const { p, port } = await startL4({ pool: 'echo' }, [
      { name: 'echo', servers: [{ name: 'a', address: a.address }, { name: 'b', address: b.address }] },
    ]);
    try {
      const payload = randomBytes(1 << 20);
      const names: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await exchange(port, payload);
        assert.equal(r.closed, true);
        const nl = r.bytes.indexOf(10);
        names.push(r.bytes.subarray(0, nl).toString());
        assert.ok(r.bytes.subarray(nl + 1).equals(payload), 'echoed bytes differ');
      }
      assert.deepEqual(names.sort(), ['a', 'a', 'b', 'b']);
    } finally {
      await p.stop(100);
    }
  });

  it('half-close, client first: the server sees the end of input and still answers', async () => {
    const counter = await startTcp('count', (s) => {
      let n = 0;
      s.on('data', (c: Buffer) => (n += c.length));
      s.on('end', () => {
        s.write(`got ${n} bytes`);
        s.end();
      });
    });
    const { p, port } = await startL4({ pool: 'c' }, [{ name: 'c', servers: [{ name: 'count', address: counter.address }] }]);
    try {
      const r = await exchange(port, Buffer.alloc(100_000, 7));
      assert.equal(r.bytes.toString(), 'got 100000 bytes');
      assert.equal(r.closed, true);
    } finally {
      await p.stop(100);
      await counter.close();
    }
  });

  it('half-close, server first: the client keeps sending after the server ended its side', async () => {
    let received = '';
    const gotAll = new Promise<void>((resolve) => {
      void startTcp('greeter', (s) => {
        s.end('bye\n'); // the server is done sending, but still reads
        s.on('data', (c: Buffer) => (received += c.toString()));
        s.on('end', () => resolve());
      }).then((g) => (greeter = g));
    });
    let greeter: TcpOrigin | undefined;
    await waitFor(() => greeter !== undefined, 15_000, 'greeter');
    const { p, port } = await startL4({ pool: 'g' }, [{ name: 'g', servers: [{ name: 'greeter', address: greeter!.address }] }]);
    try {
      const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      let fromServer = '';
      let serverEnded = false;
      s.on('data', (c: Buffer) => (fromServer += c.toString()));
      s.on('end', () => {
        serverEnded = true;
        // After the server's end, this side still sends; then ends.
        s.write('late data');
        s.end();
      });
      await gotAll;
      assert.equal(serverEnded, true);
      assert.equal(fromServer, 'bye\n');
      assert.equal(received, 'late data');
      s.destroy();
    } finally {
      await p.stop(100);
      await greeter!.close();
    }
  });

  it('a dead server is skipped: every connection reaches a live one (connect failures retried)', async () => {
    const dead = await freePort();
    const { p, port } = await startL4({ pool: 'echo' }, [
      {
        name: 'echo',
        retries: 1,
        servers: [
          { name: 'dead', address: `127.0.0.1:${dead}` },
          { name: 'a', address: a.address },
        ],
      },
    ]);
    try {
      for (let i = 0; i < 10; i++) {
        const r = await exchange(port, 'ping');
        assert.equal(r.bytes.toString(), 'a\nping', `connection ${i}`);
      }
      const pools = p.pools.get('echo')!;
      assert.ok(pools.byName('dead')!.failures >= 5, 'the dead server was tried and failed');
    } finally {
      await p.stop(100);
    }
  });

  it('no available server: the connection is closed at once', async () => {
    const { p, port } = await startL4({ pool: 'echo' }, [{ name: 'echo', servers: [{ name: 'a', address: a.address, state: 'maint' }] }]);
    try {
      const before = a.accepted;
      const r = await exchange(port, 'x', { keepOpen: true, ms: 2000 });
      assert.equal(r.closed, true);
      assert.equal(r.bytes.length, 0);
      assert.equal(a.accepted, before);
    } finally {
      await p.stop(100);
    }
  });

  it('idle timeout closes a silent connection', async () => {
    const { p, port } = await startL4({ pool: 'echo' }, [
      { name: 'echo', timeouts: { idle: '300ms' }, servers: [{ name: 'a', address: a.address }] },
    ]);
    try {
      const t0 = Date.now();
      const r = await exchange(port, 'hello', { keepOpen: true, ms: 3000 });
      assert.equal(r.closed, true);
      assert.equal(r.bytes.toString(), 'a\nhello');
      const took = Date.now() - t0;
      assert.ok(took >= 250 && took < 2000, `closed after ${took} ms`);
    } finally {
      await p.stop(100);
    }
  });

  it('maxConnections: connections above the limit are refused', async () => {
    const { p, port } = await startL4({ pool: 'echo', maxConnections: 2 }, [{ name: 'echo', servers: [{ name: 'a', address: a.address }] }]);
    try {
      const open = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
      for (const s of open) s.on('error', () => {});
      await waitFor(async () => (await adminGet(p, '/api/v1/listeners/l4/bindings')).body.connections === 2, 15_000, 'two bindings');
      const third = await exchange(port, 'x', { keepOpen: true, ms: 2000 });
      assert.equal(third.closed, true);
      assert.equal(third.bytes.length, 0);
      for (const s of open) s.destroy();
    } finally {
      await p.stop(100);
    }
  });

  it('server maxConnections with a pool queue: a connection waits for a slot, in order; queue full and queue timeout close it', async () => {
    const { p, port } = await startL4({ pool: 'echo' }, [
      { name: 'echo', queue: { max: 2, timeout: '1s' }, servers: [{ name: 'a', address: a.address, maxConnections: 1 }] },
    ]);
    const held: Socket[] = [];
    try {
      const rejected = async (reason: string): Promise<number> => {
        const text = await (await fetch(p.admin!.url + '/metrics')).text();
        const line = text.split('\n').find((l) => l.startsWith('portico_rejected_total{') && l.includes(`reason="${reason}"`));
        return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
      };
      // The one slot is taken.
      const first = connect(port, '127.0.0.1');
      first.on('error', () => {});
      held.push(first);
      await waitFor(async () => (await adminGet(p, '/api/v1/listeners/l4/bindings')).body.connections === 1, 15_000, 'the first binding');
      // Two wait in the queue (seen in the binding table as queued), a third finds it full. The two
      // send their bytes and end their side while they wait: both are passed on once connected.
      const second = exchange(port, 'two', { ms: 3000 });
      await waitFor(() => p.pools.get('echo')!.queued === 1, 15_000, 'the second to queue');
      const third = exchange(port, 'three', { ms: 3000 });
      await waitFor(() => p.pools.get('echo')!.queued === 2, 15_000, 'the third to queue');
      const states = (await adminGet(p, '/api/v1/listeners/l4/bindings')).body.bindings.map((b: { state: string }) => b.state).sort();
      assert.deepEqual(states, ['open', 'queued', 'queued']);
      const full = await exchange(port, 'x', { keepOpen: true, ms: 2000 });
      assert.equal(full.closed, true);
      assert.equal(full.bytes.length, 0);
      assert.equal(await rejected('queue-full'), 1);
      // The slot frees: the second (first in line) is served; it ends, and the third is served.
      first.destroy();
      const r2 = await second;
      assert.equal(r2.bytes.toString(), 'a\ntwo');
      const r3 = await third;
      assert.equal(r3.bytes.toString(), 'a\nthree');
      // With the slot held again, a new connection times out in the queue.
      const again = connect(port, '127.0.0.1');
      again.on('error', () => {});
      held.push(again);
      await waitFor(() => p.pools.get('echo')!.byName('a')!.active === 1, 15_000, 'the slot to be held');
      const t0 = Date.now();
      const late = await exchange(port, 'late', { keepOpen: true, ms: 3000 });
      const waited = Date.now() - t0;
      assert.equal(late.closed, true);
      assert.equal(late.bytes.length, 0, 'never reached the server');
      assert.ok(waited >= 900 && waited < 2500, `closed after ${waited} ms in the queue`);
      assert.equal(await rejected('queue-timeout'), 1);
      assert.equal(p.pools.get('echo')!.queued, 0);
    } finally {
      for (const s of held) s.destroy();
      await p.stop(100);
    }
  });

  it('a client that resets its connection leaves the queue', async () => {
    const { p, port } = await startL4({ pool: 'echo' }, [
      { name: 'echo', queue: { max: 5, timeout: '5s' }, servers: [{ name: 'a', address: a.address, maxConnections: 1 }] },
    ]);
    try {
      const first = connect(port, '127.0.0.1');
      first.on('error', () => {});
      await waitFor(() => p.pools.get('echo')!.byName('a')!.active === 1, 15_000, 'the slot to be held');
      const waiting = connect(port, '127.0.0.1');
      waiting.on('error', () => {});
      await waitFor(() => p.pools.get('echo')!.queued === 1, 15_000, 'one in the queue');
      // (A client that only ends its side stays: a tcp client may half-close and still wait for the answer.)
      waiting.resetAndDestroy();
      await waitFor(() => p.pools.get('echo')!.queued === 0, 15_000, 'the queue to be empty');
      const before = a.accepted;
      first.destroy();
      await waitFor(() => p.pools.get('echo')!.byName('a')!.active === 0, 15_000, 'the slot to be free');
      assert.equal(a.accepted, before, 'the client that left never reached the server');
    } finally {
      await p.stop(100);
    }
  });

  it('the binding table (admin API) shows each connection with its server, bytes and age, and drops it on close', async () => {
    const { p, port } = await startL4({ pool: 'echo' }, [
      { name: 'echo', servers: [{ name: 'a', address: a.address }, { name: 'b', address: b.address }] },
    ]);
    try {
      const socks: Socket[] = [];
      for (let i = 0; i < 3; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.on('data', () => {});
        await new Promise<void>((r) => s.once('connect', () => r()));
        s.write('x'.repeat(10 * (i + 1)));
        socks.push(s);
      }
      let rows: any[] = [];
      await waitFor(
        async () => {
          const r = await adminGet(p, '/api/v1/listeners/l4/bindings');
          rows = r.body.bindings;
          // every client's bytes went in and came back (2 bytes of name, then the echo)
          return rows.length === 3 && rows.every((x) => x.bytesIn > 0 && x.bytesOut === x.bytesIn + 2);
        },
        15_000,
        'three bindings with traffic',
      );
      const ports = socks.map((s) => `127.0.0.1:${s.localPort}`).sort();
      assert.deepEqual(rows.map((x) => x.client).sort(), ports);
      for (const row of rows) {
        assert.equal(row.pool, 'echo');
        assert.ok(['a', 'b'].includes(row.server));
        assert.equal(row.serverAddress, row.server === 'a' ? a.address : b.address);
        assert.equal(row.state, 'open');
        assert.ok(row.ageMs >= 0 && row.ageMs < 10_000);
        const i = ports.indexOf(row.client);
        assert.ok(i >= 0);
      }
      const mine = rows.find((x) => x.client === `127.0.0.1:${socks[2]!.localPort}`);
      assert.equal(mine.bytesIn, 30);
      assert.equal(mine.bytesOut, 2 + 30); // "a\n" or "b\n", then the echo
      socks[0]!.destroy();
      socks[1]!.end();
      await waitFor(async () => (await adminGet(p, '/api/v1/listeners/l4/bindings')).body.connections === 1, 15_000, 'bindings to drop');
      socks[2]!.destroy();
      await waitFor(async () => (await adminGet(p, '/api/v1/listeners/l4/bindings')).body.connections === 0, 15_000, 'empty table');
      const missing = await adminGet(p, '/api/v1/listeners/nope/bindings');
      assert.equal(missing.status, 404);
    } finally {
      await p.stop(100);
    }
  });
});

describe('tcp listener: PROXY protocol', () => {
  it('sendProxy v1: the server reads the client address first (checked with a plain string compare)', async () => {
    const o = await startTcp('pp', echo);
    const { p, port } = await startL4({ pool: 'pp', sendProxy: 'v1' }, [{ name: 'pp', servers: [{ name: 'pp', address: o.address }] }]);
    try {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write('payload');
      await waitFor(() => o.firstBytes.length === 1 && o.firstBytes[0]!.includes('payload'), 15_000, 'bytes at the server');
      const want = `PROXY TCP4 127.0.0.1 127.0.0.1 ${s.localPort} ${port}\r\npayload`;
      assert.equal(o.firstBytes[0]!.toString('latin1'), want);
      s.destroy();
    } finally {
      await p.stop(100);
      await o.close();
    }
  });

  it('sendProxy v2: the binary header has the signature, family and both addresses', async () => {
    const o = await startTcp('pp2', echo);
    const { p, port } = await startL4({ pool: 'pp', sendProxy: 'v2' }, [{ name: 'pp', servers: [{ name: 'pp', address: o.address }] }]);
    try {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write('after');
      await waitFor(() => o.firstBytes.length === 1 && o.firstBytes[0]!.includes('after'), 15_000, 'bytes at the server');
      const h = o.firstBytes[0]!;
      assert.equal(h.subarray(0, 12).toString('hex'), '0d0a0d0a000d0a515549540a');
      assert.equal(h[12], 0x21); // version 2, PROXY
      assert.equal(h[13], 0x11); // TCP over IPv4
      assert.equal(h.readUInt16BE(14), 12);
      assert.deepEqual([...h.subarray(16, 20)], [127, 0, 0, 1]);
      assert.deepEqual([...h.subarray(20, 24)], [127, 0, 0, 1]);
      assert.equal(h.readUInt16BE(24), s.localPort);
      assert.equal(h.readUInt16BE(26), port);
      assert.equal(h.subarray(28).toString(), 'after');
      s.destroy();
    } finally {
      await p.stop(100);
      await o.close();
    }
  });

  it('acceptProxy: the client address comes from the header (binding table, and the header sent on)', async () => {
    const o = await startTcp('pp3', echo);
    const { p, port } = await startL4({ pool: 'pp', acceptProxy: true, sendProxy: 'v1' }, [{ name: 'pp', servers: [{ name: 'pp', address: o.address }] }]);
    try {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('data', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      const v2 = Buffer.from('0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'cb007107' + 'c6336401' + '3039' + '01bb', 'hex');
      s.write(v2.subarray(0, 10));
      await new Promise((r) => setTimeout(r, 30));
      s.write(Buffer.concat([v2.subarray(10), Buffer.from('data')]));
      await waitFor(() => o.firstBytes.length === 1 && o.firstBytes[0]!.includes('data'), 15_000, 'bytes at the server');
      assert.equal(o.firstBytes[0]!.toString('latin1'), 'PROXY TCP4 203.0.113.7 198.51.100.1 12345 443\r\ndata');
      const rows = (await adminGet(p, '/api/v1/listeners/l4/bindings')).body.bindings;
      assert.equal(rows[0].client, '203.0.113.7:12345');
      s.destroy();
      // Without a header, the connection is refused before any server is contacted.
      const before = o.accepted;
      const r = await exchange(port, 'GET / HTTP/1.1\r\n\r\n', { keepOpen: true });
      assert.equal(r.closed, true);
      assert.equal(r.bytes.length, 0);
      assert.equal(o.accepted, before);
    } finally {
      await p.stop(100);
      await o.close();
    }
  });
});
