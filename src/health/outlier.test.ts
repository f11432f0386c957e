import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { roundRobin } from '../balancer/round-robin.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import { OutlierDetector, ejectionMs, maxEjected, type OutlierOptions } from './outlier.js';

const srv = (name: string): Server => ({ id: serverId('p', name), name, host: '127.0.0.1', port: 1, weight: 1, backup: false, maxConnections: 0, meta: {} });

function setup(n: number, o: Partial<OutlierOptions> = {}) {
  const clock = new ManualClock(0);
  const pool = new Pool(
    { name: 'p', factory: roundRobin, balancerOptions: undefined, rng: new SeededRng(1), clock },
    Array.from({ length: n }, (_, i) => ({ server: srv(`s${i}`) })),
  );
  const ejected: string[] = [];
  const det = new OutlierDetector(
    pool,
    { consecutiveErrors: 3, ejectForMs: 60_000, maxEjectForMs: 300_000, maxEjectPercent: 50, errors: ['connect', 'response', '5xx'], ...o },
    { clock, onEject: (id) => ejected.push(id) },
  );
  return { pool, det, clock, ejected, rt: (i: number) => pool.byName(`s${i}`)! };
}

describe('outlier detection', () => {
  it('ejects after N consecutive errors; a success in between resets the count; client aborts count for nothing', async () => {
    const { pool, det, rt, ejected } = setup(4);
    const s0 = rt(0);
    det.record(s0, 'connect', 0);
    det.record(s0, '', 502);
    det.record(s0, '', 200);
    det.record(s0, 'response', 0);
    det.record(s0, '', 0); // the client left: neutral
    det.record(s0, '', 500);
    assert.equal(s0.op, 'up');
    det.record(s0, 'connect', 0);
    assert.equal(s0.op, 'down');
    assert.deepEqual(ejected, [s0.server.id]);
    assert.ok(!pool.current.set.available.some((s) => s.name === 's0'));
    const ev = pool.events.list().at(-1)!;
    assert.equal(ev.cause, 'passive');
    assert.match(ev.detail ?? '', /3 consecutive errors \(last: connect failed\); ejected for 60s/);
    await det.stop(0);
  });

  it('counts only the configured kinds of error', () => {
    const { det, rt } = setup(4, { errors: ['connect'] });
    for (let i = 0; i < 5; i++) det.record(rt(0), '', 500);
    assert.equal(rt(0).op, 'up', '5xx do not count');
    for (let i = 0; i < 3; i++) det.record(rt(0), 'connect', 0);
    assert.equal(rt(0).op, 'down');
    void det.stop(0);
  });

  it('never ejects more than maxEjectPercent of the pool', () => {
    const { det, rt } = setup(4, { maxEjectPercent: 50 });
    for (let s = 0; s < 4; s++) for (let i = 0; i < 3; i++) det.record(rt(s), 'connect', 0);
    assert.deepEqual([0, 1, 2, 3].map((i) => rt(i).op), ['down', 'down', 'up', 'up']);
    assert.equal(det.capped, 2);
    void det.stop(0);
  });

  it('ejection time doubles on repeat ejections up to the cap; the cap of ejections rounds down', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => ejectionMs(n, 30_000, 300_000)), [30_000, 60_000, 120_000, 240_000, 300_000]);
    assert.equal(maxEjected(3, 50), 1);
    assert.equal(maxEjected(1, 50), 0);
    assert.equal(maxEjected(10, 100), 10);
  });

  it('an ejection ends after its time (real timers), and the next one lasts twice as long', async () => {
    const { det, rt, clock } = setup(2, { ejectForMs: 40, maxEjectForMs: 10_000 });
    const s0 = rt(0);
    for (let i = 0; i < 3; i++) det.record(s0, 'connect', 0);
    assert.equal(s0.op, 'down');
    const t0 = performance.now();
    while (s0.op === 'down' && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s0.op, 'up');
    const first = performance.now() - t0;
    clock.advance(100);
    for (let i = 0; i < 3; i++) det.record(s0, 'connect', 0);
    const t1 = performance.now();
    while (s0.op === 'down' && performance.now() - t1 < 2000) await new Promise((r) => setTimeout(r, 5));
    const second = performance.now() - t1;
    assert.equal(s0.ejections, 2);
    // Timers never fire early, so lower bounds hold on any machine: the second lasted at least twice the first's time.
    assert.ok(first >= 35 && second >= 75, `first ${first}ms, second ${second}ms`);
    await det.stop(0);
  });
});
