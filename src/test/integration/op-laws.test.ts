import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { runCtl } from '../../cli/ctl.js';
import type { PoolFrame } from '../../observability/live-stats.js';
import { silentLogger } from '../../observability/logger.js';
import { waitFor } from '../../test-helpers/origins.js';

/**
 * Servers of known capacity, in a child process of their own (so that their timers are not
 * delayed by the load and by Portico in this one): each holds `slots` requests at once, each
 * for `ms` (a timer, so the capacity is slots × 1000/ms requests/s whatever the CPU does); the
 * others wait in its own queue, as a thread pool's requests do.
 */
const SLOT_SERVERS = `
const http = require('node:http');
const specs = JSON.parse(process.argv[1]);
const ports = [];
let pending = specs.length;
for (const { name, slots, ms } of specs) {
  let busy = 0;
  const waiting = [];
  const run = (done) => {
    busy++;
    setTimeout(() => { busy--; done(); const next = waiting.shift(); if (next !== undefined) run(next); }, ms);
  };
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { const answer = () => res.end(name); if (busy < slots) run(answer); else waiting.push(answer); });
  });
  srv.listen(0, '127.0.0.1', () => {
    ports.push([name, srv.address().port]);
    if (--pending === 0) process.stdout.write(JSON.stringify(Object.fromEntries(ports)) + '\\n');
  });
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

async function slotServers(specs: { name: string; slots: number; ms: number }[]): Promise<{ ports: Record<string, number>; close: () => Promise<void> }> {
  const child = spawn(process.execPath, ['-e', SLOT_SERVERS, JSON.stringify(specs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const close = async (): Promise<void> => {
    child.stdin!.end();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c) => {
        out += String(c);
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      child.on('exit', (code) => reject(new Error(`the servers exited (${code})`)));
    });
    return { ports: JSON.parse(line) as Record<string, number>, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `clients` closed-loop clients (no think time) sending `total` requests in all; resolves with the completion times (performance.now ms). */
async function closedLoop(port: number, clients: number, total: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const done: number[] = [];
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          else resolve();
        });
      });
      req.on('error', reject);
      req.end();
    });
  const client = async (): Promise<void> => {
    while (sent < total) {
      sent++;
      await one();
      done.push(performance.now());
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, client));
  } finally {
    agent.destroy();
  }
  return done;
}

/** Throughput over the middle of a run: completions between the 20th and the 90th percentile of the completion times. */
function middleRate(times: number[]): number {
  const t = [...times].sort((a, b) => a - b);
  const a = Math.floor(t.length * 0.2);
  const b = Math.floor(t.length * 0.9);
  return ((b - a) * 1000) / (t[b]! - t[a]!);
}

function frameOf(p: Portico, pool: string): PoolFrame | undefined {
  return p.observability.live.last?.pools.find((f) => f.name === pool);
}

describe('operational laws against servers of known capacity', () => {
  it('predicted before the load: 4 slots x 80 ms with maxConnections 4 saturates near 4/S; a closed-loop load measures within 15%', async (t) => {
    const servers = await slotServers([{ name: 'app', slots: 4, ms: 80 }]);
    let p: Portico | undefined;
    try {
      p = createPortico(
        {
          admin: { listen: '127.0.0.1:0' },
          listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'app' }] }],
          pools: [
            {
              name: 'app',
              health: { type: 'none' },
              queue: { max: 256, timeout: '60s' },
              servers: [{ name: 'app', address: `127.0.0.1:${servers.ports['app']}`, maxConnections: 4 }],
            },
          ],
        },
        { logger: silentLogger },
      );
      const q = p;
      await q.start();
      const port = q.address('web')!.port;
      // Low load: one client, until the server has a low-load service time.
      let stop = false;
      const low = (async () => {
        while (!stop) await closedLoop(port, 1, 10);
      })();
      try {
        await waitFor(() => frameOf(q, 'app')?.servers[0]?.service.S != null, 60_000, 'a low-load service time');
      } finally {
        stop = true;
        await low;
      }
      // The prediction, before any load: c = 4 (maxConnections), S the low-load time.
      const before = (await (await fetch(`${q.admin!.url}/api/v1/pools/app/laws`)).json()) as {
        saturation: number;
        exact: boolean;
        bottleneck: string;
        summary: string;
        servers: { S: number; c: number; cSource: string }[];
      };
      assert.equal(before.bottleneck, 'app');
      assert.equal(before.exact, true);
      assert.deepEqual([before.servers[0]!.c, before.servers[0]!.cSource], [4, 'maxConnections']);
      t.diagnostic(`before the load: S = ${before.servers[0]!.S} ms; ${before.summary}`);

      const times = await closedLoop(port, 16, 400);
      const measured = middleRate(times);
      const err = Math.abs(before.saturation - measured) / measured;
      t.diagnostic(`closed loop, 16 clients: ${measured.toFixed(1)} req/s measured, ${before.saturation} predicted (${(err * 100).toFixed(1)}% apart; nominal 50)`);
      assert.ok(err <= 0.15, `predicted ${before.saturation} req/s vs measured ${measured.toFixed(1)} req/s: ${(err * 100).toFixed(1)}% apart`);

      // After the load, the laws of the window: Little's law holds, the server was near its 4 slots busy.
      const seen = q.observability.live.last!.time;
      await waitFor(() => q.observability.live.last!.time > seen, 10_000, 'a frame after the load');
      const after = (await (await fetch(`${q.admin!.url}/api/v1/pools/app/laws`)).json()) as { N: number; XR: number; X: number; bounds: { Xmax: number }; servers: { U: number; utilization: number }[] };
      t.diagnostic(`after: X ${after.X} req/s, N ${after.N}, X·R ${after.XR}, U ${after.servers[0]!.U} slots (${after.servers[0]!.utilization})`);
      assert.ok(Math.abs(after.N - after.XR) <= 0.15 * Math.max(after.N, after.XR), `Little: N ${after.N} vs X·R ${after.XR}`);
      assert.ok(after.X <= after.bounds.Xmax * 1.15, `X ${after.X} within its bound ${after.bounds.Xmax}`);

      // The same through portico ctl.
      let out = '';
      const code = await runCtl(['--admin', q.admin!.url, 'laws', 'app', '--z', '100ms'], { out: (x) => (out += x), err: (x) => (out += x), env: {} });
      t.diagnostic(out);
      assert.equal(code, 0);
      assert.match(out, /^pool app: this pool saturates near [\d,]+ req\/s; app is the bottleneck\n/);
      assert.match(out, /and Z 100 ms: X <= /);
      assert.match(out, /\napp \*\s+1\.000\s/);
    } finally {
      await p?.stop(100);
      await servers.close();
    }
  });

  it('the saturation bound 1/Dmax is within 15% of the throughput a closed-loop load measures, and names the bottleneck', async (t) => {
    // web1: 4 slots x 5 ms (800 req/s); web2: 2 slots x 30 ms (67 req/s). Round robin gives each
    // half the requests: D1 = 0.5 x 5/4, D2 = 0.5 x 30/2 = 7.5 ms, so the pool saturates near 133 req/s, web2 the bottleneck.
    const servers = await slotServers([
      { name: 'web1', slots: 4, ms: 5 },
      { name: 'web2', slots: 2, ms: 30 },
    ]);
    let p: Portico | undefined;
    try {
      p = createPortico(
      {
        admin: { listen: '127.0.0.1:0' },
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
        pools: [
          {
            name: 'web',
            balance: 'roundrobin',
            health: { type: 'none' },
            servers: [
              // web1's 4 slots are known (maxConnections); web2's are measured. A 5 ms server measured
              // on a starved machine may show tens of ms at low load, and would never be seen saturated.
              { name: 'web1', address: `127.0.0.1:${servers.ports['web1']}`, maxConnections: 4 },
              { name: 'web2', address: `127.0.0.1:${servers.ports['web2']}` },
            ],
          },
        ],
      },
      { logger: silentLogger },
    );
      const q = p;
      await q.start();
      const port = q.address('web')!.port;
      // Low load: one client, until both servers have a low-load service time.
      let stop = false;
      const low = (async () => {
        while (!stop) await closedLoop(port, 1, 20);
      })();
      try {
        await waitFor(
          () => {
            const f = frameOf(q, 'web');
            return f !== undefined && f.servers.length === 2 && f.servers.every((s) => s.service.S !== null);
          },
          60_000,
          'low-load service times',
        );
      } finally {
        stop = true;
        await low;
      }
      const lowFrame = frameOf(q, 'web')!;
      t.diagnostic(`low load: S = ${lowFrame.servers.map((s) => `${s.name} ${s.service.S!.toFixed(2)} ms`).join(', ')}`);

      // Saturation: 24 clients, no think time.
      const seenBefore = q.observability.live.last!.time;
      const times = await closedLoop(port, 24, 1000);
      const measured = middleRate(times);
      // The frame after the load holds its intervals (the estimates look back 60 s).
      await waitFor(() => q.observability.live.last!.time > seenBefore + 1000, 10_000, 'a frame after the load');
      const res = await fetch(`${q.admin!.url}/api/v1/pools/web/laws`);
      assert.equal(res.status, 200);
      const laws = (await res.json()) as {
        saturation: number;
        bottleneck: string;
        exact: boolean;
        summary: string;
        servers: { name: string; S: number; c: number; cSource: string; V: number; D: number }[];
      };
      t.diagnostic(`measured ${measured.toFixed(1)} req/s; ${laws.summary}`);
      t.diagnostic(laws.servers.map((s) => `${s.name}: V ${s.V} S ${s.S} ms c ${s.c} (${s.cSource}) D ${s.D} ms`).join('; '));
      assert.equal(laws.bottleneck, 'web2');
      assert.equal(laws.exact, true);
      const web2Laws = laws.servers.find((s) => s.name === 'web2')!;
      assert.equal(web2Laws.cSource, 'saturation');
      // S includes the network and Portico's reading of the answer besides the slot's hold, so c = X·S is a little above 2.
      assert.ok(web2Laws.c >= 1.6 && web2Laws.c <= 2.6, `web2 parallelism ${web2Laws.c}, 2 slots`);
      const err = Math.abs(laws.saturation - measured) / measured;
      assert.ok(err <= 0.15, `saturation bound ${laws.saturation} req/s vs measured ${measured.toFixed(1)} req/s: ${(err * 100).toFixed(1)}% apart`);
      assert.match(laws.summary, /^this pool saturates near [\d,]+ req\/s; web2 is the bottleneck$/);
    } finally {
      await p?.stop(100);
      await servers.close();
    }
  });
});
