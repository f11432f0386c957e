import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcd, skipWithoutEtcd, type EtcdProcess } from '../../test-helpers/etcd.js';
import { freePort, startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { bodies, startWorkersProcess, type WorkersProcess } from '../../test-helpers/workers.js';

/**
 * `cluster.workers: 2` with the configuration from etcd: only the primary watches etcd; it
 * hands the validated document to each worker (a replacement worker too) and every valid new
 * version to both, and refuses an invalid version once, while both workers keep theirs.
 */

const N = 12;

describe('cluster.workers: 2 with cluster.config: etcd', { skip: skipWithoutEtcd() }, () => {
  let etcd: EtcdProcess;
  let origins: Origin[];
  let dir: string;
  let port: number;
  let node: WorkersProcess | undefined;
  let client: Etcd3;

  const doc = (origin: Origin, extra = ''): string =>
    [
      `cluster: { config: "etcd://127.0.0.1:${etcd.port}/wk", workers: 2 }`,
      'admin: { enabled: false }',
      'listeners:',
      `  - { name: web, protocol: http, listen: "127.0.0.1:${port}", routes: [ { match: { path: /other }, pool: other }, { pool: web } ] }`,
      'pools:',
      `  - { name: web, health: { type: none }, servers: [ { name: s, address: "${origin.address}" } ] }`,
      `  - { name: other, health: { type: none }, servers: [ { name: s, address: "${origins[0]!.address}" } ] }`,
      extra,
      '',
    ].join('\n');

  before(async () => {
    etcd = await startEtcd();
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-etcd-'));
    port = await freePort();
    client = new Etcd3({ hosts: etcd.endpoint });
  });
  after(async () => {
    await node?.stop();
    client?.close();
    for (const o of origins ?? []) await o.close();
    await etcd?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('both workers run the document; a new version reaches both; an invalid one is refused once and both keep theirs; a new worker gets the last good one', async (t) => {
    const [o1, o2, o3] = origins as [Origin, Origin, Origin];
    mkdirSync(join(dir, 'node'));
    const file = join(dir, 'node', 'bootstrap.yaml');
    // The node's file says where the document is; the document says how many workers.
    writeFileSync(file, `cluster: { config: "etcd://127.0.0.1:${etcd.port}/wk" }\nstateDir: ${join(dir, 'node', 'state')}\n`);
    await client.put('/wk/config').value(doc(o1));
    node = await startWorkersProcess(file, join(dir, 'node'), 2);
    assert.equal(node.workers().length, 2, node.output());
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o1']));
    assert.ok(existsSync(join(dir, 'node', 'state', 'etcd-config.yaml')));

    // A new version: the pool's server changes. Every fresh connection (both workers, in turn) gets o2.
    const t0 = performance.now();
    await client.put('/wk/config').value(doc(o2));
    await waitFor(async () => (await bodies(port, 4)).every((b) => b === 'o2'), 10_000, 'both workers to serve the new version');
    t.diagnostic(`etcd put -> both workers serve the new version: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));
    await waitFor(() => node!.count(/reload: generation 2/) === 2, 15_000, 'both workers to log generation 2');
    assert.equal(node.count(/etcd configuration: a new version/), 1, 'the primary alone watches etcd');

    // An invalid version: refused once (in the primary), and both workers keep o2.
    await client.put('/wk/config').value(doc(o3).replace('health: { type: none }', 'health: { type: nope }'));
    await waitFor(() => node!.count(/etcd configuration refused/) > 0, 10_000, 'the refusal');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(node.count(/etcd configuration refused/), 1, node.output());
    assert.equal(node.count(/reload refused/), 0, 'no worker saw the invalid version');
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));
    assert.match(readFileSync(join(dir, 'node', 'state', 'etcd-config.yaml'), 'utf8'), new RegExp(o2.address));

    // A worker killed: its replacement runs the last good document (o2), not the bootstrap file (no listener) nor the invalid one.
    const [victim] = node.workers();
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => node!.count(/listener web on/) >= 3 && node!.workers().length === 2, 60_000, 'a new worker to listen');
    assert.ok(!node.workers().includes(victim!));
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));

    // The next valid version reaches both, the new worker included: a route changes (/other now goes to o3).
    await client.put('/wk/config').value(doc(o2).replace(`servers: [ { name: s, address: "${o1.address}" } ]`, `servers: [ { name: s, address: "${o3.address}" } ]`));
    await waitFor(async () => (await bodies(port, 4, '/other')).every((b) => b === 'o3'), 10_000, 'both workers to take the changed route');
    assert.deepEqual(new Set(await bodies(port, N, '/other')), new Set(['o3']));
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));
  });
});

/** One worker's view of the pool `web`, from `/metrics?scope=worker` on a new connection: its pid, and each server's portico_server_up. */
async function workerView(adminPort: number): Promise<{ pid: string; up: Map<string, number> }> {
  const res = await new Promise<{ headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: adminPort, path: '/metrics?scope=worker', agent: false }, (r) => {
      let b = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (b += c));
      r.on('end', () => resolve({ headers: r.headers, body: b }));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
    req.end();
  });
  const up = new Map<string, number>();
  for (const m of res.body.matchAll(/^portico_server_up\{pool="web",server="([^"]+)"\} (\d+)/gm)) up.set(m[1]!, Number(m[2]));
  return { pid: String(res.headers['x-portico-worker']), up };
}

/** Every worker's view (asked on new connections until `workers` pids have answered). */
async function views(adminPort: number, workers: number): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  for (let i = 0; i < workers * 8 && out.size < workers; i++) {
    const v = await workerView(adminPort);
    out.set(v.pid, v.up);
  }
  return out;
}

/** `name=up` of every server, sorted: the same text for two workers with the same view. */
function show(up: Map<string, number>): string {
  return [...up].map(([s, v]) => `${s}=${v}`).sort().join(' ');
}

describe('cluster.workers: 2 with discovery (file)', () => {
  const healthy = new Map<string, boolean>([
    ['s1', true],
    ['s2', true],
    ['s3', false],
  ]);
  const probes = new Map<string, number>();
  const served = new Map<string, number>();
  let origins: Origin[] = [];
  let dir: string;
  let serversFile: string;
  let node: WorkersProcess | undefined;
  let port: number;
  let adminPort: number;

  const writeServers = (names: string[]): void => {
    const tmp = `${serversFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(names.map((n) => ({ name: n, address: origins.find((o) => o.name === n)!.address }))));
    renameSync(tmp, serversFile);
  };

  before(async () => {
    for (const name of ['s1', 's2', 's3']) {
      origins.push(
        await startOrigin(name, (req, res, o) => {
          if (req.url === '/health') {
            probes.set(o.name, (probes.get(o.name) ?? 0) + 1);
            res.writeHead(healthy.get(o.name) ? 200 : 503).end();
            return;
          }
          served.set(o.name, (served.get(o.name) ?? 0) + 1);
          res.end(o.name);
        }),
      );
    }
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-disc-'));
    serversFile = join(dir, 'servers.json');
    writeServers(['s1']);
    port = await freePort();
    adminPort = await freePort();
    const file = join(dir, 'portico.json');
    writeFileSync(
      file,
      JSON.stringify({
        cluster: { workers: 2 },
        stateDir: dir,
        admin: { listen: `127.0.0.1:${adminPort}` },
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
        pools: [
          {
            name: 'web',
            health: { type: 'http', path: '/health', interval: '100ms', timeout: '2s', rise: 1, fall: 1 },
            discovery: { type: 'file', path: serversFile },
          },
        ],
      }),
    );
    node = await startWorkersProcess(file, dir, 2);
  });
  after(async () => {
    await node?.stop();
    for (const o of origins) await o.close();
    origins = [];
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('discovery runs once, in the primary; both workers get its lists and the probes of the discovered servers', async (t) => {
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['s1']));
    let v = await views(adminPort, 2);
    assert.equal(v.size, 2, 'both workers answered');
    for (const up of v.values()) assert.equal(show(up), 's1=1');

    // s2 (healthy) and s3 (failing its check) join: both workers serve s2 once it has passed its check; s3 never.
    const t0 = performance.now();
    writeServers(['s1', 's2', 's3']);
    await waitFor(
      async () => {
        const all = await views(adminPort, 2);
        return all.size === 2 && [...all.values()].every((up) => show(up) === 's1=1 s2=1 s3=0');
      },
      10_000,
      'both workers to have s1 and s2 up, s3 down',
    );
    t.diagnostic(`servers file renamed -> both workers have the new list with its probe results: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['s1', 's2']));
    assert.equal(served.get('s3') ?? 0, 0, 's3 never served');

    // The discovered s2 is probed once per interval (by the primary), not once per process.
    // Counted, not timed: 10 probes from one prober are at least 9 intervals (100 ms) apart in all,
    // whatever the machine's speed; one prober per process would send them three times as fast.
    const before = probes.get('s2') ?? 0;
    const probing = performance.now();
    await waitFor(() => (probes.get('s2') ?? 0) - before >= 10, 15_000, '10 probes of s2');
    const ms = performance.now() - probing;
    t.diagnostic(`10 probes of s2 took ${ms.toFixed(0)} ms at an interval of 100 ms`);
    assert.ok(ms >= 800, `10 probes in ${ms.toFixed(0)} ms: more than one prober`);

    // s3's check passes now: both workers serve it (the state reached them).
    healthy.set('s3', true);
    await waitFor(async () => (await bodies(port, 6)).includes('s3'), 15_000, 's3 served');
    v = await views(adminPort, 2);
    for (const up of v.values()) assert.equal(show(up), 's1=1 s2=1 s3=1');

    // s2 leaves the file: it leaves both workers.
    writeServers(['s1', 's3']);
    await waitFor(
      async () => {
        const all = await views(adminPort, 2);
        return all.size === 2 && [...all.values()].every((up) => show(up) === 's1=1 s3=1');
      },
      10_000,
      's2 gone from both workers',
    );
    const s2Before = served.get('s2') ?? 0;
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['s1', 's3']));
    assert.equal(served.get('s2') ?? 0, s2Before);

    // An invalid file: the one watcher (the primary's) refuses it once; the lists stay.
    const failures = node!.count(/discovery file \S+ failed/);
    writeFileSync(serversFile, '[{ name: broken }]');
    await waitFor(() => node!.count(/discovery file \S+ failed/) > failures, 15_000, 'the refusal');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(node!.count(/discovery file \S+ failed/), failures + 1, 'one watcher, not one per process');
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['s1', 's3']));
    writeServers(['s1', 's3']);
  });

  it('a worker that replaces a dead one has the list and the states before it accepts', async () => {
    const [victim] = node!.workers();
    const listening = node!.count(/listener web on/);
    healthy.set('s3', false);
    await waitFor(async () => [...(await views(adminPort, 2)).values()].every((up) => show(up) === 's1=1 s3=0'), 15_000, 's3 down on both');
    const s3Before = served.get('s3') ?? 0;
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => node!.count(/listener web on/) > listening, 60_000, 'the new worker to listen');
    // The new worker's first answers: s1 only (it knew the list, and s3's state, before accepting).
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['s1']));
    assert.equal(served.get('s3') ?? 0, s3Before);
    const v = await views(adminPort, 2);
    assert.equal(v.size, 2);
    for (const up of v.values()) assert.equal(show(up), 's1=1 s3=0');
  });
});

describe('cluster.workers: 2, runtime changes made at once through both workers', () => {
  let origin: Origin;
  let dir: string;
  let node: WorkersProcess | undefined;
  let adminPort: number;
  const SERVERS = 40;

  before(async () => {
    origin = await startOrigin('o');
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-rt-'));
    adminPort = await freePort();
    const file = join(dir, 'portico.json');
    writeFileSync(
      file,
      JSON.stringify({
        cluster: { workers: 2 },
        stateDir: dir,
        admin: { listen: `127.0.0.1:${adminPort}` },
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${await freePort()}`, routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', health: { type: 'none' }, servers: Array.from({ length: SERVERS }, (_, i) => ({ name: `s${i}`, address: origin.address })) }],
      }),
    );
    node = await startWorkersProcess(file, dir, 2);
  });
  after(async () => {
    await node?.stop();
    await origin?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('40 drains sent at once, on new connections (so to both workers): every worker ends with all 40', async () => {
    const patch = (name: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ state: 'drain' });
        const req = request(
          { host: '127.0.0.1', port: adminPort, method: 'PATCH', path: `/api/v1/pools/web/servers/${name}`, agent: false, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const codes = await Promise.all(Array.from({ length: SERVERS }, (_, i) => patch(`s${i}`)));
    assert.deepEqual(new Set(codes), new Set([200]));
    const drained = async (): Promise<Map<string, number>> => {
      const out = new Map<string, number>();
      for (let i = 0; i < 16 && out.size < 2; i++) {
        const res = await new Promise<{ pid: string; body: string }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: adminPort, path: '/metrics?scope=worker', agent: false }, (r) => {
            let b = '';
            r.setEncoding('utf8');
            r.on('data', (c: string) => (b += c));
            r.on('end', () => resolve({ pid: String(r.headers['x-portico-worker']), body: b }));
          });
          req.on('error', reject);
          req.end();
        });
        out.set(res.pid, (res.body.match(/^portico_server_state\{pool="web",server="s\d+",state="drain"\} 1$/gm) ?? []).length);
      }
      return out;
    };
    let last = new Map<string, number>();
    await waitFor(
      async () => {
        last = await drained();
        return last.size === 2 && [...last.values()].every((n) => n === SERVERS);
      },
      10_000,
      'every worker to have the 40 drains',
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify([...last])}`);
    });
  });
});
