import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import '../../balancer/index.js';
import { getBalancer } from '../../balancer/registry.js';
import { ManualClock } from '../../core/clock.js';
import { SeededRng } from '../../core/rng.js';
import { serverId, type Server } from '../../core/server.js';
import { Pool } from '../../pool/pool.js';
import type { PoolHandle } from '../http/listener-runtime.js';
import { socketInfo } from '../../net/proxy-protocol.js';
import { TcpConnection } from './tcp-connection.js';
import type { TcpListenerRuntime, TcpRoute } from './tcp-runtime.js';
import { freePort } from '../../test-helpers/origins.js';
import { refreshClock } from '../../net/deadlines.js';

/**
 * The tcp connection's state machine, driven directly: a fake listener runtime, a real pool,
 * client and server sockets on loopback. Deadlines are fired by calling onDeadline, as the
 * listener's sweep would, so nothing races the clock.
 */

const cleanup: (() => void)[] = [];
afterEach(() => {
  while (cleanup.length > 0) cleanup.pop()!();
});

async function listen(srv: NetServer): Promise<number> {
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanup.push(() => srv.close());
  return (srv.address() as { port: number }).port;
}

/** A server that hands each accepted socket to the test. */
async function backend(): Promise<{ port: number; next: () => Promise<Socket> }> {
  const waiting: ((s: Socket) => void)[] = [];
  const ready: Socket[] = [];
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    cleanup.push(() => s.destroy());
    const w = waiting.shift();
    if (w !== undefined) w(s);
    else ready.push(s);
  });
  const port = await listen(srv);
  return { port, next: () => (ready.length > 0 ? Promise.resolve(ready.shift()!) : new Promise((r) => waiting.push(r))) };
}

const srv = (name: string, port: number, extra: Partial<Server> = {}): Server => ({
  id: serverId('p', name),
  name,
  host: '127.0.0.1',
  port,
  weight: 1,
  backup: false,
  maxConnections: 0,
  meta: {},
  ...extra,
});

interface Front {
  readonly pool: Pool;
  readonly rejected: string[];
  readonly closed: TcpConnection[];
  /** Connect a client (`halfOpen`: it may keep sending after the other side ended); resolves with it and the TcpConnection serving it. */
  client(halfOpen?: boolean): Promise<{ sock: Socket; conn: TcpConnection }>;
  /** Resolves when `conn` has closed. */
  closedOf(conn: TcpConnection): Promise<void>;
}

async function front(servers: Server[], options: { retries?: number; queueMax?: number; idleMs?: number; relayBuffer?: number } = {}): Promise<Front> {
  const factory = getBalancer('roundrobin')!;
  const pool = new Pool(
    { name: 'p', factory, balancerOptions: factory.parseOptions(undefined), rng: new SeededRng(1), clock: new ManualClock(0), queueMax: options.queueMax },
    servers.map((server) => ({ server })),
  );
  const handle: PoolHandle = {
    pool,
    retries: options.retries ?? 1,
    connectTimeoutMs: 60_000,
    responseTimeoutMs: 60_000,
    idleTimeoutMs: options.idleMs ?? 60_000,
    retryAfterSec: 1,
    queueTimeoutMs: 60_000,
    connections: () => {
      throw new Error('not used at L4');
    },
  };
  const route: TcpRoute = { name: 'r', sni: undefined, pool: handle, tls: undefined, sessions: undefined, hashBySource: false };
  const rejected: string[] = [];
  const closed: TcpConnection[] = [];
  const closeWaiters = new Map<TcpConnection, () => void>();
  const lst: TcpListenerRuntime = {
    name: 't',
    routes: [route],
    inspectTls: false,
    inspectTimeoutMs: 60_000,
    inspectMaxBytes: 16384,
    sendProxy: false,
    relayBuffer: options.relayBuffer ?? 32768,
    onRejected: (reason) => void rejected.push(reason),
    onClosed: (c) => {
      closed.push(c);
      closeWaiters.get(c)?.();
    },
  };
  const accepted: ((c: TcpConnection) => void)[] = [];
  const fs = createServer({ allowHalfOpen: true }, (sock) => {
    cleanup.push(() => sock.destroy());
    const c = new TcpConnection(sock, lst, socketInfo(sock));
    cleanup.push(() => c.close());
    accepted.shift()!(c);
  });
  const port = await listen(fs);
  return {
    pool,
    rejected,
    closed,
    async client(halfOpen = false) {
      const got = new Promise<TcpConnection>((r) => accepted.push(r));
      const sock = connect({ host: '127.0.0.1', port, allowHalfOpen: halfOpen });
      cleanup.push(() => sock.destroy());
      sock.on('error', () => {});
      return { sock, conn: await got };
    },
    closedOf(conn) {
      if (closed.includes(conn)) return Promise.resolve();
      return new Promise((r) => closeWaiters.set(conn, r));
    },
  };
}

/** Everything `s` sends until its end. */
async function drainAll(s: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => parts.push(c));
  await once(s, 'end');
  return Buffer.concat(parts);
}

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function read(s: Socket, n: number): Promise<string> {
  let got = '';
  while (got.length < n) {
    const [chunk] = (await once(s, 'data')) as [Buffer];
    got += chunk.toString('latin1');
  }
  return got;
}

describe('tcp connection', () => {
  it('retries a refused connect on another server, sending the held client bytes there', async () => {
    const dead = await freePort();
    const b = await backend();
    const f = await front([srv('a', dead), srv('b', b.port)], { retries: 1 });
    const { sock, conn } = await f.client();
    sock.write('hello');
    const up = await b.next();
    assert.equal(await read(up, 5), 'hello');
    up.write('world');
    assert.equal(await read(sock, 5), 'world');
    assert.equal(conn.tries, 2);
    assert.equal(conn.server, 'b');
    assert.equal(f.pool.byName('a')!.failures, 1);
    assert.equal(f.pool.byName('a')!.active, 0);
    assert.equal(f.pool.byName('b')!.active, 1);
    assert.equal(conn.binding().state, 'open');
    sock.end();
    await once(up, 'end');
    up.end();
    await f.closedOf(conn);
    assert.equal(conn.error, '');
    assert.equal(f.pool.byName('b')!.active, 0);
    assert.deepEqual(f.rejected, []);
  });

  it('closes with connect-failed when every try is refused', async () => {
    const f = await front([srv('a', await freePort()), srv('b', await freePort())], { retries: 3 });
    const { sock, conn } = await f.client();
    await once(sock, 'close');
    await f.closedOf(conn);
    assert.equal(conn.tries, 2);
    assert.match(conn.error, /^connect: ECONNREFUSED$/);
    assert.deepEqual(f.rejected, ['connect-failed']);
    assert.equal(f.pool.byName('a')!.failures + f.pool.byName('b')!.failures, 2);
  });

  it('passes a half-close from the client on, and the server still answers', async () => {
    const b = await backend();
    const f = await front([srv('a', b.port)]);
    const { sock, conn } = await f.client();
    sock.end('ping');
    const up = await b.next();
    const ended = once(up, 'end');
    assert.equal(await read(up, 4), 'ping');
    await ended;
    up.end('pong');
    assert.equal(await read(sock, 4), 'pong');
    await f.closedOf(conn);
    assert.equal(conn.error, '');
    assert.equal(conn.bytesIn, 4);
    assert.equal(conn.bytesOut, 4);
  });

  it('passes a half-close from the server on, and the client still sends', async () => {
    const b = await backend();
    const f = await front([srv('a', b.port)]);
    const { sock, conn } = await f.client(true);
    sock.write('x');
    const up = await b.next();
    assert.equal(await read(up, 1), 'x');
    const clientEnded = once(sock, 'end');
    up.end('bye');
    assert.equal(await read(sock, 3), 'bye');
    await clientEnded;
    sock.write('more');
    assert.equal(await read(up, 4), 'more');
    const upEnded = once(up, 'end');
    sock.end();
    await upEnded;
    await f.closedOf(conn);
    assert.equal(conn.error, '');
    assert.equal(conn.bytesIn, 5);
  });

  for (const relayBuffer of [32768, 0]) {
    it(`both sides ended: the side that ends last is closed without a shutdown, and its peer still gets every byte and a clean end (relayBuffer ${relayBuffer})`, async () => {
      const b = await backend();
      const f = await front([srv('a', b.port)], { relayBuffer });
      // The client ends first; the server's answer (within what the kernel buffers) and its end come
      // after, while the client does not read: the proxy has handed every byte to the kernel.
      const { sock, conn } = await f.client(true);
      sock.pause();
      let clientError: Error | undefined;
      sock.on('error', (e) => (clientError = e));
      sock.end('ping');
      const up = await b.next();
      const upEnded = once(up, 'end');
      assert.equal(await read(up, 4), 'ping');
      await upEnded;
      const answer = randomBytes(48 << 10);
      up.end(answer);
      await f.closedOf(conn);
      assert.equal(conn.sock.writableEnded, false, 'closed without end() (no shutdown first)');
      const got = drainAll(sock);
      sock.resume();
      assert.equal(digest(await got), digest(answer));
      assert.equal(clientError, undefined);
      assert.equal(conn.error, '');

      // The other way round: the server ends first, the client sends more and then ends.
      const second = await f.client(true);
      second.sock.write('x');
      const up2 = await b.next();
      up2.pause();
      const up2Ended = once(second.sock, 'end');
      up2.end('bye');
      assert.equal(await read(second.sock, 3), 'bye');
      await up2Ended;
      const more = randomBytes(48 << 10);
      second.sock.end(more);
      await f.closedOf(second.conn);
      const gotUp = drainAll(up2);
      up2.resume();
      assert.equal(digest(await gotUp), digest(Buffer.concat([Buffer.from('x'), more])));
      assert.equal(second.conn.error, '');
    });
  }

  for (const relayBuffer of [32768, 1000, 0]) {
    it(`relays bulk bytes intact both ways while the client reads slowly (relayBuffer ${relayBuffer})`, async () => {
      const b = await backend();
      const f = await front([srv('a', b.port)], { relayBuffer });
      const { sock, conn } = await f.client(true);
      sock.pause();
      const upward = randomBytes(1 << 20);
      sock.write(upward);
      const up = await b.next();
      const gotUpward = drainAll(up);
      // More than loopback's socket buffers hold: the proxy's writes to the paused client stay pending.
      const downward = randomBytes(24 << 20);
      up.end(downward);
      while (conn.sock.writableLength === 0) await new Promise((r) => setTimeout(r, 5));
      const gotDownward = drainAll(sock);
      sock.resume();
      sock.end();
      assert.equal(digest(await gotDownward), digest(downward));
      assert.equal(digest(await gotUpward), digest(upward));
      await f.closedOf(conn);
      assert.equal(conn.error, '');
      assert.equal(conn.bytesOut, downward.length);
      assert.equal(conn.bytesIn, upward.length);
    });
  }

  it('closes an idle connection when its deadline passes', async () => {
    const b = await backend();
    const f = await front([srv('a', b.port)], { idleMs: 30_000 });
    const { sock, conn } = await f.client();
    sock.write('x');
    const up = await b.next();
    await read(up, 1);
    // (The first byte may have been held until the server connection opened.) A reply on the open connection:
    up.write('z');
    await read(sock, 1);
    assert.ok(conn.deadline < 0, 'the chunk marked the idle deadline');
    // The sweep after the chunk arms the deadline from its own time; the next one that finds it passed closes.
    conn.onDeadline();
    assert.ok(conn.deadline > performance.now() + 29_000, 'the idle deadline is armed from the sweep');
    const closed = once(sock, 'close');
    const upClosed = once(up, 'end');
    conn.onDeadline();
    await Promise.all([closed, upClosed]);
    await f.closedOf(conn);
    assert.equal(conn.error, 'idle timeout');
    assert.equal(f.pool.byName('a')!.active, 0);
  });

  it('counts the idle deadline from after the last chunk, never from a clock tick the process stalled after', async () => {
    const b = await backend();
    const f = await front([srv('a', b.port)], { idleMs: 300 });
    const { sock, conn } = await f.client();
    sock.write('x');
    const up = await b.next();
    await read(up, 1);
    // A stall between the coarse clock's tick and the next chunk: the loop is held, so no tick
    // runs, and the chunk is handed over right after it, as an I/O callback after a stall is.
    refreshClock();
    const until = performance.now() + 200;
    while (performance.now() < until) {
      /* the process stalls */
    }
    const before = performance.now();
    conn.sock.emit('data', Buffer.from('y'));
    assert.ok(conn.deadline < 0, 'the chunk marked the idle deadline');
    // The sweep that follows: the deadline counts from it, at least 300 ms after the chunk.
    conn.onDeadline();
    assert.ok(conn.deadline - before >= 300, `the idle deadline is ${(conn.deadline - before).toFixed(1)} ms after the chunk`);
    assert.equal(conn.error, '');
    await read(up, 1);
  });

  it('keeps a connection without an idle timeout open however often the sweep looks', async () => {
    const b = await backend();
    const f = await front([srv('a', b.port)], { idleMs: 0 });
    const { sock, conn } = await f.client();
    sock.write('x');
    const up = await b.next();
    await read(up, 1);
    assert.ok(conn.deadline <= 0);
    if (conn.deadline < 0) conn.onDeadline();
    assert.equal(conn.deadline, 0, 'no deadline is armed');
    up.write('y');
    await read(sock, 1);
    assert.equal(conn.error, '');
    assert.equal(conn.binding().state, 'open');
  });

  it('waits in the queue while the server is full, connects when it frees, and times out there', async () => {
    const b = await backend();
    const f = await front([srv('a', b.port, { maxConnections: 1 })], { queueMax: 2 });
    const first = await f.client();
    const up1 = await b.next();
    const second = await f.client();
    assert.equal(second.conn.binding().state, 'queued');
    assert.equal(f.pool.queued, 1);
    second.sock.write('early');
    // The first connection ends: its slot goes to the waiting one.
    const up1Ended = once(up1, 'end');
    first.sock.end();
    await up1Ended;
    up1.end();
    await f.closedOf(first.conn);
    const up2 = await b.next();
    assert.equal(await read(up2, 5), 'early');
    assert.equal(second.conn.binding().state, 'open');

    // A third waits; its queue deadline passes.
    const third = await f.client();
    assert.equal(third.conn.binding().state, 'queued');
    assert.ok(third.conn.deadline > 0);
    const closed = once(third.sock, 'close');
    third.conn.onDeadline();
    await closed;
    assert.equal(third.conn.error, 'queue timeout');
    assert.deepEqual(f.rejected, ['queue-timeout']);
    assert.equal(f.pool.queued, 0);
  });

  it('refuses at once when no server is available', async () => {
    const f = await front([srv('a', 1)]);
    f.pool.setAdmin('a', 'maint');
    const { sock, conn } = await f.client();
    await once(sock, 'close');
    assert.equal(conn.error, 'no available server');
    assert.deepEqual(f.rejected, ['no-server']);
  });
});
