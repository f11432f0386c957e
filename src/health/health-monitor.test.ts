import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { roundRobin } from '../balancer/round-robin.js';
import { systemClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import { failed, passed, type CheckResult, type HealthCheck } from './health-check.js';
import { HealthMonitor, type MonitorSchedule } from './health-monitor.js';

const srv = (name: string): Server => ({ id: serverId('p', name), name, host: '127.0.0.1', port: 1, weight: 1, backup: false, maxConnections: 0, meta: {} });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A check whose answer and duration the test sets; records how many probes of a server overlap. */
class ScriptedCheck implements HealthCheck {
  readonly kind = 'scripted';
  ok = true;
  delayMs = 0;
  /** Ignore the abort signal (a misbehaving check): the monitor must still cut it. */
  deaf = false;
  inflight = 0;
  maxInflight = 0;
  probes = 0;
  async check(_s: Server, signal: AbortSignal): Promise<CheckResult> {
    this.probes++;
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    try {
      if (this.delayMs > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.delayMs);
          if (!this.deaf) signal.addEventListener('abort', () => (clearTimeout(t), resolve()));
        });
      }
      if (signal.aborted && !this.deaf) return failed('timeout');
      return this.ok ? passed(1) : failed('status', '500');
    } finally {
      this.inflight--;
    }
  }
}

function setup(schedule: Partial<MonitorSchedule> = {}) {
  const pool = new Pool({ name: 'p', factory: roundRobin, balancerOptions: undefined, rng: new SeededRng(1), clock: systemClock }, [
    { server: srv('a'), op: 'starting' },
  ]);
  const check = new ScriptedCheck();
  const mon = new HealthMonitor(
    pool,
    check,
    { intervalMs: 20, timeoutMs: 50, rise: 2, fall: 3, jitterMs: 0, fastIntervalMs: 20, downIntervalMs: 20, ...schedule },
    new SeededRng(2),
  );
  return { pool, check, mon, a: pool.byName('a')! };
}

async function until(cond: () => boolean, ms: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error('timed out');
    await sleep(2);
  }
  return performance.now() - t0;
}

describe('health monitor', () => {
  it('decides a starting server at its first probe, then follows rise/fall with causes in the events', async () => {
    const { pool, check, mon, a } = setup();
    await mon.start();
    await until(() => a.op === 'up', 10_000);
    check.ok = false;
    await until(() => a.op === 'down', 10_000);
    check.ok = true;
    await until(() => a.op === 'up', 10_000);
    await mon.stop(0);
    const ev = pool.events.list().map((e) => `${e.from}->${e.to} ${e.cause} ${e.detail}`);
    assert.equal(ev.length, 3);
    assert.match(ev[0]!, /^starting->up probe 1 probe passed/);
    assert.match(ev[1]!, /^up->down probe 3 probes failed, last: status: 500/);
    assert.match(ev[2]!, /^down->up probe 2 probes passed/);
  });

  it('never runs two probes of one server at once, even when probes are slower than the interval', async () => {
    const { check, mon } = setup({ intervalMs: 1, fastIntervalMs: 1, downIntervalMs: 1, timeoutMs: 1000 });
    check.delayMs = 15;
    await mon.start();
    await until(() => check.probes >= 8, 10_000);
    await mon.stop(0);
    assert.equal(check.maxInflight, 1);
  });

  it('cuts a probe at its timeout even when the check ignores its signal', async () => {
    const { check, mon, a } = setup({ timeoutMs: 40, fall: 1 });
    check.delayMs = 5000;
    check.deaf = true;
    await mon.start();
    const took = await until(() => a.op === 'down', 10_000);
    const st = mon.status()[0]!;
    await mon.stop(0);
    assert.ok(took < 2000, `down after ${took}ms, not at the check's 5 s`);
    assert.equal(st.timedOut, 1);
  });

  it('does not probe a server in maint, and probes it again at once when it leaves maint', async () => {
    const { pool, check, mon } = setup({ intervalMs: 10_000, fastIntervalMs: 10_000, downIntervalMs: 10_000 });
    pool.setAdmin('a', 'maint');
    await mon.start();
    await sleep(60);
    assert.equal(check.probes, 0);
    assert.equal(mon.status()[0]!.paused, true);
    pool.setAdmin('a', 'ready');
    await until(() => check.probes === 1, 10_000);
    await mon.stop(0);
  });

  it('forceDown (a passive ejection) needs rise passing probes to come back', async () => {
    const { pool, check, mon, a } = setup({ rise: 3 });
    await mon.start();
    await until(() => a.op === 'up', 10_000);
    const before = check.probes;
    mon.forceDown(a.server.id, 'ejected');
    assert.equal(a.op, 'down');
    await until(() => a.op === 'up', 10_000);
    assert.ok(check.probes - before >= 3, `${check.probes - before} probes`);
    await mon.stop(0);
    assert.equal(pool.events.list().at(-1)!.cause, 'probe');
  });
});
