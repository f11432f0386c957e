import { strict as assert } from 'node:assert';
import { createServer, type Socket } from 'node:net';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico, type PorticoDeps } from '../../app/app.js';
import { ManualClock } from '../../core/clock.js';
import type { Pool } from '../../pool/pool.js';
import { send, type Reply } from '../../test-helpers/http.js';
import { startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';

function get(port: number, path = '/', headers: Record<string, string> = {}, agent?: Agent): Promise<Reply> {
  return send(port, path, { headers, agent });
}

async function startProxy(pools: unknown[], deps: PorticoDeps = {}): Promise<{ p: Portico; port: number; pool: Pool }> {
  const p = createPortico(
    {
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools,
    },
    deps,
  );
  await p.start();
  return { p, port: p.address('web')!.port, pool: p.pools.get('web')! };
}

/** Origins whose /health answers 200 or 500 as `healthy` says; everything else answers with the origin's name. */
async function switchable(n: number): Promise<{ origins: Origin[]; healthy: Map<string, boolean> }> {
  const healthy = new Map<string, boolean>();
  const origins = await startOrigins(n, (req, res, o) => {
    if (req.url === '/health') {
      const ok = healthy.get(o.name) !== false;
      res.writeHead(ok ? 200 : 500);
      res.end(ok ? 'ok' : 'sick');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(o.name);
  });
  return { origins, healthy };
}

const available = (pool: Pool): string[] => pool.current.set.available.map((s) => s.name);

describe('active health checks on loopback', () => {
  it('a server whose health endpoint fails leaves after fall failed probes and returns after rise good ones', async () => {
    const healthy = new Map<string, boolean>();
    /** Probes of o2 answered, by answer: the test counts them rather than timing them. */
    const probes = { sick: 0, ok: 0 };
    const origins = await startOrigins(2, (req, res, o) => {
      if (req.url === '/health') {
        const ok = healthy.get(o.name) !== false;
        if (o.name === 'o2') probes[ok ? 'ok' : 'sick']++;
        res.writeHead(ok ? 200 : 500);
        res.end(ok ? 'ok' : 'sick');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(o.name);
    });
    const interval = 200;
    const timeout = 1000; // long: a probe cut by a loaded machine would count as a failure
    const rise = 2;
    const fall = 3;
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        health: { type: 'http', path: '/health', interval: `${interval}ms`, timeout: `${timeout}ms`, rise, fall },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    try {
      await waitFor(() => pool.byName('o2')!.op === 'up', 10_000, 'o2 up');
      healthy.set('o2', false);
      probes.sick = 0;
      const t0 = performance.now();
      // The predicate runs every 10 ms, far more often than the 200 ms between probes: the count it
      // sees when o2 leaves is the count that made it leave.
      let sickWhenOut = -1;
      await waitFor(() => !available(pool).includes('o2') && (sickWhenOut = probes.sick) >= 0, 10_000, 'o2 out of rotation');
      const out = performance.now() - t0;
      const bodies = await Promise.all(Array.from({ length: 20 }, () => get(port, '/', {}, agent).then((r) => r.body)));
      assert.deepEqual([...new Set(bodies)], ['o1'], 'no request reaches the failing server');
      healthy.set('o2', true);
      probes.ok = 0;
      const t1 = performance.now();
      let okWhenBack = -1;
      await waitFor(() => available(pool).includes('o2') && (okWhenBack = probes.ok) >= 0, 10_000, 'o2 back');
      const back = performance.now() - t1;
      const bodies2 = await Promise.all(Array.from({ length: 20 }, () => get(port, '/', {}, agent).then((r) => r.body)));
      assert.ok(bodies2.includes('o2'), 'traffic reaches it again');
      assert.equal(sickWhenOut, fall, `left rotation on failed probe number ${fall}`);
      assert.equal(okWhenBack, rise, `returned on good probe number ${rise}`);
      // Timers never fire early: the probes were spaced by the interval (lower bounds hold on any machine).
      assert.ok(out >= (fall - 1) * interval, `not before ${fall} failures: ${out.toFixed(0)}ms`);
      assert.ok(back >= (rise - 1) * interval, `not before ${rise} successes: ${back.toFixed(0)}ms`);
      const causes = pool.events.list().filter((e) => e.server === 'o2' && e.kind === 'op').map((e) => `${e.from}->${e.to} ${e.cause}`);
      assert.deepEqual(causes, ['starting->up probe', 'up->down probe', 'down->up probe']);
    } finally {
      agent.destroy();
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  it('a killed server costs no client error and is marked down', async () => {
    const origins = await startOrigins(3);
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        health: { type: 'tcp', interval: '100ms', timeout: '1s', rise: 2, fall: 2 },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      await waitFor(() => [...pool].every((rt) => rt.op === 'up'), 10_000, 'all servers probed up');
      const statuses = new Map<number, number>();
      // Driven by counts: o2 is killed once 200 responses have come back, while the four clients keep
      // sending; each then sends 100 more requests that start after o2 is gone.
      const killAfter = 200;
      const afterKill = 100;
      let responses = 0;
      let kill: Promise<void> | undefined;
      let killed = false;
      let sentAfterKill = 0;
      const client = async (): Promise<void> => {
        for (let mine = 0; mine < afterKill; ) {
          if (killed) {
            mine++;
            sentAfterKill++;
          }
          const r = await get(port, '/', {}, agent);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (++responses === killAfter) kill = origins[1]!.close().then(() => void (killed = true));
        }
      };
      await Promise.all(Array.from({ length: 4 }, client));
      await kill;
      assert.ok(killed, 'o2 was killed while the clients were sending');
      assert.equal(sentAfterKill, 4 * afterKill);
      assert.ok(origins[1]!.seen.length > 0, 'o2 had its share before it was killed');
      assert.deepEqual([...statuses.keys()], [200], `statuses ${JSON.stringify([...statuses])}`);
      await waitFor(() => pool.byName('o2')!.op === 'down', 10_000, 'o2 marked down');
    } finally {
      agent.destroy();
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  it('a hung server (accepts, never answers) is marked down by the probe timeout', async (t) => {
    const socks = new Set<Socket>();
    const hung = createServer((s) => {
      socks.add(s);
      s.on('error', () => {});
    });
    t.after(() => {
      for (const s of socks) s.destroy();
      hung.close();
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    const hungPort = (hung.address() as { port: number }).port;
    const good = await startOrigin('good');
    t.after(() => good.close());
    const { p, pool } = await startProxy([
      {
        name: 'web',
        health: { type: 'http', path: '/', interval: '50ms', timeout: '150ms', rise: 1, fall: 2 },
        servers: [
          { name: 'good', address: good.address },
          { name: 'hung', address: `127.0.0.1:${hungPort}` },
        ],
      },
    ]);
    t.after(() => p.stop(100));
    await waitFor(() => pool.byName('hung')!.op === 'down', 10_000, 'hung marked down');
    await waitFor(() => pool.byName('good')!.op === 'up', 10_000, 'good up');
    const ev = pool.events.list().find((e) => e.server === 'hung' && e.to === 'down')!;
    assert.equal(ev.cause, 'probe');
    assert.match(ev.detail ?? '', /timeout/);
    const st = p.health.get('web')!.monitor!.status().find((s) => s.server === 'hung')!;
    assert.ok(st.timedOut >= 1);
  });
});

describe('server lifecycle on loopback', () => {
  let origins: Origin[];
  let healthy: Map<string, boolean>;
  before(async () => {
    ({ origins, healthy } = await switchable(3));
  });
  after(async () => {
    await Promise.all(origins.map((o) => o.close()));
  });

  for (const balance of [{ balance: 'roundrobin' }, { balance: 'hash', hash: { key: 'header:X-User', method: 'maglev' } }]) {
    it(`slow start (${balance.balance}): the recovering server's share grows over the ramp`, async () => {
      // The ramp runs on the clock Portico is given: the test moves it through fixed points of the
      // ramp and sends the same number of requests at each, so what it sees does not depend on how
      // fast the machine sends them.
      const rampMs = 10_000;
      const clock = new ManualClock(1_000_000);
      const { p, port, pool } = await startProxy(
        [
          {
            name: 'web',
            ...balance,
            slowStart: `${rampMs}ms`,
            health: { type: 'http', path: '/health', interval: '40ms', timeout: '1s', rise: 1, fall: 1 },
            servers: origins.slice(0, 2).map((o) => ({ name: o.name, address: o.address })),
          },
        ],
        { clock },
      );
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      try {
        const o2 = pool.byName('o2')!;
        await waitFor(() => o2.op === 'up', 10_000, 'o2 up');
        assert.equal(o2.weight, 1, 'no ramp at process start');
        healthy.set('o2', false);
        await waitFor(() => o2.op === 'down', 10_000, 'o2 down');
        healthy.set('o2', true);
        await waitFor(() => o2.op === 'up', 10_000, 'o2 up again');
        assert.equal(o2.effectiveWeight, 0.1, 'the ramp begins at a tenth of the weight');
        let user = 0;
        /** The share of `n` requests (four at a time, each with a new X-User) that o2 answered. */
        const share = async (n: number): Promise<number> => {
          let mine = 0;
          let sent = 0;
          const client = async (): Promise<void> => {
            while (sent < n) {
              sent++;
              if ((await get(port, '/', { 'x-user': `u${user++}` }, agent)).body === 'o2') mine++;
            }
          };
          await Promise.all(Array.from({ length: 4 }, client));
          return mine / n;
        };
        const shares: number[] = [];
        for (const at of [0, 0.5, 0.9]) {
          clock.advance(o2.rampStartedAt + at * rampMs - clock.now());
          const want = Math.max(0.1, at);
          await waitFor(() => o2.effectiveWeight !== undefined && Math.abs(o2.effectiveWeight - want) < 1e-9, 10_000, `weight ${want}`);
          shares.push(await share(400));
        }
        assert.ok(o2.effectiveWeight !== undefined, 'the ramp does not end before its clock time');
        clock.advance(rampMs);
        await waitFor(() => o2.effectiveWeight === undefined, 10_000, 'ramp ended');
        shares.push(await share(400));
        process.stdout.write(`# slow start ${balance.balance}: o2 share ${shares.map((x) => x.toFixed(3)).join(', ')} at 0, 50%, 90% and after the ramp\n`);
        // Weighted shares o2/(o1+o2) at weights 0.1, 0.5, 0.9, 1: 0.09, 0.33, 0.47, 0.5.
        assert.ok(shares[0]! < 0.2, `at the start: ${shares[0]}`);
        assert.ok(shares[0]! < shares[1]! && shares[1]! < shares[3]!, `grows: ${shares}`);
        assert.ok(shares[1]! > 0.2 && shares[1]! < 0.45, `half way: ${shares[1]}`);
        assert.ok(shares[2]! > 0.35, `near the end: ${shares[2]}`);
        assert.ok(shares[3]! > 0.4 && shares[3]! < 0.6, `after the ramp: ${shares[3]}`);
      } finally {
        agent.destroy();
        await p.stop(100);
        healthy.clear();
      }
    });
  }

  it('drain: an in-flight request completes, no new request arrives', async (t) => {
    const seen = new Map<string, number>();
    /** The /slow request's response, held until the test releases it. */
    let held: (() => void) | undefined;
    const slow = await startOrigins(2, (req, res, o) => {
      seen.set(o.name, (seen.get(o.name) ?? 0) + 1);
      const answer = (): void => {
        res.writeHead(200);
        res.end(o.name);
      };
      if (req.url === '/slow') held = answer;
      else answer();
    });
    t.after(() => Promise.all(slow.map((o) => o.close())));
    const { p, port, pool } = await startProxy([{ name: 'web', servers: slow.map((o) => ({ name: o.name, address: o.address })) }]);
    t.after(() => p.stop(100));
    let released = false;
    const inflight = get(port, '/slow');
    await waitFor(() => held !== undefined, 10_000, 'the slow request reached a server');
    const busy = [...seen.keys()][0]!;
    const other = slow.find((o) => o.name !== busy)!.name;
    assert.ok(pool.setAdmin(busy, 'drain'));
    const before = seen.get(busy);
    const quick = await Promise.all(Array.from({ length: 20 }, () => get(port, '/')));
    assert.ok(quick.every((r) => r.status === 200 && r.body === other));
    assert.equal(seen.get(busy), before, 'no new request on the draining server');
    released = true;
    held!();
    const r = await inflight;
    assert.ok(released, 'the in-flight request ran to its end on the draining server');
    assert.equal(r.status, 200);
    assert.equal(r.body, busy);
    const ev = pool.events.list().at(-1)!;
    assert.deepEqual([ev.kind, ev.to, ev.cause], ['admin', 'drain', 'admin']);
  });

  it('queue: with maxConnections 2 and 10 concurrent requests, 2 run, the queue holds 5, the overflow gets 503 at once', async (t) => {
    let running = 0;
    let peak = 0;
    /** Responses the origin holds until the test releases them, oldest first. */
    const held: (() => void)[] = [];
    const origin = await startOrigin('q', (_req, res) => {
      running++;
      peak = Math.max(peak, running);
      held.push(() => {
        running--;
        res.writeHead(200);
        res.end('q');
      });
    });
    t.after(() => origin.close());
    const { p, port, pool } = await startProxy([
      { name: 'web', queue: { max: 5, timeout: '60s' }, servers: [{ name: 'q', address: origin.address, maxConnections: 2 }] },
    ]);
    t.after(() => p.stop(100));
    const replies: Reply[] = [];
    const all = Promise.all(Array.from({ length: 10 }, () => get(port, '/').then((r) => (replies.push(r), r))));
    // Nothing is answered until the test says so: the three 503s come while 2 run and 5 wait.
    await waitFor(() => held.length === 2 && pool.queued === 5 && replies.length === 3, 10_000, '2 running, 5 queued, 3 refused');
    assert.ok(replies.every((r) => r.status === 503 && r.headers['retry-after'] !== undefined), `the overflow: ${replies.map((r) => r.status)}`);
    // Release one at a time: each frees a place that the oldest waiting request takes.
    for (let served = 1; served <= 7; served++) {
      held.shift()!();
      await waitFor(() => replies.length === 3 + served && (served > 5 || held.length === 2), 10_000, `round ${served}`);
      assert.equal(pool.queued, Math.max(0, 5 - served));
    }
    const done = await all;
    assert.equal(peak, 2, 'never more than maxConnections at the server');
    assert.equal(done.filter((r) => r.status === 200).length, 7, '2 running + 5 queued');
    assert.equal(done.filter((r) => r.status === 503).length, 3, 'overflow');
    assert.equal(pool.queued, 0);
  });

  it('queue: a request whose wait expires gets 503; a client that leaves the queue frees its place', async (t) => {
    let release: (() => void) | undefined;
    const origin = await startOrigin('q', (_req, res) => {
      release = () => (res.writeHead(200), res.end('q'));
    });
    t.after(() => origin.close());
    const { p, port, pool } = await startProxy([
      { name: 'web', queue: { max: 10, timeout: '300ms' }, servers: [{ name: 'q', address: origin.address, maxConnections: 1 }] },
    ]);
    t.after(() => p.stop(100));
    const first = get(port, '/');
    await waitFor(() => pool.byName('q')!.active === 1 && release !== undefined, 10_000, 'first running');
    const leaver = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false });
    leaver.on('error', () => {});
    t.after(() => leaver.destroy());
    leaver.end();
    await waitFor(() => pool.queued === 1, 10_000, 'queued');
    leaver.destroy();
    await waitFor(() => pool.queued === 0, 10_000, 'left the queue');
    // The only place stays taken until the test releases it, so the queue timeout is all that can answer.
    const waited = await get(port, '/');
    assert.equal(waited.status, 503);
    assert.ok(waited.ms >= 280, `expired after ${waited.ms}ms, not before the queue timeout`);
    assert.equal(pool.queued, 0);
    release!();
    assert.equal((await first).status, 200);
  });

  it('backup takes over only when every primary is down and hands back after', async () => {
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        health: { type: 'http', path: '/health', interval: '40ms', timeout: '1s', rise: 1, fall: 1 },
        servers: [
          { name: 'o1', address: origins[0]!.address },
          { name: 'o2', address: origins[1]!.address },
          { name: 'o3', address: origins[2]!.address, backup: true },
        ],
      },
    ]);
    const bodies = async (): Promise<string[]> => [...new Set(await Promise.all(Array.from({ length: 12 }, () => get(port, '/').then((r) => r.body))))].sort();
    try {
      await waitFor(() => [...pool].every((rt) => rt.op === 'up'), 10_000, 'all probed');
      assert.deepEqual(await bodies(), ['o1', 'o2']);
      healthy.set('o1', false);
      await waitFor(() => pool.byName('o1')!.op === 'down', 10_000, 'o1 down');
      assert.deepEqual(await bodies(), ['o2'], 'one primary left: the backup still idle');
      healthy.set('o2', false);
      await waitFor(() => pool.byName('o2')!.op === 'down', 10_000, 'o2 down');
      assert.deepEqual(await bodies(), ['o3'], 'every primary down: the backup takes over');
      healthy.set('o2', true);
      await waitFor(() => pool.byName('o2')!.op === 'up', 10_000, 'o2 up');
      assert.deepEqual(await bodies(), ['o2'], 'handed back');
    } finally {
      await p.stop(100);
      healthy.clear();
    }
  });

  it('no available server: 503 with Retry-After at once', async () => {
    const { p, port, pool } = await startProxy([{ name: 'web', servers: [{ name: 'o1', address: origins[0]!.address, state: 'maint' }] }]);
    try {
      const r = await get(port, '/');
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
      assert.ok(r.ms < 2000, `at once, not after a queue timeout (5 s by default): ${r.ms}ms`);
      assert.equal(pool.current.set.available.length, 0);
    } finally {
      await p.stop(100);
    }
  });
});

describe('passive health checks on loopback', () => {
  it('consecutive 5xx eject a server for ejectFor, at most maxEjectPercent of the pool; ejected servers come back after their time', async () => {
    const bad = new Set(['o1', 'o2', 'o3']);
    const origins = await startOrigins(4, (_req, res, o) => {
      res.writeHead(bad.has(o.name) ? 500 : 200);
      res.end(o.name);
    });
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        passive: { consecutiveErrors: 3, ejectFor: '1s', maxEjectPercent: 50, errors: ['5xx'] },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Round robin over four: the third bad server reaches 3 errors a few requests after the first
      // two were ejected, and the cap refuses it. 40 requests are far more than that takes.
      for (let i = 0; i < 40 && p.health.get('web')!.outlier!.capped === 0; i++) await get(port, '/', {}, agent);
      const ejected = [...pool].filter((rt) => rt.ejected).map((rt) => rt.server.name);
      assert.equal(ejected.length, 2, `ejected ${ejected}`);
      assert.ok(ejected.every((n) => bad.has(n)));
      assert.ok(p.health.get('web')!.outlier!.capped >= 1, 'the third was refused by the cap');
      assert.deepEqual(available(pool).length, 2);
      bad.clear();
      await waitFor(() => [...pool].every((rt) => rt.op === 'up'), 10_000, 'ejections ended');
      const ends = pool.events.list().filter((e) => e.cause === 'passive' && e.to === 'up');
      assert.equal(ends.length, 2);
      assert.match(ends[0]!.detail ?? '', /ejection of 1s ended/);
    } finally {
      agent.destroy();
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  it('with active checks, an ejected server also needs its probes to pass before it returns', async () => {
    let failing = false;
    const origins = await startOrigins(2, (req, res, o) => {
      const sick = o.name === 'o1' && failing;
      if (req.url === '/health') {
        res.writeHead(sick ? 500 : 200);
        res.end();
        return;
      }
      res.writeHead(sick ? 502 : 200);
      res.end(o.name);
    });
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        // Probes slow enough, and a fall high enough, that the ejection (by live traffic) comes first.
        health: { type: 'http', path: '/health', interval: '1s', timeout: '1s', rise: 2, fall: 5 },
        passive: { consecutiveErrors: 2, ejectFor: '100ms' },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    try {
      await waitFor(() => pool.byName('o1')!.op === 'up', 10_000, 'o1 up by its probes');
      failing = true;
      for (let i = 0; i < 10 && !pool.byName('o1')!.ejected; i++) await get(port, '/');
      assert.ok(pool.byName('o1')!.ejected, 'ejected by live traffic');
      await waitFor(() => !pool.byName('o1')!.ejected, 10_000, 'the ejection ended');
      // The ejection is over; the probes still fail (and were reset to down).
      assert.equal(pool.byName('o1')!.op, 'down');
      assert.ok(!available(pool).includes('o1'));
      failing = false;
      await waitFor(() => pool.byName('o1')!.op === 'up', 10_000, 'o1 back after rise good probes');
      assert.deepEqual(
        pool.events.list().filter((e) => e.server === 'o1' && e.kind === 'op').map((e) => `${e.to} ${e.cause}`),
        ['up probe', 'down passive', 'up probe'],
      );
    } finally {
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });
});
