import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { roundRobin } from '../balancer/round-robin.js';
import '../balancer/index.js';
import { getBalancer } from '../balancer/registry.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { EventLog } from './event-log.js';
import { Pool, type PoolEvent } from './pool.js';
import { RequestQueue, type QueueWaiter } from './queue.js';
import { RAMP_MIN_FRACTION, rampFraction, rampStepMs } from './slow-start.js';

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

function pool(servers: Server[], options: { slowStartMs?: number; queueMax?: number; panic?: number; balance?: string } = {}) {
  const clock = new ManualClock(1000);
  const factory = getBalancer(options.balance ?? 'roundrobin') ?? roundRobin;
  const p = new Pool(
    {
      name: 'p',
      factory,
      balancerOptions: factory.parseOptions(undefined),
      rng: new SeededRng(1),
      clock,
      slowStartMs: options.slowStartMs,
      queueMax: options.queueMax,
      panicThresholdPct: options.panic,
    },
    servers.map((server) => ({ server })),
  );
  const events: PoolEvent[] = [];
  p.onEvent((e) => events.push(e));
  return { p, clock, events };
}

const names = (p: Pool): string[] => p.current.set.available.map((s) => s.name);

describe('pool lifecycle', () => {
  it('active checks and outlier detection are separate: down while either says down', () => {
    const { p, events } = pool([srv('a'), srv('b')]);
    const a = serverId('p', 'a');
    assert.ok(p.setOp(a, 'down', 'passive', 'ejected'));
    assert.deepEqual(names(p), ['b']);
    assert.ok(!p.setOp(a, 'down', 'probe', 'probe failed'), 'already down: no change');
    assert.ok(!p.setOp(a, 'up', 'passive', 'ejection ended'), 'probes still say down');
    assert.deepEqual(names(p), ['b']);
    assert.ok(p.setOp(a, 'up', 'probe', 'passed'));
    assert.deepEqual(names(p), ['a', 'b']);
    assert.deepEqual(
      events.map((e) => `${e.kind} ${e.from}->${e.to} ${e.cause}`),
      ['op up->down passive', 'op down->up probe'],
    );
  });

  it('a probe never overrides an admin decision', () => {
    const { p } = pool([srv('a'), srv('b')]);
    p.setAdmin('a', 'maint');
    p.setOp(serverId('p', 'a'), 'up', 'probe');
    assert.deepEqual(names(p), ['b']);
    p.setAdmin('a', 'drain');
    assert.deepEqual(names(p), ['b'], 'drain takes no new requests');
    assert.ok(p.acceptsPinned(serverId('p', 'a')), 'drain keeps pinned traffic');
    p.setAdmin('a', 'ready');
    assert.deepEqual(names(p), ['a', 'b']);
  });

  it('backups take over only when every primary is down, and hand back after', () => {
    const { p } = pool([srv('a'), srv('b'), srv('s', { backup: true })]);
    assert.deepEqual(names(p), ['a', 'b']);
    p.setOp(serverId('p', 'a'), 'down', 'probe');
    assert.deepEqual(names(p), ['b']);
    p.setOp(serverId('p', 'b'), 'down', 'probe');
    assert.deepEqual(names(p), ['s']);
    p.setOp(serverId('p', 'b'), 'up', 'probe');
    assert.deepEqual(names(p), ['b']);
  });

  it('panic mode spreads over every server when too few are available; off by default', () => {
    const four = ['a', 'b', 'c', 'd'].map((n) => srv(n));
    const off = pool(four).p;
    const on = pool(four, { panic: 50 }).p;
    for (const q of [off, on]) for (const n of ['a', 'b', 'c']) q.setOp(serverId('p', n), 'down', 'probe');
    assert.deepEqual(names(off), ['d']);
    assert.deepEqual(names(on), ['a', 'b', 'c', 'd']);
    on.setOp(serverId('p', 'a'), 'up', 'probe'); // 2 of 4 = 50%: not below the threshold
    assert.deepEqual(names(on), ['a', 'd']);
  });

  it('slow start: a server back from down ramps from a small fraction to its full weight; not at start', () => {
    const { p, clock, events } = pool([srv('a', { weight: 10 }), srv('b', { weight: 10 })], { slowStartMs: 10_000 });
    const a = p.byName('a')!;
    assert.equal(a.weight, 10, 'no ramp at process start');
    p.setOp(a.server.id, 'down', 'probe');
    p.setOp(a.server.id, 'up', 'probe');
    assert.equal(a.weight, 10 * RAMP_MIN_FRACTION);
    clock.advance(5000);
    (p as unknown as { slowStart: { step(): boolean } }).slowStart.step();
    assert.equal(a.weight, 5);
    clock.advance(5000);
    (p as unknown as { slowStart: { step(): boolean } }).slowStart.step();
    assert.equal(a.weight, 10);
    assert.equal(a.effectiveWeight, undefined);
    assert.deepEqual(
      events.filter((e) => e.kind === 'weight').map((e) => `${e.from}->${e.to}`),
      ['10->1', 'ramping->10'],
    );
    p.close();
  });

  it('slow start reaches every balancer through effective weights (roundrobin share follows the ramp)', () => {
    const { p, clock } = pool([srv('a', { weight: 1 }), srv('b', { weight: 1 })], { slowStartMs: 1000 });
    const a = p.byName('a')!;
    p.setOp(a.server.id, 'down', 'probe');
    p.setOp(a.server.id, 'up', 'probe');
    const share = (): number => {
      let n = 0;
      for (let i = 0; i < 1000; i++) if (p.pick({})!.name === 'a') n++;
      return n / 1000;
    };
    const first = share();
    clock.advance(1000);
    (p as unknown as { slowStart: { step(): boolean } }).slowStart.step();
    const last = share();
    assert.ok(Math.abs(first - 0.1 / 1.1) < 0.02, `first ${first}`);
    assert.ok(Math.abs(last - 0.5) < 0.02, `last ${last}`);
    p.close();
  });

  it('rampFraction is linear from the minimum to 1; steps are 20 per ramp within 50ms-1s', () => {
    assert.equal(rampFraction(0, 1000), RAMP_MIN_FRACTION);
    assert.equal(rampFraction(500, 1000), 0.5);
    assert.equal(rampFraction(2000, 1000), 1);
    assert.equal(rampStepMs(30_000), 1000);
    assert.equal(rampStepMs(2000), 100);
    assert.equal(rampStepMs(100), 50);
  });

  it('the event log keeps the last N events with a sequence and a time', () => {
    const log = new EventLog<number>(3);
    for (let i = 1; i <= 5; i++) log.push(i);
    assert.deepEqual(log.list(), [3, 4, 5]);
    assert.deepEqual(log.list(2), [4, 5]);
    const { p } = pool([srv('a')]);
    p.setAdmin('a', 'drain');
    p.setAdmin('a', 'ready');
    const evs = p.events.list();
    assert.equal(evs.length, 2);
    assert.ok(evs[1]!.seq > evs[0]!.seq);
    assert.ok(Math.abs(evs[0]!.at - Date.now()) < 5000);
    assert.equal(evs[0]!.cause, 'admin');
  });
});

describe('request queue', () => {
  const waiter = (name: string, log: string[], ok = true): QueueWaiter & { name: string } => ({
    name,
    resumeFromQueue: () => {
      log.push(`resume ${name}`);
      return ok;
    },
    rejectFromQueue: () => log.push(`reject ${name}`),
  });

  it('FIFO within a priority, high before normal before low, bounded, O(1) removal', () => {
    const q = new RequestQueue<string>(4);
    assert.ok(q.enqueue('n1'));
    assert.ok(q.enqueue('l1', 'low'));
    assert.ok(q.enqueue('h1', 'high'));
    assert.ok(q.enqueue('n2'));
    assert.ok(!q.enqueue('n3'), 'full');
    assert.ok(q.remove('n1'));
    assert.ok(!q.remove('n1'));
    assert.equal(q.size, 3);
    assert.equal(q.shift(), 'h1');
    q.unshift('h1');
    assert.equal(q.size, 3);
    assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], ['h1', 'n2', 'l1', undefined]);
  });

  it('the pool serves waiters when a slot frees, and rejects them when nothing is available', () => {
    const { p } = pool([srv('a', { maxConnections: 1 })], { queueMax: 2 });
    const log: string[] = [];
    const a = p.pick({})!;
    const rt = p.acquire(a)!;
    assert.equal(p.pick({}), undefined, 'saturated');
    const w1 = waiter('w1', log);
    const w2 = waiter('w2', log, false);
    assert.ok(p.enqueue(w2));
    assert.ok(p.enqueue(w1));
    assert.ok(!p.enqueue(waiter('w3', log)), 'queue full');
    p.release(rt, { ok: true });
    assert.deepEqual(log, ['resume w2'], 'w2 could not get a server: it stays first, w1 waits');
    assert.equal(p.queued, 2);
    p.setOp(a.id, 'down', 'probe');
    assert.deepEqual(log, ['resume w2', 'reject w2', 'reject w1']);
    assert.equal(p.queued, 0);
  });
});
