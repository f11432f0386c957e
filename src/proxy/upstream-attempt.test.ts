import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import '../balancer/index.js';
import { getBalancer } from '../balancer/registry.js';
import { ManualClock } from '../core/clock.js';
import { Outcome, type ServerFailure } from '../core/outcome.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import type { ServerRuntime } from '../pool/server-runtime.js';
import { UpstreamAttempt, type AttemptOwner, type AttemptPool, type ReleaseStats } from './upstream-attempt.js';

const srv = (name: string, extra: Partial<Server> = {}): Server => ({
  id: serverId('p', name),
  name,
  host: '127.0.0.1',
  port: 1,
  weight: 1,
  backup: false,
  maxConnections: 0,
  meta: {},
  ...extra,
});

interface Told {
  rt: string;
  failure: ServerFailure;
  status: number;
}

function handle(servers: Server[], options: { retries?: number; queueMax?: number; balance?: string } = {}): AttemptPool & { told: Told[] } {
  const factory = getBalancer(options.balance ?? 'roundrobin')!;
  const pool = new Pool(
    { name: 'p', factory, balancerOptions: factory.parseOptions(options.balance === 'hash' ? { key: 'source-ip' } : undefined), rng: new SeededRng(1), clock: new ManualClock(1000), queueMax: options.queueMax },
    servers.map((server) => ({ server })),
  );
  const told: Told[] = [];
  return {
    pool,
    retries: options.retries ?? 2,
    told,
    onOutcome: (rt: ServerRuntime, failure: ServerFailure, status: number) => told.push({ rt: rt.server.name, failure, status }),
  };
}

/** A fake connector: it records what the attempt asks and lets the test say how each connect ends. */
class Owner implements AttemptOwner {
  readonly connects: string[] = [];
  queuedCount = 0;
  readonly failures: Outcome[] = [];
  readonly attempt = new UpstreamAttempt(this);
  /** Servers whose connect fails at once (synchronously, as a refused connect on a closed port may be reported). */
  readonly refuse = new Set<string>();
  attemptConnect(server: Server): void {
    this.connects.push(server.name);
    if (this.refuse.has(server.name)) {
      if (!this.attempt.retry(Outcome.of('connect-failed', 'ECONNREFUSED'), false, NONE)) this.failures.push(Outcome.of('connect-failed', 'ECONNREFUSED'));
    }
  }
  attemptQueued(): void {
    this.queuedCount++;
  }
  attemptFailed(outcome: Outcome): void {
    this.failures.push(outcome);
  }
}

const NONE: ReleaseStats = { status: 0, bytesIn: 0, bytesOut: 0, latencyMs: undefined };
const OK200: ReleaseStats = { status: 200, bytesIn: 10, bytesOut: 20, latencyMs: 1 };

describe('upstream attempt', () => {
  it('picks a server, acquires it, and releases it with the outcome', () => {
    const h = handle([srv('a'), srv('b')]);
    const o = new Owner();
    o.attempt.begin(h, undefined, '/x');
    o.attempt.run();
    assert.deepEqual(o.connects, ['a']);
    assert.equal(o.attempt.tries, 1);
    const rt = h.pool.byName('a')!;
    assert.equal(rt.active, 1);
    o.attempt.release(true, undefined, OK200);
    assert.equal(rt.active, 0);
    assert.equal(rt.bytesIn, 10);
    assert.equal(rt.bytesOut, 20);
    assert.equal(rt.failures, 0);
    assert.deepEqual(h.told, [{ rt: 'a', failure: '', status: 200 }]);
    // A second release does nothing: the server is no longer held.
    o.attempt.release(true, undefined, OK200);
    assert.equal(h.told.length, 1);
  });

  it('retries a failed connect on another server, counts the failure, and answers after the retries', () => {
    const h = handle([srv('a'), srv('b'), srv('c')], { retries: 1 });
    const o = new Owner();
    o.refuse.add('a').add('b').add('c');
    o.attempt.begin(h, undefined, undefined);
    o.attempt.run();
    // One try and one retry, each on a different server; then the last failure is the answer.
    assert.deepEqual(o.connects, ['a', 'b']);
    assert.equal(o.failures.length, 1);
    assert.equal(o.failures[0]!.code, 'connect-failed');
    assert.equal(o.failures[0]!.text, 'connect: ECONNREFUSED');
    assert.deepEqual(
      h.told.map((t) => [t.rt, t.failure]),
      [
        ['a', 'connect'],
        ['b', 'connect'],
      ],
    );
    assert.equal(h.pool.byName('a')!.failures, 1);
    assert.equal(h.pool.byName('a')!.active, 0);
    assert.equal(h.pool.byName('b')!.active, 0);
  });

  it('answers with the last failure when every server was tried before the retries ran out', () => {
    const h = handle([srv('a'), srv('b')], { retries: 5 });
    const o = new Owner();
    o.refuse.add('a').add('b');
    o.attempt.begin(h, undefined, undefined);
    o.attempt.run();
    assert.deepEqual(o.connects, ['a', 'b']);
    assert.equal(o.failures.length, 1);
    assert.equal(o.failures[0]!.reason, 'connect-failed');
    assert.equal(o.queuedCount, 0, 'a retry never queues');
  });

  it('retries a reset only when the request is repeatable (SPEC §4)', () => {
    const h = handle([srv('a'), srv('b')]);
    const o = new Owner();
    o.attempt.begin(h, undefined, undefined);
    o.attempt.run();
    assert.equal(o.attempt.retry(Outcome.of('upstream-reset'), false, NONE), false);
    assert.deepEqual(o.connects, ['a']);
    assert.deepEqual(h.told, [{ rt: 'a', failure: 'response', status: 0 }]);

    o.attempt.begin(h, undefined, undefined);
    o.attempt.run();
    assert.equal(o.attempt.retry(Outcome.of('upstream-reset'), true, NONE), true);
    assert.deepEqual(o.connects, ['a', 'b', 'a']);
    // A response timeout is never retried.
    assert.equal(o.attempt.retry(Outcome.of('response-timeout'), true, NONE), false);
  });

  it('goes again on a stale kept-alive connection without counting a try or avoiding the server', () => {
    const none = handle([srv('a')], { retries: 0 });
    const n = new Owner();
    n.attempt.begin(none, undefined, undefined);
    n.attempt.run();
    assert.equal(n.attempt.again(Outcome.of('upstream-reset'), true, NONE), false, 'retries: 0 tries once');
    const h = handle([srv('a')], { retries: 1 });
    const o = new Owner();
    o.attempt.begin(h, undefined, undefined);
    o.attempt.run();
    assert.equal(o.attempt.again(Outcome.of('upstream-reset'), true, NONE), true);
    assert.deepEqual(o.connects, ['a', 'a']);
    assert.equal(o.attempt.tries, 1);
    assert.equal(h.pool.byName('a')!.failures, 0, 'not the server’s failure');
    // Not repeatable: no second go.
    assert.equal(o.attempt.again(Outcome.of('upstream-reset'), false, NONE), false);
  });

  it('fails with no-server when nothing is available', () => {
    const h = handle([srv('a')]);
    h.pool.setAdmin('a', 'maint');
    const o = new Owner();
    o.attempt.begin(h, undefined, undefined);
    o.attempt.run();
    assert.deepEqual(o.connects, []);
    assert.equal(o.failures[0]!.code, 'no-server');
    assert.equal(o.failures[0]!.spec.retryAfter, true);
  });

  it('queues while every server is full, and connects when a slot frees', () => {
    const h = handle([srv('a', { maxConnections: 1 })], { queueMax: 1 });
    const first = new Owner();
    first.attempt.begin(h, undefined, undefined);
    first.attempt.run();
    const second = new Owner();
    second.attempt.begin(h, undefined, undefined);
    second.attempt.run();
    assert.equal(second.queuedCount, 1);
    assert.equal(second.attempt.queued, true);
    assert.equal(h.pool.queued, 1);
    // The queue holds one: a third is refused.
    const third = new Owner();
    third.attempt.begin(h, undefined, undefined);
    third.attempt.run();
    assert.equal(third.failures[0]!.code, 'queue-full');
    // The first request ends: the waiting one gets the slot.
    first.attempt.release(true, undefined, OK200);
    assert.deepEqual(second.connects, ['a']);
    assert.equal(second.attempt.queued, false);
    assert.ok(second.attempt.queueMs >= 0);
    assert.equal(h.pool.queued, 0);
    assert.equal(h.pool.byName('a')!.active, 1);
  });

  it('leaves the queue with queue-timeout, and with no-server when the servers go', () => {
    const h = handle([srv('a', { maxConnections: 1 })], { queueMax: 4 });
    const first = new Owner();
    first.attempt.begin(h, undefined, undefined);
    first.attempt.run();
    const w1 = new Owner();
    w1.attempt.begin(h, undefined, undefined);
    w1.attempt.run();
    assert.equal(w1.attempt.expireQueue(), true);
    assert.equal(w1.failures[0]!.code, 'queue-timeout');
    assert.equal(h.pool.queued, 0);
    assert.equal(w1.attempt.expireQueue(), false, 'only once');

    const w2 = new Owner();
    w2.attempt.begin(h, undefined, undefined);
    w2.attempt.run();
    assert.equal(h.pool.queued, 1);
    h.pool.setAdmin('a', 'maint');
    first.attempt.release(true, undefined, OK200);
    assert.equal(w2.failures[0]!.code, 'no-server');
    assert.deepEqual(w2.connects, []);

    // A client that leaves takes its place out of the queue.
    h.pool.setAdmin('a', 'ready');
    first.attempt.begin(h, undefined, undefined);
    first.attempt.run();
    const w3 = new Owner();
    w3.attempt.begin(h, undefined, undefined);
    w3.attempt.run();
    assert.equal(h.pool.queued, 1);
    w3.attempt.abandon();
    assert.equal(h.pool.queued, 0);
    first.attempt.release(true, undefined, OK200);
    assert.deepEqual(w3.connects, []);
  });

  it('honours a pin on every try unless the request failed on it, and not when the pool refuses pinned traffic', () => {
    const h = handle([srv('a'), srv('b'), srv('c')], { retries: 2 });
    const b = h.pool.byName('b')!.server;
    const o = new Owner();
    o.attempt.begin(h, undefined, undefined);
    o.attempt.pin(b);
    o.attempt.run();
    assert.deepEqual(o.connects, ['b']);
    // The pinned server failed: the retry goes elsewhere (SPEC §4: only on another server).
    o.attempt.retry(Outcome.of('connect-failed'), false, NONE);
    assert.notEqual(o.connects[1], 'b');
    o.attempt.release(true, undefined, OK200);

    // The pin was full on the first try: the balancer placed it; the retry finds the pin free and takes it.
    const full = handle([srv('a'), srv('b', { maxConnections: 1 }), srv('c')], { retries: 2 });
    const pinB = full.pool.byName('b')!.server;
    const holder = new Owner();
    holder.attempt.begin(full, undefined, undefined);
    holder.attempt.pin(pinB);
    holder.attempt.run();
    assert.deepEqual(holder.connects, ['b']);
    const p = new Owner();
    p.attempt.begin(full, undefined, undefined);
    p.attempt.pin(pinB);
    p.attempt.run();
    assert.notEqual(p.connects[0], 'b');
    holder.attempt.release(true, undefined, OK200);
    p.attempt.retry(Outcome.of('connect-failed'), false, NONE);
    assert.equal(p.connects[1], 'b');

    // A server in maint takes no pinned traffic.
    const m = handle([srv('a'), srv('b')]);
    m.pool.setAdmin('b', 'maint');
    const q = new Owner();
    q.attempt.begin(m, undefined, undefined);
    q.attempt.pin(m.pool.byName('b')!.server);
    q.attempt.run();
    assert.deepEqual(q.connects, ['a']);
  });

  it('picks by the hash key it was given, on every try', () => {
    const h = handle([srv('a'), srv('b'), srv('c'), srv('d')], { balance: 'hash' });
    const first = new Owner();
    first.attempt.begin(h, 'client-1', undefined);
    first.attempt.run();
    const again = new Owner();
    again.attempt.begin(h, 'client-1', undefined);
    again.attempt.run();
    assert.equal(again.connects[0], first.connects[0]);
    // A new request on the same attempt forgets the last one's tries and avoided servers.
    first.attempt.release(true, undefined, OK200);
    first.attempt.retry(Outcome.of('connect-failed'), false, NONE);
    first.attempt.begin(h, 'client-1', undefined);
    first.attempt.run();
    assert.equal(first.attempt.tries, 1);
    assert.equal(first.connects.at(-1), again.connects[0]);
  });
});
