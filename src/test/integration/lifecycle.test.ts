import { strict as assert } from 'node:assert';
import { createServer, type Socket } from 'node:net';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import type { Pool } from '../../pool/pool.js';
import { send, type Reply } from '../../test-helpers/http.js';
import { startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';

function get(port: number, path = '/', headers: Record<string, string> = {}, agent?: Agent): Promise<Reply> {
  return send(port, path, { headers, agent });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startProxy(pools: unknown[]): Promise<{ p: Portico; port: number; pool: Pool }> {
  const p = createPortico({
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools,
  });
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
  it('a server whose health endpoint fails leaves within fall*interval+timeout and returns after rise*interval', async () => {
    const { origins, healthy } = await switchable(2);
    const interval = 200;
    const timeout = 100;
    const rise = 2;
    const fall = 3;
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        health: { type: 'http', path: '/health', interval: `${interval}ms`, timeout: `${timeout}ms`, rise, fall },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    try {
      await waitFor(() => pool.byName('o2')!.op === 'up', 2000, 'o2 up');
      healthy.set('o2', false);
      const t0 = performance.now();
      await waitFor(() => !available(pool).includes('o2'), 3000, 'o2 out of rotation');
      const out = performance.now() - t0;
      const agent = new Agent({ keepAlive: true, maxSockets: 2 });
      const bodies = await Promise.all(Array.from({ length: 20 }, () => get(port, '/', {}, agent).then((r) => r.body)));
      assert.deepEqual([...new Set(bodies)], ['o1'], 'no request reaches the failing server');
      healthy.set('o2', true);
      const t1 = performance.now();
      await waitFor(() => available(pool).includes('o2'), 3000, 'o2 back');
      const back = performance.now() - t1;
      const bodies2 = await Promise.all(Array.from({ length: 20 }, () => get(port, '/', {}, agent).then((r) => r.body)));
      assert.ok(bodies2.includes('o2'), 'traffic reaches it again');
      agent.destroy();
      const slack = 100; // event loop and probe run time on a loaded machine
      assert.ok(out <= fall * interval + timeout + slack, `left rotation after ${out.toFixed(0)}ms`);
      assert.ok(out >= (fall - 1) * interval, `not before ${fall} failures: ${out.toFixed(0)}ms`);
      assert.ok(back <= rise * interval + slack, `returned after ${back.toFixed(0)}ms`);
      assert.ok(back >= (rise - 1) * interval, `not before ${rise} successes: ${back.toFixed(0)}ms`);
      const causes = pool.events.list().filter((e) => e.server === 'o2' && e.kind === 'op').map((e) => `${e.from}->${e.to} ${e.cause}`);
      assert.deepEqual(causes, ['starting->up probe', 'up->down probe', 'down->up probe']);
    } finally {
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  it('a killed server costs no client error and is marked down', async () => {
    const origins = await startOrigins(3);
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        health: { type: 'tcp', interval: '100ms', timeout: '100ms', rise: 2, fall: 2 },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      const statuses = new Map<number, number>();
      let killed = false;
      const t0 = Date.now();
      const workers = Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 400 && Date.now() - t0 < 1500; i++) {
          const r = await get(port, '/', {}, agent);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (!killed && Date.now() - t0 > 400) {
            killed = true;
            await origins[1]!.close();
          }
        }
      });
      await Promise.all(workers);
      agent.destroy();
      assert.ok(killed);
      assert.deepEqual([...statuses.keys()], [200], `statuses ${JSON.stringify([...statuses])}`);
      await waitFor(() => pool.byName('o2')!.op === 'down', 2000, 'o2 marked down');
    } finally {
      await p.stop(100);
      await Promise.all([origins[0]!.close(), origins[2]!.close()]);
    }
  });

  it('a hung server (accepts, never answers) is marked down by the probe timeout', async () => {
    const socks = new Set<Socket>();
    const hung = createServer((s) => {
      socks.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    const hungPort = (hung.address() as { port: number }).port;
    const good = await startOrigin('good');
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
    try {
      await waitFor(() => pool.byName('hung')!.op === 'down', 3000, 'hung marked down');
      assert.equal(pool.byName('good')!.op, 'up');
      const ev = pool.events.list().find((e) => e.server === 'hung' && e.to === 'down')!;
      assert.equal(ev.cause, 'probe');
      assert.match(ev.detail ?? '', /timeout/);
      const st = p.health.get('web')!.monitor!.status().find((s) => s.server === 'hung')!;
      assert.ok(st.timedOut >= 1);
    } finally {
      await p.stop(100);
      await good.close();
      for (const s of socks) s.destroy();
      hung.close();
    }
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
      const rampMs = 2000;
      const { p, port, pool } = await startProxy([
        {
          name: 'web',
          ...balance,
          slowStart: `${rampMs}ms`,
          health: { type: 'http', path: '/health', interval: '40ms', timeout: '100ms', rise: 1, fall: 1 },
          servers: origins.slice(0, 2).map((o) => ({ name: o.name, address: o.address })),
        },
      ]);
      try {
        await waitFor(() => pool.byName('o2')!.op === 'up', 2000, 'o2 up');
        assert.equal(pool.byName('o2')!.weight, 1, 'no ramp at process start');
        healthy.set('o2', false);
        await waitFor(() => pool.byName('o2')!.op === 'down', 2000, 'o2 down');
        healthy.set('o2', true);
        await waitFor(() => pool.byName('o2')!.op === 'up', 2000, 'o2 up again');
        const t0 = performance.now();
        const agent = new Agent({ keepAlive: true, maxSockets: 4 });
        const samples: { t: number; o2: boolean }[] = [];
        let user = 0;
        const workers = Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 5000 && performance.now() - t0 < rampMs; i++) {
            const r = await get(port, '/', { 'x-user': `u${user++}` }, agent);
            samples.push({ t: performance.now() - t0, o2: r.body === 'o2' });
          }
        });
        await Promise.all(workers);
        agent.destroy();
        const share = (from: number, to: number): { share: number; n: number } => {
          const s = samples.filter((x) => x.t >= from * rampMs && x.t < to * rampMs);
          return { share: s.filter((x) => x.o2).length / Math.max(1, s.length), n: s.length };
        };
        const first = share(0, 0.2);
        const last = share(0.8, 0.98);
        process.stdout.write(`# slow start ${balance.balance}: o2 share ${first.share.toFixed(3)} in the first fifth (n=${first.n}), ${last.share.toFixed(3)} in the last (n=${last.n})\n`);
        assert.ok(first.n >= 20 && last.n >= 20, `enough samples: ${first.n}, ${last.n}`);
        assert.ok(first.share < 0.25, `first fifth: ${first.share}`);
        assert.ok(last.share > 0.35, `last fifth: ${last.share}`);
        await waitFor(() => pool.byName('o2')!.effectiveWeight === undefined, 2000, 'ramp ended');
      } finally {
        await p.stop(100);
        healthy.clear();
      }
    });
  }

  it('drain: an in-flight 2 s request completes, no new request arrives', async () => {
    const seen = new Map<string, number>();
    const slow = await startOrigins(2, (req, res, o) => {
      seen.set(o.name, (seen.get(o.name) ?? 0) + 1);
      const delay = req.url === '/slow' ? 2000 : 0;
      setTimeout(() => {
        res.writeHead(200);
        res.end(o.name);
      }, delay);
    });
    const { p, port, pool } = await startProxy([{ name: 'web', servers: slow.map((o) => ({ name: o.name, address: o.address })) }]);
    try {
      const inflight = get(port, '/slow');
      await waitFor(() => seen.size === 1, 1000, 'the slow request reached a server');
      const busy = [...seen.keys()][0]!;
      const other = slow.find((o) => o.name !== busy)!.name;
      assert.ok(pool.setAdmin(busy, 'drain'));
      const before = seen.get(busy);
      const quick = await Promise.all(Array.from({ length: 20 }, () => get(port, '/')));
      assert.ok(quick.every((r) => r.status === 200 && r.body === other));
      assert.equal(seen.get(busy), before, 'no new request on the draining server');
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(r.body, busy);
      assert.ok(r.ms >= 1900, `the in-flight request ran to its end: ${r.ms}ms`);
      const ev = pool.events.list().at(-1)!;
      assert.deepEqual([ev.kind, ev.to, ev.cause], ['admin', 'drain', 'admin']);
    } finally {
      await p.stop(100);
      await Promise.all(slow.map((o) => o.close()));
    }
  });

  it('queue: with maxConnections 2 and 10 concurrent slow requests, 2 run, the queue holds the rest, overflow gets 503 fast', async () => {
    let running = 0;
    let peak = 0;
    const origin = await startOrigin('q', (_req, res) => {
      running++;
      peak = Math.max(peak, running);
      setTimeout(() => {
        running--;
        res.writeHead(200);
        res.end('q');
      }, 300);
    });
    const { p, port, pool } = await startProxy([
      { name: 'web', queue: { max: 5, timeout: '5s' }, servers: [{ name: 'q', address: origin.address, maxConnections: 2 }] },
    ]);
    try {
      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => sleep(i * 5).then(() => get(port, '/'))));
      const ok = replies.filter((r) => r.status === 200);
      const full = replies.filter((r) => r.status === 503);
      assert.equal(peak, 2, 'never more than maxConnections at the server');
      assert.equal(ok.length, 7, '2 running + 5 queued');
      assert.equal(full.length, 3, 'overflow');
      assert.ok(full.every((r) => r.ms < 200 && r.headers['retry-after'] !== undefined), `503s are fast: ${full.map((r) => r.ms.toFixed(0))}`);
      const times = ok.map((r) => r.ms).sort((a, b) => a - b);
      assert.ok(times[6]! >= 4 * 300 - 50, `the last queued request waited for 3 rounds: ${times.map((t) => t.toFixed(0))}`);
      assert.equal(pool.queued, 0);
    } finally {
      await p.stop(100);
      await origin.close();
    }
  });

  it('queue: a request whose wait expires gets 503; a client that leaves the queue frees its place', async () => {
    const origin = await startOrigin('q', (_req, res) => setTimeout(() => (res.writeHead(200), res.end('q')), 1000));
    const { p, port, pool } = await startProxy([
      { name: 'web', queue: { max: 10, timeout: '300ms' }, servers: [{ name: 'q', address: origin.address, maxConnections: 1 }] },
    ]);
    try {
      const first = get(port, '/');
      await waitFor(() => pool.byName('q')!.active === 1, 1000, 'first running');
      const leaver = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false });
      leaver.on('error', () => {});
      leaver.end();
      await waitFor(() => pool.queued === 1, 1000, 'queued');
      leaver.destroy();
      await waitFor(() => pool.queued === 0, 1000, 'left the queue');
      const waited = await get(port, '/');
      assert.equal(waited.status, 503);
      assert.ok(waited.ms >= 280 && waited.ms < 700, `expired after ${waited.ms}ms`);
      assert.equal((await first).status, 200);
    } finally {
      await p.stop(100);
      await origin.close();
    }
  });

  it('backup takes over only when every primary is down and hands back after', async () => {
    const { p, port, pool } = await startProxy([
      {
        name: 'web',
        health: { type: 'http', path: '/health', interval: '40ms', timeout: '100ms', rise: 1, fall: 1 },
        servers: [
          { name: 'o1', address: origins[0]!.address },
          { name: 'o2', address: origins[1]!.address },
          { name: 'o3', address: origins[2]!.address, backup: true },
        ],
      },
    ]);
    const bodies = async (): Promise<string[]> => [...new Set(await Promise.all(Array.from({ length: 12 }, () => get(port, '/').then((r) => r.body))))].sort();
    try {
      await waitFor(() => pool.byName('o3')!.op === 'up', 2000, 'all probed');
      assert.deepEqual(await bodies(), ['o1', 'o2']);
      healthy.set('o1', false);
      await waitFor(() => pool.byName('o1')!.op === 'down', 2000, 'o1 down');
      assert.deepEqual(await bodies(), ['o2'], 'one primary left: the backup still idle');
      healthy.set('o2', false);
      await waitFor(() => pool.byName('o2')!.op === 'down', 2000, 'o2 down');
      assert.deepEqual(await bodies(), ['o3'], 'every primary down: the backup takes over');
      healthy.set('o2', true);
      await waitFor(() => pool.byName('o2')!.op === 'up', 2000, 'o2 up');
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
      assert.ok(r.ms < 200, `${r.ms}ms`);
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
        passive: { consecutiveErrors: 3, ejectFor: '400ms', maxEjectPercent: 50, errors: ['5xx'] },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; i < 40; i++) await get(port, '/', {}, agent);
      const ejected = [...pool].filter((rt) => rt.ejected).map((rt) => rt.server.name);
      assert.equal(ejected.length, 2, `ejected ${ejected}`);
      assert.ok(ejected.every((n) => bad.has(n)));
      assert.ok(p.health.get('web')!.outlier!.capped >= 1, 'the third was refused by the cap');
      assert.deepEqual(available(pool).length, 2);
      bad.clear();
      await waitFor(() => [...pool].every((rt) => rt.op === 'up'), 2000, 'ejections ended');
      const ends = pool.events.list().filter((e) => e.cause === 'passive' && e.to === 'up');
      assert.equal(ends.length, 2);
      assert.match(ends[0]!.detail ?? '', /ejection of 400ms ended/);
      agent.destroy();
    } finally {
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  it('with active checks, an ejected server also needs its probes to pass before it returns', async () => {
    let failing = true;
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
        // probes slow enough that the ejection (by live traffic) comes first
        health: { type: 'http', path: '/health', interval: '2s', timeout: '200ms', rise: 2, fall: 5 },
        passive: { consecutiveErrors: 2, ejectFor: '100ms' },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ]);
    try {
      await waitFor(() => pool.byName('o1')!.op !== 'starting', 3000, 'first probe');
      for (let i = 0; i < 10 && !pool.byName('o1')!.ejected; i++) await get(port, '/');
      assert.ok(pool.byName('o1')!.ejected || pool.byName('o1')!.op === 'down');
      await sleep(300); // the ejection time has passed; the probes still fail (and were reset to down)
      assert.equal(pool.byName('o1')!.op, 'down');
      assert.ok(!available(pool).includes('o1'));
    } finally {
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });
});
