import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { openSse } from '../../test-helpers/sse.js';

/**
 * `cluster.workers: 2`: the admin API and `/metrics` answer for both workers, whichever worker
 * gets the connection. Requests spread over both workers; every scrape and every read reports
 * the total, not one worker's share; a worker that does not answer is left out after
 * `cluster.statsTimeout`, and one killed in the middle of a collection does not hold the answer.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const STATS_TIMEOUT_MS = 2000;
const N = 40;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request on a new connection (the primary hands each new connection to a worker in turn). */
function fresh(port: number, path = '/', timeoutMs = 8000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Sum of the samples of `name` in a Prometheus text exposition, whose labels contain every `want`. */
function promSum(text: string, name: string, want: Record<string, string> = {}): number {
  let s = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const labels = m[3] ?? '';
    if (Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) s += Number(m[4]);
  }
  return s;
}

/** Every line of a Prometheus text exposition is a comment, blank, or `name{labels} value`. */
function assertValidProm(text: string): void {
  const types = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const name = line.split(' ')[2]!;
      types.set(name, (types.get(name) ?? 0) + 1);
      continue;
    }
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?(\d+(\.\d+)?(e[+-]?\d+)?|[Nn]a[Nn]|\+Inf|-Inf)$/, `sample line: ${line}`);
  }
  for (const [name, n] of types) assert.equal(n, 1, `# TYPE ${name} appears ${n} times`);
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function serverRequests(pool: { servers: { requests: number }[] }): number {
  return pool.servers.reduce((a, s) => a + s.requests, 0);
}

describe('cluster.workers: 2, one view of the counters', () => {
  let origins: Origin[] = [];
  let child: ChildProcess | undefined;
  let out = '';
  let dir = '';
  let port = 0;
  let adminPort = 0;
  let exited: Promise<number | null>;

  before(async () => {
    for (const name of ['o1', 'o2']) {
      origins.push(
        await startOrigin(name, (req, res, o) => {
          if (req.url === '/health') return void res.writeHead(200).end();
          res.end(o.name);
        }),
      );
    }
    port = await freePort();
    adminPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-stats-'));
    const file = join(dir, 'portico.json');
    const config = {
      cluster: { workers: 2, statsTimeout: `${STATS_TIMEOUT_MS}ms` },
      admin: { listen: `127.0.0.1:${adminPort}` },
      stateDir: dir,
      listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
      pools: [
        {
          name: 'web',
          health: { type: 'http', path: '/health', interval: '200ms', timeout: '2s', rise: 1, fall: 1 },
          servers: origins.map((o) => ({ name: o.name, address: o.address })),
        },
      ],
    };
    writeFileSync(file, JSON.stringify(config));
    child = spawn(process.execPath, [join(ROOT, 'bin', 'portico'), 'start', '-c', file], { cwd: dir });
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    exited = new Promise((resolve) => child!.on('close', (code) => resolve(code)));
    await waitFor(() => (out.match(/listener web on/g) ?? []).length >= 2 || child!.exitCode !== null, 60_000, 'two workers to listen');
    assert.equal(child.exitCode, null, out);
    // Both workers take part in the collections once their statistics are wired.
    await waitFor(async () => (await fresh(adminPort, '/metrics')).headers['x-portico-workers'] === '2/2', 10_000, 'both workers to report');
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null) {
      const pids = children(child.pid!);
      child.kill('SIGKILL');
      for (const p of pids) {
        try {
          process.kill(p, 'SIGCONT');
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
    }
    await Promise.all(origins.map((o) => o.close()));
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it(`${N} requests over both workers: every /metrics scrape and every admin read reports all ${N}`, async () => {
    for (let i = 0; i < N; i++) assert.equal((await fresh(port)).status, 200);

    // What each worker counted alone (?scope=worker): both served some, and the shares add up to N.
    const shares = new Map<number, number>();
    await waitFor(
      async () => {
        const r = JSON.parse((await fresh(adminPort, '/api/v1/pools/web?scope=worker')).body) as { worker: { pid: number }; servers: { requests: number }[] };
        shares.set(r.worker.pid, serverRequests(r));
        return shares.size === 2 && [...shares.values()].reduce((a, b) => a + b, 0) === N;
      },
      15_000,
      'both workers\' own counts',
    );
    process.stdout.write(`# workers-stats: ${N} requests served as ${[...shares.values()].join(' + ')} by the two workers\n`);
    for (const n of shares.values()) assert.ok(n > 0 && n < N, `a worker served ${n} of ${N}`);

    for (let i = 0; i < 8; i++) {
      const r = await fresh(adminPort, '/metrics');
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      assert.equal(r.headers['x-portico-workers'], '2/2');
      assertValidProm(r.body);
      assert.equal(promSum(r.body, 'portico_requests_total', { pool: 'web' }), N, `scrape ${i}: requests`);
      assert.equal(promSum(r.body, 'portico_request_duration_seconds_count', { pool: 'web' }), N, `scrape ${i}: histogram count`);
      assert.equal(promSum(r.body, 'portico_request_duration_seconds_bucket', { pool: 'web', le: '+Inf' }), N, `scrape ${i}: +Inf bucket`);
      assert.ok(promSum(r.body, 'portico_connections_total', { listener: 'web' }) >= N, `scrape ${i}: connections`);
      assert.ok(promSum(r.body, 'portico_bytes_total', { listener: 'web', direction: 'out' }) > 0);
      assert.equal(promSum(r.body, 'portico_workers', { state: 'reporting' }), 2);
      // Taken once, not added: a server's state and weight.
      assert.equal(promSum(r.body, 'portico_server_state', { server: 'o1', state: 'ready' }), 1);
      assert.equal(promSum(r.body, 'portico_server_weight', { server: 'o1' }), 1);
      assert.equal(promSum(r.body, 'portico_server_up', { server: 'o1' }), 1);
      // The probes run in the primary: their counter comes from there.
      assert.ok(promSum(r.body, 'portico_health_checks_total', { server: 'o1', result: 'success' }) > 0, 'health checks counted by the primary');
    }
    for (let i = 0; i < 6; i++) {
      const pool = JSON.parse((await fresh(adminPort, '/api/v1/pools/web')).body) as {
        servers: { name: string; requests: number; active: number; probe?: { passed: number } }[];
        workers: { reporting: number; running: number };
      };
      assert.deepEqual(pool.workers, { reporting: 2, running: 2 });
      assert.equal(serverRequests(pool), N, `read ${i}: requests`);
      for (const s of pool.servers) assert.ok((s.probe?.passed ?? 0) > 0, `probe details of ${s.name} from the primary`);
    }
    const all = JSON.parse((await fresh(adminPort, '/api/v1/pools')).body) as { pools: { name: string; servers: { requests: number }[] }[] };
    assert.equal(serverRequests(all.pools[0]!), N);
    const o1 = JSON.parse((await fresh(adminPort, '/api/v1/pools/web/servers/o1')).body) as { requests: number; workers: { reporting: number } };
    const o2 = JSON.parse((await fresh(adminPort, '/api/v1/pools/web/servers/o2')).body) as { requests: number };
    assert.equal(o1.requests + o2.requests, N);
    assert.equal(o1.workers.reporting, 2);
    const status = JSON.parse((await fresh(adminPort, '/api/v1/status')).body) as { workers: { reporting: number; running: number; pids: number[] } };
    assert.deepEqual([...status.workers.pids].sort(), children(child!.pid!).sort());
  });

  it('the dashboard\'s stats events carry both workers\' figures', async () => {
    const sse = await openSse(adminPort, '/api/v1/events?types=stats');
    try {
      const before = JSON.parse((await fresh(adminPort, '/api/v1/pools/web')).body) as { servers: { requests: number }[] };
      const total = serverRequests(before);
      for (let i = 0; i < 10; i++) await fresh(port);
      let frame: { workers: { reporting: number }; pools: { name: string; servers: { requests: number }[] }[] } | undefined;
      await waitFor(
        async () => {
          const ev = await sse.next('stats', 3000);
          frame = JSON.parse(ev.data) as typeof frame;
          return frame!.workers.reporting === 2 && serverRequests(frame!.pools.find((p) => p.name === 'web')!) === total + 10;
        },
        8000,
        'a stats frame with every request',
      );
    } finally {
      sse.close();
    }
  });

  it(`a worker that does not answer is left out after statsTimeout (${STATS_TIMEOUT_MS} ms), and the answer says so`, async () => {
    const [stopped] = children(child!.pid!);
    assert.ok(stopped !== undefined);
    process.kill(stopped, 'SIGSTOP');
    try {
      // A connection may be handed to the stopped worker (it answers once continued): ask twice at once.
      const t0 = Date.now();
      const first = await Promise.race([fresh(adminPort, '/metrics', 10_000), fresh(adminPort, '/metrics', 10_000)]);
      const ms = Date.now() - t0;
      process.stdout.write(`# workers-stats: /metrics with one worker stopped answered in ${ms} ms (${first.headers['x-portico-workers']})\n`);
      assert.equal(first.headers['x-portico-workers'], '1/2');
      assert.ok(ms >= STATS_TIMEOUT_MS - 100 && ms < STATS_TIMEOUT_MS + 1500, `${ms} ms`);
      assertValidProm(first.body);
    } finally {
      process.kill(stopped, 'SIGCONT');
    }
    await waitFor(async () => (await fresh(adminPort, '/metrics')).headers['x-portico-workers'] === '2/2', 10_000, 'both workers to report again');
  });

  it('a worker killed in the middle of a collection does not hold the answer', async () => {
    const [victim] = children(child!.pid!);
    assert.ok(victim !== undefined);
    process.kill(victim, 'SIGSTOP');
    const asked = Date.now();
    // The first good answer (the connection handed to the stopped worker fails when it is killed).
    const answer = Promise.any(
      [fresh(adminPort, '/api/v1/pools/web', 10_000), fresh(adminPort, '/api/v1/pools/web', 10_000)].map((p) =>
        p.then((r) => {
          if (r.status !== 200) throw new Error(`status ${r.status}`);
          return { r, at: Date.now() };
        }),
      ),
    );
    // The other worker now waits for the stopped one (statsTimeout is 2 s); kill it meanwhile.
    await new Promise((r) => setTimeout(r, 300));
    const killed = Date.now();
    process.kill(victim, 'SIGKILL');
    const a = await answer;
    const body = JSON.parse(a.r.body) as { workers: { reporting: number; running: number } };
    process.stdout.write(`# workers-stats: answer ${a.at - killed} ms after the SIGKILL (${a.at - asked} ms after the request), covering ${body.workers.reporting} of ${body.workers.running}\n`);
    assert.equal(body.workers.reporting, 1);
    assert.ok(a.at - asked < STATS_TIMEOUT_MS - 500, `answered ${a.at - asked} ms after the request: it waited for the dead worker`);
    // A new worker takes the dead one's place and reports.
    await waitFor(() => children(child!.pid!).length === 2 && !children(child!.pid!).includes(victim), 10_000, 'a new worker');
    await waitFor(async () => (await fresh(adminPort, '/metrics')).headers['x-portico-workers'] === '2/2', 10_000, 'the new worker to report');
  });

  it('SIGTERM still stops every process (exit 0)', async () => {
    child!.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 15_000))]);
    assert.equal(code, 0, out.slice(-2000));
  });
});
