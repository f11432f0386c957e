import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createServer, Socket as NetSocket, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import '../../balancer/index.js';
import { getBalancer } from '../../balancer/registry.js';
import { CidrSet } from '../../core/cidr.js';
import { Outcome } from '../../core/outcome.js';
import { ManualClock } from '../../core/clock.js';
import { SeededRng } from '../../core/rng.js';
import { serverId, type Server } from '../../core/server.js';
import type { ExchangeRecord } from '../../observability/records.js';
import { Pool } from '../../pool/pool.js';
import type { Exchange } from './exchange.js';
import type { HttpListenerRuntime, HttpRoute, PoolHandle } from './listener-runtime.js';
import { compilePhases, NO_PHASES, type Answer, type HttpPhase, type PhaseList } from './phases.js';
import { compileRoutes } from './router.js';
import { HttpSession } from './session.js';
import { UpstreamConnections } from './upstream.js';
import { freePort } from '../../test-helpers/origins.js';
import { LiveSet } from '../../net/live-set.js';

/**
 * The session's state machine, driven directly: the client is an in-memory duplex (every byte the
 * session writes is kept, every byte the test pushes is what the client sent), the server a socket
 * on loopback the test answers by hand, the pool a real one. Deadlines fire by calling onDeadline,
 * as the listener's sweep would, so nothing races the clock.
 */

const cleanup: (() => void)[] = [];
afterEach(() => {
  while (cleanup.length > 0) cleanup.pop()!();
});

/** The client side of a connection, in memory. */
class FakeClient extends Duplex {
  remoteAddress = '192.0.2.7';
  /** What the session wrote, as latin1. */
  out = '';
  /** The session's writes one by one, as latin1 (a corked pair arrives as two, through _write). */
  chunks: string[] = [];
  private readonly waiters: { pred: (out: string) => boolean; resolve: () => void }[] = [];

  constructor() {
    super({ allowHalfOpen: true });
  }
  override _read(): void {}
  override _write(chunk: Buffer | string, enc: BufferEncoding, cb: () => void): void {
    const text = typeof chunk === 'string' ? Buffer.from(chunk, enc).toString('latin1') : chunk.toString('latin1');
    this.chunks.push(text);
    this.out += text;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.pred(this.out)) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
    cb();
  }
  setNoDelay(): this {
    return this;
  }
  /** net.Socket's: end, and destroy once everything was written. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }
  send(s: string): void {
    this.push(Buffer.from(s, 'latin1'));
  }
  /** Resolves once what the session wrote satisfies `pred`. */
  until(pred: (out: string) => boolean): Promise<void> {
    if (pred(this.out)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
  /** Resolves once `n` responses ending with `tail` were written. */
  untilCount(tail: string, n: number): Promise<void> {
    return this.until((o) => o.split(tail).length - 1 >= n);
  }
}

/** A server on loopback that hands each accepted socket to the test. */
async function backend(): Promise<{ port: number; accepted: Socket[]; next: () => Promise<Socket> }> {
  const waiting: ((s: Socket) => void)[] = [];
  const ready: Socket[] = [];
  const accepted: Socket[] = [];
  const srv: NetServer = createServer((s) => {
    cleanup.push(() => s.destroy());
    accepted.push(s);
    const w = waiting.shift();
    if (w !== undefined) w(s);
    else ready.push(s);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanup.push(() => srv.close());
  return {
    port: (srv.address() as { port: number }).port,
    accepted,
    next: () => (ready.length > 0 ? Promise.resolve(ready.shift()!) : new Promise((r) => waiting.push(r))),
  };
}

/** Reads one request head (and `body` more bytes) from a server socket. */
async function readRequest(s: Socket, body = 0): Promise<string> {
  let got = '';
  for (;;) {
    const end = got.indexOf('\r\n\r\n');
    if (end >= 0 && got.length >= end + 4 + body) return got;
    const [chunk] = (await once(s, 'data')) as [Buffer];
    got += chunk.toString('latin1');
  }
}

interface Rig {
  readonly pool: Pool;
  readonly server: Server;
  readonly records: { status: number; error: string; tries: number; route: string; server: string; bytesOut: number }[];
  readonly rejected: string[];
  readonly lst: HttpListenerRuntime;
  /** A client connection and the session serving it. */
  open(): { client: FakeClient; session: HttpSession };
}

const LIMITS = {
  headerTimeoutMs: 60_000,
  keepAliveTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  maxHeaderBytes: 16384,
  maxHeaders: 100,
  maxUriBytes: 8192,
  maxBodyBytes: 0,
  maxConnections: 0,
  maxRequestsPerConnection: 0,
};

/**
 * A listener runtime with one pool of one server on `port`. `phases`: extra route phases, run
 * after the built-in ones; `before`: listener phases (before routing).
 */
function rig(
  port: number,
  opts: { phases?: HttpPhase[]; before?: PhaseList; retries?: number; maxConnections?: number; queueMax?: number; admin?: 'ready' | 'maint'; readBuffer?: number } = {},
): Rig {
  const factory = getBalancer('roundrobin')!;
  const server: Server = { id: serverId('p', 's1'), name: 's1', host: '127.0.0.1', port, weight: 1, backup: false, maxConnections: opts.maxConnections ?? 0, meta: {} };
  const pool = new Pool(
    { name: 'p', factory, balancerOptions: factory.parseOptions(undefined), rng: new SeededRng(1), clock: new ManualClock(0), queueMax: opts.queueMax },
    [{ server, admin: opts.admin ?? 'ready' }],
  );
  const upstream = new UpstreamConnections();
  cleanup.push(() => upstream.closeAll());
  const handle: PoolHandle = {
    pool,
    retries: opts.retries ?? 1,
    connectTimeoutMs: 60_000,
    responseTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    retryAfterSec: 3,
    connections: (s) => upstream.of(s.id, { maxIdlePerServer: 8, idleTimeoutMs: 60_000, maxRequests: 0, readBuffer: opts.readBuffer ?? 32768 }),
  };
  const [base] = compileRoutes('web', [{ name: 'r', pool: 'p' }], () => handle);
  const route: HttpRoute = opts.phases === undefined ? base! : { ...base!, phases: compilePhases([...base!.phases.all, ...opts.phases]) };
  const records: Rig['records'] = [];
  const rejected: string[] = [];
  const lst: HttpListenerRuntime = {
    name: 'web',
    proto: 'http',
    limits: LIMITS,
    upstreamHeadLimits: { maxHeaderBytes: 65536, maxHeaders: 256, maxUriBytes: 65536 },
    trusted: new CidrSet([]),
    exposeServer: false,
    noRouteStatus: 503,
    routes: [route],
    sendProxy: false,
    rateLimit: undefined,
    phases: opts.before ?? NO_PHASES,
    sessions: new LiveSet(),
    onDone: (r: ExchangeRecord) =>
      void records.push({ status: r.status, error: r.error, tries: r.tries, route: r.route, server: r.server, bytesOut: r.bytesOut }),
    onRejected: (reason) => void rejected.push(reason),
  };
  return {
    pool,
    server,
    records,
    rejected,
    lst,
    open() {
      const client = new FakeClient();
      const session = new HttpSession(client as unknown as Socket, lst);
      lst.sessions.add(session);
      cleanup.push(() => client.destroy());
      return { client, session };
    },
  };
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';

describe('HttpSession: relaying', () => {
  it('relays a request and its response, keeps both connections, and reuses the server connection for the next request', async () => {
    const b = await backend();
    const r = rig(b.port);
    const { client, session } = r.open();
    client.send('GET /a/../b?x=1 HTTP/1.1\r\nHost: Example.TEST\r\nConnection: keep-alive\r\n\r\n');
    const up = await b.next();
    const head = await readRequest(up);
    assert.match(head, /^GET \/b\?x=1 HTTP\/1\.1\r\n/);
    assert.match(head, /\r\nX-Forwarded-For: 192\.0\.2\.7\r\n/);
    assert.match(head, /\r\nForwarded: for=192\.0\.2\.7;proto=http;host=Example\.TEST\r\n/);
    assert.doesNotMatch(head, /\r\nConnection: keep-alive\r\n[\s\S]*\r\nConnection: keep-alive\r\n/);
    assert.equal(session.ex.path, '/b');
    assert.equal(session.ex.host, 'example.test');
    up.write(OK);
    await client.untilCount('hello', 1);
    assert.match(client.out, /^HTTP\/1\.1 200 OK\r\nContent-Length: 5\r\n\r\nhello$/);
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error, x.tries, x.route, x.server]),
      [[200, '', 1, 'r', 's1']],
    );
    assert.equal(session.idle, true);
    assert.equal(r.pool.runtime(r.server.id)!.active, 0);

    client.send('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    const head2 = await readRequest(up);
    assert.match(head2, /^GET \/2 HTTP\/1\.1\r\n/);
    assert.equal(b.accepted.length, 1, 'the idle server connection was reused');
    up.write(OK);
    await client.untilCount('hello', 2);
    assert.equal(r.records.length, 2);
  });

  it('a small body that arrives whole with its head leaves in the head\'s write, every byte value intact; a large one as it came', async () => {
    const b = await backend();
    const r = rig(b.port);
    const { client } = r.open();
    const bytes = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    client.send('GET /small HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    up.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n', 'latin1'), bytes]));
    // The exchange is recorded in the same turn as its last write.
    await client.until((out) => out.length >= 256 + 'HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n'.length);
    assert.equal(client.chunks.length, 1, 'head and body in one write');
    const one = Buffer.from(client.chunks[0]!, 'latin1');
    assert.ok(one.subarray(one.length - 256).equals(bytes), 'every byte value came through');
    assert.match(client.chunks[0]!, /^HTTP\/1\.1 200 OK\r\nContent-Length: 256\r\n\r\n/);
    assert.equal(r.records[0]!.bytesOut, one.length);

    const big = Buffer.alloc(4096, 0x61);
    client.chunks = [];
    client.send('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    await readRequest(up);
    up.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n', 'latin1'), big]));
    await client.until((out) => out.endsWith(big.toString('latin1')));
    assert.match(client.chunks[0]!, /^HTTP\/1\.1 200 OK\r\nContent-Length: 4096\r\n\r\n$/, 'the head alone, then the body as it came');
    assert.equal(client.chunks.slice(1).join(''), big.toString('latin1'));
    assert.equal(r.records[1]!.bytesOut, client.chunks[0]!.length + 4096);
  });

  it('a pipelined request waits in the buffer until the exchange before it ends', async () => {
    const b = await backend();
    const r = rig(b.port);
    const { client } = r.open();
    client.send('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    assert.match(await readRequest(up), /^GET \/1 /);
    up.write(OK);
    assert.match(await readRequest(up), /^GET \/2 /);
    up.write(OK);
    await client.untilCount('hello', 2);
    assert.deepEqual(
      r.records.map((x) => x.status),
      [200, 200],
    );
  });
});

describe('HttpSession: deadlines and failures', () => {
  it('a request head that does not complete in time: 408 and the connection closes', async () => {
    const b = await backend();
    const r = rig(b.port);
    const { client, session } = r.open();
    client.send('GET / HTTP/1.1\r\nHo');
    await new Promise((res) => setImmediate(res));
    session.onDeadline();
    await client.until((o) => o.startsWith('HTTP/1.1 408 '));
    await once(client, 'close');
    assert.deepEqual(r.rejected, ['timeout']);
  });

  it('a server that does not answer in time: 504, its server released, the client connection closed', async () => {
    const b = await backend();
    const r = rig(b.port);
    const { client, session } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    assert.equal(r.pool.runtime(r.server.id)!.active, 1);
    session.onDeadline(); // the response deadline
    await client.until((o) => o.startsWith('HTTP/1.1 504 '));
    assert.equal(r.pool.runtime(r.server.id)!.active, 0);
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error]),
      [[504, 'response timeout']],
    );
    await once(up, 'close');
  });

  it('the client closing mid-exchange: recorded as 499, the server connection closed', async () => {
    const b = await backend();
    const r = rig(b.port);
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    // Gone (not a half-close after a complete request, which is answered).
    client.destroy();
    await once(up, 'close');
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error]),
      [[499, 'client aborted']],
    );
    assert.equal(r.pool.runtime(r.server.id)!.active, 0);
  });
});

describe('HttpSession: the upstream attempt and outcomes', () => {
  it('a refused connect: tried again where allowed, then 502 with the socket error; passive health hears each try', async () => {
    const port = await freePort();
    const log: string[] = [];
    const r = rig(port, { phases: [tracer(log)] });
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await client.until((o) => o.startsWith('HTTP/1.1 502 ') && o.includes('\r\n\r\n'));
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error, x.tries]),
      [[502, 'connect: ECONNREFUSED', 1]],
    );
    // One server, so no other to retry on: one try, reported to passive health as a connect failure.
    assert.deepEqual(
      log.filter((l) => l.includes('attemptDone')),
      ['t attemptDone connect 0'],
    );
    assert.equal(r.pool.runtime(r.server.id)!.active, 0);
  });

  it('a kept-alive server connection the server drops unanswered: the request goes again on a new connection, not counted as a try', async () => {
    const b = await backend();
    const log: string[] = [];
    const r = rig(b.port, { phases: [tracer(log)] });
    const { client } = r.open();
    client.send('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    up.write(OK);
    await client.untilCount('hello', 1);
    client.send('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.match(await readRequest(up), /^GET \/2 /); // on the reused connection
    up.destroy(); // dropped without an answer, as a server closing an idle connection does
    const up2 = await b.next();
    assert.match(await readRequest(up2), /^GET \/2 /);
    up2.write(OK);
    await client.untilCount('hello', 2);
    assert.deepEqual(
      r.records.map((x) => [x.status, x.tries]),
      [
        [200, 1],
        [200, 1],
      ],
    );
    // Not the server's failure: passive health hears no failure for the stale connection.
    assert.deepEqual(
      log.filter((l) => l.includes('attemptDone')),
      ['t attemptDone ok 200', 't attemptDone ok 0', 't attemptDone ok 200'],
    );
  });

  it('no available server: 503 with the pool\'s Retry-After, and the connection is kept', async () => {
    const b = await backend();
    const r = rig(b.port, { admin: 'maint' });
    const { client, session } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await client.until((o) => o.includes('\r\n\r\n') && o.startsWith('HTTP/1.1 503 '));
    assert.match(client.out, /\r\nRetry-After: 3\r\n/);
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error, x.tries]),
      [[503, 'no available server', 0]],
    );
    assert.equal(session.idle, true);
  });

  it('every server full: the request waits in the pool queue; its deadline answers 503 queue timeout', async () => {
    const b = await backend();
    const r = rig(b.port, { maxConnections: 1, queueMax: 4 });
    const first = r.open();
    first.client.send('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    const second = r.open();
    second.client.send('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((res) => setImmediate(res));
    assert.equal(second.client.out, '');
    second.session.onDeadline(); // the queue deadline
    await second.client.until((o) => o.startsWith('HTTP/1.1 503 ') && o.includes('\r\n\r\n'));
    assert.match(second.client.out, /\r\nRetry-After: 3\r\n/);
    assert.equal(r.records[0]!.error, 'queue timeout');
    // A third request waits too, and gets the slot when the first ends.
    const third = r.open();
    third.client.send('GET /3 HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((res) => setImmediate(res));
    up.write(OK);
    await first.client.untilCount('hello', 1);
    assert.match(await readRequest(up), /^GET \/3 /);
    up.write(OK);
    await third.client.untilCount('hello', 1);
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error]),
      [
        [503, 'queue timeout'],
        [200, ''],
        [200, ''],
      ],
    );
  });
});

/** A phase that records the hooks it saw. */
function tracer(log: string[], name = 't'): HttpPhase {
  return {
    name,
    onRequest: () => void log.push(`${name} request`),
    onPicked: (ex) => void log.push(`${name} picked ${ex.picked!.name}`),
    upstreamHead: () => {
      log.push(`${name} upstreamHead`);
      return 'X-Trace: ' + name + '\r\n';
    },
    onResponseHead: (_ex, res) => {
      log.push(`${name} responseHead ${res.status}`);
      return 'X-Traced: ' + name + '\r\n';
    },
    onAttemptDone: (ex, _rt, failure) => void log.push(`${name} attemptDone ${failure || 'ok'} ${ex.status}`),
    onDone: (ex) => void log.push(`${name} done ${ex.status}`),
  };
}

describe('HttpSession: phases', () => {
  it('runs the hooks in order, adds their header lines both ways, and the phases see the same exchange', async () => {
    const b = await backend();
    const log: string[] = [];
    const r = rig(b.port, { phases: [tracer(log)] });
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    assert.match(await readRequest(up), /\r\nX-Trace: t\r\n/);
    up.write(OK);
    await client.untilCount('hello', 1);
    assert.match(client.out, /\r\nX-Traced: t\r\n/);
    assert.deepEqual(log, ['t request', 't upstreamHead', 't picked s1', 't responseHead 200', 't attemptDone ok 200', 't done 200']);
  });

  it('a listener phase answering with an error page: no route, no server; counted as a refusal; keep-alive', async () => {
    const b = await backend();
    const deny: HttpPhase = { name: 'deny', onRequest: (ex) => (ex.path === '/no' ? { outcome: Outcome.of('forbidden', 'denied'), headers: 'X-Why: test\r\n', rejected: true } : undefined) };
    const r = rig(b.port, { before: compilePhases([deny]) });
    const { client } = r.open();
    client.send('GET /no HTTP/1.1\r\nHost: a\r\n\r\n');
    await client.until((o) => o.includes('\r\n\r\n') && o.includes('Content-Length'));
    assert.match(client.out, /^HTTP\/1\.1 403 /);
    assert.match(client.out, /\r\nX-Why: test\r\n/);
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error, x.route]),
      [[403, 'forbidden: denied', '']],
    );
    assert.deepEqual(r.rejected, ['forbidden']);
    assert.equal(b.accepted.length, 0);
    // The connection is kept: the next request goes through.
    client.send('GET /yes HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    up.write(OK);
    await client.untilCount('hello', 1);
  });

  it('a waiting phase: the client bytes that arrive meanwhile are buffered, not parsed; the request goes on with what the promise gave', async () => {
    const b = await backend();
    let release!: (v: string) => void;
    const wait: HttpPhase = {
      name: 'wait',
      onRequest: () => new Promise<string>((res) => (release = res)),
      onResume: (ex, v) => {
        ex.pinned = undefined;
        return v === 'deny' ? { outcome: Outcome.of('forbidden'), headers: '' } : undefined;
      },
      upstreamHead: () => 'X-Waited: yes\r\n',
    };
    const r = rig(b.port, { phases: [wait] });
    const { client } = r.open();
    client.send('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n');
    await new Promise((res) => setImmediate(res));
    client.send('body'); // arrives while the phase waits
    await new Promise((res) => setImmediate(res));
    assert.equal(client.out, '');
    release('go');
    const up = await b.next();
    const got = await readRequest(up, 4);
    assert.match(got, /\r\nX-Waited: yes\r\n/);
    assert.ok(got.endsWith('\r\n\r\nbody'));
    up.write(OK);
    await client.untilCount('hello', 1);

    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((res) => setImmediate(res));
    release('deny');
    await client.until((o) => o.includes('403'));
    assert.deepEqual(
      r.records.map((x) => x.status),
      [200, 403],
    );
  });

  it('a listener phase that waits: routing and the route\'s phases follow once it settles', async () => {
    const b = await backend();
    const log: string[] = [];
    let release!: () => void;
    const gate: HttpPhase = { name: 'gate', onRequest: () => new Promise<void>((res) => (release = res)), onResume: () => void log.push('gate resumed') };
    const r = rig(b.port, { before: compilePhases([gate]), phases: [tracer(log)] });
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((res) => setImmediate(res));
    assert.deepEqual(log, []);
    release();
    const up = await b.next();
    await readRequest(up);
    up.write(OK);
    await client.untilCount('hello', 1);
    assert.deepEqual(log.slice(0, 2), ['gate resumed', 't request']);
    assert.equal(r.records[0]!.route, 'r');
  });

  it('onPicked answering instead: a redirect to the picked server, which is never contacted nor counted busy', async () => {
    const b = await backend();
    const toServer: HttpPhase = {
      name: 'to-server',
      onPicked: (ex: Exchange): Answer => ({
        status: 302,
        render: (req, _scheme, keep) =>
          `HTTP/1.1 302 Found\r\nLocation: http://${ex.picked!.host}:${ex.picked!.port}${req.path}\r\nContent-Length: 0\r\n${keep ? '' : 'Connection: close\r\n'}\r\n`,
      }),
    };
    const r = rig(b.port, { phases: [toServer] });
    const { client } = r.open();
    client.send('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
    await client.until((o) => o.endsWith('\r\n\r\n'));
    assert.match(client.out, new RegExp(`^HTTP/1\\.1 302 Found\\r\\nLocation: http://127\\.0\\.0\\.1:${b.port}/x\\r\\n`));
    assert.deepEqual(
      r.records.map((x) => [x.status, x.server]),
      [[302, 's1']],
    );
    assert.equal(b.accepted.length, 0);
    assert.equal(r.pool.runtime(r.server.id)!.active, 0);
  });

  it('onResponseHead answering instead of the server: the server connection is closed, the client gets the answer and keeps its connection', async () => {
    const b = await backend();
    const replace: HttpPhase = {
      name: 'replace',
      onResponseHead: (_ex, res) => (res.status === 500 ? { outcome: Outcome.of('forbidden', 'replaced'), headers: '' } : ''),
    };
    const r = rig(b.port, { phases: [replace] });
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    up.write('HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\npartial');
    await client.until((o) => o.startsWith('HTTP/1.1 403 ') && o.includes('\r\n\r\n'));
    assert.doesNotMatch(client.out, /Oops|partial/);
    await once(up, 'close');
    assert.equal(r.pool.runtime(r.server.id)!.active, 0);
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up2 = await b.next();
    await readRequest(up2);
    up2.write(OK);
    await client.untilCount('hello', 1);
    assert.deepEqual(
      r.records.map((x) => [x.status, x.error]),
      [
        [403, 'forbidden: replaced'],
        [200, ''],
      ],
    );
  });
});

/** A body phase that upper-cases the payload (replacing the body), or only collects it (observing). */
function bodyPhase(seen: string[], replace: boolean): HttpPhase {
  return {
    name: replace ? 'upper' : 'tee',
    onResponseHead: (ex) => {
      ex.bodyReplaced = replace;
      return '';
    },
    onResponseBody: (_ex, data, end) => {
      seen.push(data.toString('latin1') + (end ? '|end' : ''));
      return replace ? Buffer.from(data.toString('latin1').toUpperCase(), 'latin1') : data;
    },
  };
}

describe('HttpSession: response body phases', () => {
  it('a replaced body of a Content-Length response goes to an HTTP/1.1 client chunked, without the old length', async () => {
    const b = await backend();
    const seen: string[] = [];
    const r = rig(b.port, { phases: [bodyPhase(seen, true)] });
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    up.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nhello');
    await client.until((o) => o.includes('HELLO'));
    up.write('world');
    await client.until((o) => o.endsWith('0\r\n\r\n'));
    assert.equal(client.out, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHELLO\r\n5\r\nWORLD\r\n0\r\n\r\n');
    assert.deepEqual(seen, ['hello', 'world', '|end']);
    assert.equal(r.records[0]!.bytesOut, client.out.length);
    // Both connections are kept: framing held.
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    await readRequest(up);
    up.write(OK);
    await client.until((o) => o.endsWith('5\r\nHELLO\r\n0\r\n\r\n'));
  });

  it('to an HTTP/1.0 client the replaced body ends with the connection', async () => {
    const b = await backend();
    const seen: string[] = [];
    const r = rig(b.port, { phases: [bodyPhase(seen, true)] });
    const { client } = r.open();
    client.send('GET / HTTP/1.0\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    up.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nabc');
    await client.until((o) => o.includes('ABC'));
    up.write('defg');
    await once(client, 'close');
    assert.equal(client.out, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nABCDEFG');
    assert.deepEqual(seen, ['abc', 'defg', '|end']);
  });

  it('a chunked server response replaced: the phase sees the payload without the framing, the client gets it re-chunked', async () => {
    const b = await backend();
    const seen: string[] = [];
    const r = rig(b.port, { phases: [bodyPhase(seen, true)] });
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    up.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
    await client.until((o) => o.includes('ABC'));
    up.write('4;x=y\r\ndefg\r\n0\r\n\r\n');
    await client.until((o) => o.endsWith('0\r\n\r\n'));
    assert.equal(client.out, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nABC\r\n4\r\nDEFG\r\n0\r\n\r\n');
    assert.deepEqual(seen, ['abc', 'defg', '|end']);
    assert.equal(r.records[0]!.status, 200);
  });

  it('observing only: the client gets the server bytes unchanged, chunk framing and all; the phase sees the payload', async () => {
    const b = await backend();
    const seen: string[] = [];
    const r = rig(b.port, { phases: [bodyPhase(seen, false)] });
    const { client } = r.open();
    client.send('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const up = await b.next();
    await readRequest(up);
    const body = '3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n';
    up.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + body);
    await client.until((o) => o.endsWith('\r\n\r\n') && o.includes('X-Trailer'));
    assert.equal(client.out, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + body);
    assert.equal(seen.join(''), 'abcdefg|end');
    assert.equal(r.records[0]!.status, 200);
  });
});

/** `n` bytes of a pattern that differs for every `seed`, so that a byte of one response in another shows. */
function pattern(seed: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 9) * 7 + seed * 101) & 255;
  return b;
}

describe("HttpSession: the server connection's read buffer", () => {
  for (const [readBuffer, withPhase] of [[32768, false], [4096, false], [0, false], [32768, true]] as const) {
    const what = withPhase ? 'a body phase that keeps every chunk it sees: its chunks hold the exact bytes' : 'relayed as they are';
    it(`readBuffer ${readBuffer}, ${what}: large responses over one reused server connection reach a client that reads late, byte for byte`, async () => {
      const SIZE = 12 * 1024 * 1024;
      const N = 3;
      const b = await backend();
      const kept: Buffer[] = [];
      const keep: HttpPhase = { name: 'keep', onResponseHead: () => '', onResponseBody: (_ex, data) => (kept.push(data), data) };
      const r = rig(b.port, { readBuffer, phases: withPhase ? [keep] : [] });
      // A real client connection on loopback: the session writes to a net.Socket, which may hold a write.
      const srv = createServer();
      srv.listen(0, '127.0.0.1');
      await once(srv, 'listening');
      cleanup.push(() => srv.close());
      const client = new NetSocket();
      cleanup.push(() => client.destroy());
      client.connect((srv.address() as { port: number }).port, '127.0.0.1');
      const [accepted] = (await once(srv, 'connection')) as [Socket];
      cleanup.push(() => accepted.destroy());
      let heldWrites = 0;
      let firstHeld: () => void = () => {};
      const held = new Promise<void>((res) => (firstHeld = res));
      // A write the kernel did not take at once stays in `writableLength` (not while corked: then every write does).
      const watch = (name: 'write' | 'uncork'): void => {
        const f = (accepted[name] as (...a: unknown[]) => unknown).bind(accepted);
        (accepted as unknown as Record<string, unknown>)[name] = (...a: unknown[]): unknown => {
          const ret = f(...a);
          if (accepted.writableCorked === 0 && accepted.writableLength > 0 && heldWrites++ === 0) firstHeld();
          return ret;
        };
      };
      watch('write');
      watch('uncork');
      const session = new HttpSession(accepted, r.lst);
      r.lst.sessions.add(session);
      client.pause();
      let req = '';
      for (let i = 0; i < N; i++) req += `GET /${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
      client.write(req);
      const up = await b.next();
      void (async () => {
        for (let i = 0; i < N; i++) {
          await readRequest(up);
          up.write(`HTTP/1.1 200 OK\r\nContent-Length: ${SIZE}\r\n\r\n`);
          up.write(pattern(i, SIZE));
        }
      })();
      // The client reads nothing until the session's socket holds a write: the buffer under it is left to it.
      await held;
      const chunks: Buffer[] = [];
      let got = 0;
      const heads = Buffer.byteLength(`HTTP/1.1 200 OK\r\nContent-Length: ${SIZE}\r\n\r\n`) * N;
      client.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
      });
      client.resume();
      while (got < heads + N * SIZE) await once(client, 'data');
      const all = Buffer.concat(chunks);
      let at = 0;
      for (let i = 0; i < N; i++) {
        const head = `HTTP/1.1 200 OK\r\nContent-Length: ${SIZE}\r\n\r\n`;
        assert.equal(all.toString('latin1', at, at + head.length), head, `response ${i} head`);
        at += head.length;
        assert.ok(all.subarray(at, at + SIZE).equals(pattern(i, SIZE)), `response ${i} body, byte for byte`);
        at += SIZE;
      }
      assert.equal(b.accepted.length, 1, 'one server connection, reused');
      assert.ok(heldWrites > 0, 'the client socket held writes');
      if (!withPhase) return;
      const seen = Buffer.concat(kept);
      assert.equal(seen.length, N * SIZE);
      for (let i = 0; i < N; i++) assert.ok(seen.subarray(i * SIZE, (i + 1) * SIZE).equals(pattern(i, SIZE)), `what the phase kept of response ${i}`);
    });
  }
});
