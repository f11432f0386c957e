import { strict as assert } from 'node:assert';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { runCtl } from '../../cli/ctl.js';
import type { Logger } from '../../observability/logger.js';
import { freePort, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startWorkersProcess, type WorkersProcess } from '../../test-helpers/workers.js';

/**
 * What an operator sees of discovery: the `discovery` object of the pool views, the
 * `portico_discovery_*` metrics and `portico ctl servers`, with the `file` provider, in one
 * process and with two workers (where the primary runs discovery and supplies its status).
 */

type Json = Record<string, any>;

/** A GET on a new connection (with cluster.workers, each goes to the next worker in turn). */
function get(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function json(port: number, path: string): Promise<Json> {
  const r = await get(port, path);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Json;
}

/** The value of one sample of the text exposition (undefined: absent). */
function sample(text: string, name: string, pool: string): number | undefined {
  const m = new RegExp(`^${name}\\{pool="${pool}"\\} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

function discoveryMetrics(text: string, pool: string): Json {
  return {
    updates: sample(text, 'portico_discovery_updates_total', pool),
    failures: sample(text, 'portico_discovery_failures_total', pool),
    servers: sample(text, 'portico_discovery_servers', pool),
    lastUpdate: sample(text, 'portico_discovery_last_update_timestamp_seconds', pool),
  };
}

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

describe('discovery status, one process (file)', () => {
  let origins: Origin[];
  let dir: string;
  let file: string;
  let p: Portico;
  let admin: number;
  const write = (names: readonly number[]): void => {
    writeFileSync(file + '.tmp', JSON.stringify(names.map((i) => ({ name: `s${i}`, address: origins[i]!.address }))));
    renameSync(file + '.tmp', file);
  };

  before(async () => {
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-disc-status-'));
    file = join(dir, 'servers.json');
    write([0, 1]);
    p = createPortico(
      {
        admin: { listen: '127.0.0.1:0' },
        stateDir: dir,
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
        pools: [
          { name: 'web', discovery: { type: 'file', path: file } },
          { name: 'fixed', servers: [{ name: 'f', address: origins[2]!.address }] },
        ],
      },
      { logger: quiet },
    );
    await p.start();
    admin = p.admin!.address.port;
  });
  after(async () => {
    await p?.stop(0);
    for (const o of origins ?? []) await o.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the pool view and the metrics after the first list, an update, an invalid file and a recovery; null for a static pool', async () => {
    const t0 = Date.now();
    let d = (await json(admin, '/api/v1/pools/web')).discovery as Json;
    assert.equal(d.type, 'file');
    assert.equal(d.source, file);
    assert.equal(d.servers, 2);
    assert.equal(d.updates, 1);
    assert.equal(d.failures, 0);
    assert.equal(d.ignoredEmpty, 0);
    assert.equal(d.lastError, null);
    assert.equal(d.lastErrorAt, null);
    assert.equal(d.usingLastKnownGood, false);
    const firstAt = Date.parse(d.lastUpdateAt as string);
    assert.ok(firstAt <= t0 && firstAt > t0 - 60_000, d.lastUpdateAt);
    assert.equal((await json(admin, '/api/v1/pools/fixed')).discovery, null);
    const list = (await json(admin, '/api/v1/pools')).pools as Json[];
    assert.deepEqual(
      list.map((x) => [x.name, x.discovery?.updates ?? null]),
      [
        ['web', 1],
        ['fixed', null],
      ],
    );
    let m = discoveryMetrics((await get(admin, '/metrics')).body, 'web');
    assert.deepEqual(m, { updates: 1, failures: 0, servers: 2, lastUpdate: firstAt / 1000 });
    assert.equal(sample((await get(admin, '/metrics')).body, 'portico_discovery_updates_total', 'fixed'), undefined, 'no series for a static pool');

    // An update: three servers.
    write([0, 1, 2]);
    await waitFor(async () => ((await json(admin, '/api/v1/pools/web')).discovery as Json).updates === 2, 15_000, 'the second list');
    const view = await json(admin, '/api/v1/pools/web');
    d = view.discovery as Json;
    assert.equal(d.servers, 3);
    assert.equal((view.servers as Json[]).length, 3);
    assert.ok(Date.parse(d.lastUpdateAt as string) > firstAt);
    m = discoveryMetrics((await get(admin, '/metrics')).body, 'web');
    assert.deepEqual(m, { updates: 2, failures: 0, servers: 3, lastUpdate: Date.parse(d.lastUpdateAt as string) / 1000 });

    // An invalid file: a failure, its message, and the three servers stay.
    const updatedAt = d.lastUpdateAt;
    writeFileSync(file, JSON.stringify([{ name: 's0' }]));
    await waitFor(async () => ((await json(admin, '/api/v1/pools/web')).discovery as Json).failures === 1, 15_000, 'the failure');
    const bad = await json(admin, '/api/v1/pools/web');
    d = bad.discovery as Json;
    assert.equal(d.usingLastKnownGood, true);
    assert.match(d.lastError as string, /invalid servers \(the list is refused\): entry 0: address/);
    assert.ok(Date.parse(d.lastErrorAt as string) >= Date.parse(updatedAt as string));
    assert.equal(d.servers, 3);
    assert.equal(d.updates, 2);
    assert.equal(d.lastUpdateAt, updatedAt);
    assert.equal((bad.servers as Json[]).length, 3, 'the last known good list is in force');
    m = discoveryMetrics((await get(admin, '/metrics')).body, 'web');
    assert.deepEqual(m, { updates: 2, failures: 1, servers: 3, lastUpdate: Date.parse(updatedAt as string) / 1000 });

    // portico ctl servers: the discovery lines, and --json carries the object.
    let out = '';
    const code = await runCtl(['--admin', `http://127.0.0.1:${admin}`, 'servers', 'web'], { out: (s) => (out += s), err: (s) => (out += s), env: {} });
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`^discovery file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: 3 servers, 2 updates \\(last ${updatedAt}\\), 1 failure$`, 'm'));
    assert.match(out, /^ {2}last error \S+: file .*invalid servers/m);
    assert.match(out, /^ {2}the source is failing: the last known good list stays in force$/m);
    let js = '';
    await runCtl(['--admin', `http://127.0.0.1:${admin}`, '--json', 'servers', 'web'], { out: (s) => (js += s), err: (s) => (js += s), env: {} });
    assert.deepEqual((JSON.parse(js) as Json).discovery, d);

    // Valid again (after the back-off): no longer failing; the last error stays visible.
    write([0]);
    await waitFor(async () => ((await json(admin, '/api/v1/pools/web')).discovery as Json).updates === 3, 8000, 'the list after the failure');
    d = (await json(admin, '/api/v1/pools/web')).discovery as Json;
    assert.equal(d.usingLastKnownGood, false);
    assert.equal(d.servers, 1);
    assert.equal(d.failures, 1);
    assert.notEqual(d.lastError, null);
    out = '';
    await runCtl(['--admin', `http://127.0.0.1:${admin}`, 'servers', 'fixed'], { out: (s) => (out += s), err: (s) => (out += s), env: {} });
    assert.doesNotMatch(out, /discovery/);
  });
});

describe('discovery status, cluster.workers: 2 (file)', () => {
  let origins: Origin[] = [];
  let dir: string;
  let file: string;
  let node: WorkersProcess | undefined;
  let admin: number;
  const write = (names: readonly number[]): void => {
    writeFileSync(file + '.tmp', JSON.stringify(names.map((i) => ({ name: `s${i}`, address: origins[i]!.address }))));
    renameSync(file + '.tmp', file);
  };

  before(async () => {
    origins = await startOrigins(2);
    dir = mkdtempSync(join(tmpdir(), 'portico-disc-status-w-'));
    file = join(dir, 'servers.json');
    write([0]);
    admin = await freePort();
    const port = await freePort();
    const config = join(dir, 'portico.json');
    writeFileSync(
      config,
      JSON.stringify({
        cluster: { workers: 2 },
        stateDir: dir,
        admin: { listen: `127.0.0.1:${admin}` },
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', discovery: { type: 'file', path: file } }],
      }),
    );
    node = await startWorkersProcess(config, dir, 2);
    await waitFor(async () => (await get(admin, '/metrics')).headers['x-portico-workers'] === '2/2', 10_000, 'both workers to report');
  });
  after(async () => {
    await node?.stop();
    for (const o of origins) await o.close();
    origins = [];
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** `n` reads of the pool view and of /metrics, on new connections (so from both workers). */
  async function reads(n: number): Promise<{ views: Json[]; metrics: Json[]; pids: Set<number> }> {
    const views: Json[] = [];
    const metrics: Json[] = [];
    const pids = new Set<number>();
    for (let i = 0; i < n; i++) {
      const v = await json(admin, '/api/v1/pools/web');
      views.push(v.discovery as Json);
      const s = await json(admin, '/api/v1/status');
      pids.add((s.workers as Json).pids[0] as number);
      metrics.push(discoveryMetrics((await get(admin, '/metrics')).body, 'web'));
    }
    return { views, metrics, pids };
  }

  it('every worker answers with the primary\'s figures, counted once, after an update and after an invalid file', async () => {
    write([0, 1]);
    await waitFor(async () => ((await json(admin, '/api/v1/pools/web')).discovery as Json).updates === 2, 8000, 'the second list');
    let r = await reads(8);
    assert.equal(r.pids.size, 2, 'both workers answered');
    const first = r.views[0]!;
    assert.equal(first.type, 'file');
    assert.equal(first.source, file);
    assert.equal(first.servers, 2);
    assert.equal(first.updates, 2);
    assert.equal(first.failures, 0);
    assert.equal(first.usingLastKnownGood, false);
    for (const v of r.views) assert.deepEqual(v, first);
    for (const m of r.metrics) assert.deepEqual(m, { updates: 2, failures: 0, servers: 2, lastUpdate: Date.parse(first.lastUpdateAt as string) / 1000 });

    writeFileSync(file, 'servers: [ { name: s9, address: nowhere } ]');
    await waitFor(async () => ((await json(admin, '/api/v1/pools/web')).discovery as Json).failures === 1, 8000, 'the failure');
    // The watcher reads the failing file again after each back-off (1 s, then 2, 4 ...), and each
    // read counts as a failure: a window of reads may straddle one on a slow machine. Read again
    // until one window is unchanged from start to end (the back-off doubles, so this ends).
    for (let attempt = 0; ; attempt++) {
      r = await reads(8);
      const v0 = JSON.stringify(r.views[0]);
      const m0 = JSON.stringify(r.metrics[0]);
      if (r.views.every((v) => JSON.stringify(v) === v0) && r.metrics.every((m) => JSON.stringify(m) === m0)) break;
      if (attempt === 6) break; // the assertions below say what differed
    }
    assert.equal(r.pids.size, 2, 'both workers answered');
    const failed = r.views[0]!;
    assert.equal(failed.usingLastKnownGood, true);
    assert.match(failed.lastError as string, /invalid servers/);
    assert.equal(failed.servers, 2);
    assert.equal(failed.updates, 2);
    for (const v of r.views) assert.deepEqual(v, failed);
    assert.ok((failed.failures as number) >= 1);
    for (const m of r.metrics) assert.deepEqual(m, { updates: 2, failures: failed.failures, servers: 2, lastUpdate: Date.parse(first.lastUpdateAt as string) / 1000 });
    // Both workers still have the last known good list.
    const servers = new Set<string>();
    for (let i = 0; i < 6; i++) for (const s of (await json(admin, '/api/v1/pools/web?scope=worker')).servers as Json[]) servers.add(s.name as string);
    assert.deepEqual([...servers].sort(), ['s0', 's1']);
  });
});
