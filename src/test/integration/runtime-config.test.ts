import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { createPortico, markValidated, type Portico } from '../../app/app.js';
import { loadConfigFile } from '../../config/load.js';
import { missingBinary } from '../../test-helpers/certs.js';
import { startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { redisSkip, startRedis, type RedisServer } from '../../test-helpers/redis.js';
import { Etcd3 } from 'etcd3';
import { skipWithoutEtcd, startEtcd, type EtcdProcess } from '../../test-helpers/etcd.js';

const TOKEN = 'runtime-test-token';

interface Reply {
  status: number;
  body: any;
}

async function api(p: Portico, method: string, path: string, body?: unknown): Promise<Reply> {
  const a = p.admin!.address;
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${a.port}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** One GET through `agent` (a kept-alive connection when the agent keeps one); the origin's name and the local port of the socket used. */
function get(port: number, agent: Agent | false = false, path = '/'): Promise<{ status: number; body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, localPort: req.socket?.localPort ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

export function dig(port: number, name: string): Promise<{ status: string; answers: string[] }> {
  return new Promise((resolve, reject) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+norec', '+tries=2', '+time=5', name, 'A'], { timeout: 30_000 }, (err, stdout) => {
      if (err !== null && stdout === '') return reject(err);
      const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'none';
      const answer = stdout.split('\n;; ANSWER SECTION:\n')[1]?.split('\n\n')[0] ?? '';
      resolve({ status, answers: answer.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/).pop()!) });
    });
  });
}

function fileConfig(dir: string, origins: Origin[], extraPools: unknown[] = []): Record<string, unknown> {
  return {
    log: { level: 'error' },
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    stateDir: join(dir, 'state'),
    shutdownGrace: '5s',
    loadBalancers: { listen: '127.0.0.1', zone: 'lb.portico.test' },
    listeners: [
      { name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] },
      { name: 'dns', protocol: 'dns', listen: '127.0.0.1:0', zones: [{ name: 'lb.portico.test', records: [] }] },
    ],
    pools: [{ name: 'web', servers: [{ name: origins[0]!.name, address: origins[0]!.address }] }, ...extraPools],
  };
}

async function startFrom(file: string): Promise<Portico> {
  const p = createPortico(markValidated(loadConfigFile(file)), { configFile: file });
  await p.start();
  return p;
}

const portOf = (o: Origin): number => o.port;

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'portico');

/** `portico ctl ARGS` as a child process against `p`'s admin API. */
function ctl(p: Portico, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const admin = `http://127.0.0.1:${p.admin!.address.port}`;
    execFile(process.execPath, [BIN, 'ctl', '--admin', admin, '--token', TOKEN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') return reject(err);
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
  });
}

describe('run-time configuration through the admin API', () => {
  const noDig = missingBinary('dig');
  let origins: Origin[];
  let dir: string;
  let file: string;
  let p: Portico | undefined;
  before(async () => {
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-runtime-'));
    file = join(dir, 'portico.yaml');
    writeFileSync(file, stringify(fileConfig(dir, origins)));
    p = await startFrom(file);
  });
  after(async () => {
    await p?.stop(0);
    await Promise.all(origins.map((o) => o.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /api/v1/config: the running document, the admin token redacted', async () => {
    const r = await api(p!, 'GET', '/api/v1/config');
    assert.equal(r.status, 200);
    assert.equal(r.body.admin.token, '(redacted)');
    assert.deepEqual(r.body.listeners.map((l: { name: string }) => l.name), ['web', 'dns']);
    assert.equal(r.body.loadBalancers.zone, 'lb.portico.test');
    assert.ok(!JSON.stringify(r.body).includes(TOKEN));
  });

  it('an invalid load balancer is refused with every problem listed, and nothing is applied', async () => {
    const journal = join(dir, 'state', 'runtime-changes.json');
    const before = await api(p!, 'GET', '/api/v1/config');
    const r = await api(p!, 'POST', '/api/v1/loadbalancers', {
      name: 'bad name',
      listeners: [
        { protocol: 'http', port: 0, serverPort: 8080 },
        { protocol: 'ftp', port: 'eighty', serverPort: 0, extra: 1 },
      ],
      servers: [5],
      health: { target: 'HTTP:99999/ping' },
    });
    assert.equal(r.status, 422);
    assert.equal(r.body.error.code, 'LB_ADMIN_INVALID');
    const issues = r.body.error.issues.map((i: { path: string }) => i.path).sort();
    assert.deepEqual(issues, ['health.target', 'listeners[1].extra', 'listeners[1].port', 'listeners[1].protocol', 'listeners[1].serverPort', 'name', 'servers[0]']);
    // A body whose own shape is right but whose pool the file's schema refuses: the schema's message, at the body's path.
    const r2 = await api(p!, 'POST', '/api/v1/loadbalancers', {
      name: 'shop',
      listeners: [{ protocol: 'http', port: 0, serverPort: 8080 }],
      servers: ['127.0.0.1', { name: 'x', address: 'nowhere:99999', weight: 1000 }],
      health: { target: 'HTTP:8080/ping', interval: '30', healthyThreshold: 0 },
    });
    assert.equal(r2.status, 422, JSON.stringify(r2.body));
    const byPath = new Map<string, string>(r2.body.error.issues.map((i: { path: string; message: string }) => [i.path, i.message]));
    assert.match(byPath.get('servers[1].address') ?? '', /port/);
    assert.match(byPath.get('servers[1].weight') ?? '', /out of range 0-256/);
    assert.match(byPath.get('health.interval') ?? '', /has no unit/);
    assert.match(byPath.get('health.healthyThreshold') ?? '', /out of range 1-100/);
    const after = await api(p!, 'GET', '/api/v1/config');
    assert.deepEqual(after.body, before.body);
    assert.throws(() => readFileSync(journal), /ENOENT/);
  });

  it('pools and listeners: POST, PATCH, DELETE validated as the file is, applied while a connection stays open', async () => {
    const port = p!.address('web')!.port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(port, agent);
      assert.equal(first.body, origins[0]!.name);
      // Every problem at once, the file's messages, paths in the body.
      const bad = await api(p!, 'POST', '/api/v1/pools', { name: 'api', balance: 'fastests', servers: [{ name: 'a', address: 'x' }, { name: 'a', address: origins[1]!.address }] });
      assert.equal(bad.status, 422);
      const paths = bad.body.error.issues.map((i: { path: string }) => i.path).sort();
      assert.deepEqual(paths, ['balance', 'servers[0].address', 'servers[1].name']);
      assert.match(bad.body.error.issues.find((i: { path: string }) => i.path === 'servers[1].name').message, /duplicate server name "a"/);
      const orphan = await api(p!, 'POST', '/api/v1/listeners', { name: 'api', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'api' }] });
      assert.equal(orphan.status, 422);
      assert.deepEqual(orphan.body.error.issues.map((i: { path: string }) => i.path), ['routes[0].pool']);
      // The good ones.
      const pool = await api(p!, 'POST', '/api/v1/pools', { name: 'api', servers: [{ name: 'a', address: origins[1]!.address }] });
      assert.equal(pool.status, 201, JSON.stringify(pool.body));
      const l = await api(p!, 'POST', '/api/v1/listeners', { name: 'api', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'api' }] });
      assert.equal(l.status, 201, JSON.stringify(l.body));
      const apiPort = p!.address('api')!.port;
      assert.equal((await get(apiPort)).body, origins[1]!.name);
      // The file's pool changed through the API: PATCH lays the keys over the file's definition.
      const patched = await api(p!, 'PATCH', '/api/v1/pools/web', { servers: [{ name: 'b', address: origins[2]!.address }] });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      const second = await get(port, agent);
      assert.equal(second.body, origins[2]!.name);
      assert.equal(second.localPort, first.localPort, 'the kept-alive connection survived the changes');
      // A pool in use cannot go; the listener first.
      const inUse = await api(p!, 'DELETE', '/api/v1/pools/api');
      assert.equal(inUse.status, 422);
      assert.match(inUse.body.error.issues[0].path, /^config\.listeners\[\d\]\.routes\[0\]\.pool$/);
      assert.equal((await api(p!, 'DELETE', '/api/v1/listeners/api')).status, 200);
      assert.equal((await api(p!, 'DELETE', '/api/v1/pools/api')).status, 200);
      assert.equal(p!.address('api'), undefined);
      assert.equal((await api(p!, 'DELETE', '/api/v1/pools/web/runtime-change')).status, 200);
      const third = await get(port, agent);
      assert.equal(third.body, origins[0]!.name);
      assert.equal(third.localPort, first.localPort);
    } finally {
      agent.destroy();
    }
  });

  it('a load balancer: created with a DNS name dig resolves, instances, health check, traffic; survives a reload and a restart; deleted', { skip: noDig }, async () => {
    const dnsPort = () => p!.address('dns')!.port;
    const created = await api(p!, 'POST', '/api/v1/loadbalancers', { name: 'shop', listeners: [{ protocol: 'HTTP', port: 0, serverPort: portOf(origins[1]!) }] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.dnsName, 'shop.lb.portico.test');
    const lbPort = p!.address('shop')!.port;
    assert.equal(created.body.address, `127.0.0.1:${lbPort}`);
    assert.deepEqual(await dig(dnsPort(), 'shop.lb.portico.test'), { status: 'NOERROR', answers: ['127.0.0.1'] });
    // In the status among the runtime changes, and in the journal before the answer came.
    const status = await api(p!, 'GET', '/api/v1/status');
    assert.deepEqual(
      status.body.runtimeChanges.inForce.map((c: { kind: string; loadbalancer?: string }) => [c.kind, c.loadbalancer]),
      [['loadbalancer', 'shop']],
    );
    assert.match(readFileSync(join(dir, 'state', 'runtime-changes.json'), 'utf8'), /"kind": "loadbalancer",\s+"name": "shop"/);
    assert.equal((await get(lbPort)).status, 503, 'no instance yet');

    const reg = await api(p!, 'POST', '/api/v1/loadbalancers/shop/instances', { instances: ['127.0.0.1', origins[2]!.address] });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.deepEqual(reg.body.servers.map((s: { address: string }) => s.address), [origins[1]!.address, origins[2]!.address]);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await get(lbPort)).body);
    assert.deepEqual([...seen].sort(), [origins[1]!.name, origins[2]!.name]);

    const hc = await api(p!, 'PUT', '/api/v1/loadbalancers/shop/health', { target: `HTTP:${portOf(origins[0]!)}/ping`, interval: '100ms', timeout: '3s', healthyThreshold: 2, unhealthyThreshold: 2 });
    assert.equal(hc.status, 200, JSON.stringify(hc.body));
    assert.equal(hc.body.health.type, 'http');
    assert.equal(hc.body.health.port, portOf(origins[0]!));
    // Both servers are probed on the health port of their host: origin 0 counts the probes.
    const probes = () => origins[0]!.seen.filter((s) => s === 'GET /ping').length;
    await waitFor(() => probes() >= 4, 30_000, 'probes on the health port');
    const pool = await api(p!, 'GET', '/api/v1/pools/shop');
    assert.ok(pool.body.servers.every((s: { probe?: { passed: number } }) => (s.probe?.passed ?? 0) >= 1), JSON.stringify(pool.body.servers));

    // A reload of the file keeps it; the file defining a pool of its name is reported, and the load balancer wins.
    writeFileSync(file, stringify(fileConfig(dir, origins, [{ name: 'shop', servers: [{ name: 'f', address: origins[0]!.address }] }])));
    const reload = await api(p!, 'POST', '/api/v1/reload');
    assert.equal(reload.status, 200, JSON.stringify(reload.body));
    assert.ok(reload.body.overridden.some((l: string) => /pool shop: the file defines it; load balancer shop/.test(l)), JSON.stringify(reload.body));
    assert.equal(p!.address('shop')!.port, lbPort);
    assert.ok([origins[1]!.name, origins[2]!.name].includes((await get(lbPort)).body));

    // A restart reads the journal: the same load balancer, its name, its servers.
    await p!.stop(0);
    p = await startFrom(file);
    const again = await api(p, 'GET', '/api/v1/loadbalancers/shop');
    assert.equal(again.status, 200);
    assert.equal(again.body.servers.length, 2);
    const port2 = p.address('shop')!.port;
    assert.ok([origins[1]!.name, origins[2]!.name].includes((await get(port2)).body));
    assert.deepEqual((await dig(dnsPort(), 'shop.lb.portico.test')).answers, ['127.0.0.1']);

    const del = await api(p, 'DELETE', '/api/v1/loadbalancers/shop');
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(p.address('shop'), undefined);
    assert.equal((await dig(dnsPort(), 'shop.lb.portico.test')).status, 'NXDOMAIN');
    // The file's own pool shop is what runs now.
    assert.deepEqual((await api(p, 'GET', '/api/v1/pools/shop')).body.servers.map((s: { name: string }) => s.name), ['f']);
  });
});

describe('deleting a load balancer drains it', () => {
  it('a request in flight when the load balancer is deleted is answered; new connections are refused', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const slow = await startOrigin('slow', (_req, res) => void held.then(() => res.end('slow done')));
    const origins = await startOrigins(1);
    const dir = mkdtempSync(join(tmpdir(), 'portico-drain-'));
    const file = join(dir, 'portico.yaml');
    writeFileSync(file, stringify(fileConfig(dir, origins)));
    const p = await startFrom(file);
    try {
      const created = await api(p, 'POST', '/api/v1/loadbalancers', { name: 'slow', listeners: [{ protocol: 'http', port: 0, serverPort: slow.port }], servers: ['127.0.0.1'] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const port = p.address('slow')!.port;
      const inFlight = get(port);
      await waitFor(() => slow.seen.length === 1, 30_000, 'the request to reach the server');
      const del = await api(p, 'DELETE', '/api/v1/loadbalancers/slow');
      assert.equal(del.status, 200, JSON.stringify(del.body));
      assert.equal(p.address('slow'), undefined);
      await assert.rejects(get(port), /ECONNREFUSED/);
      release();
      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'slow done');
    } finally {
      release();
      await p.stop(0);
      await Promise.all([slow, ...origins].map((o) => o.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the ELB steps with portico ctl', () => {
  const noDig = missingBinary('dig');
  let origins: Origin[];
  let dir: string;
  let p: Portico | undefined;
  before(async () => {
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-ctl-lb-'));
    const file = join(dir, 'portico.yaml');
    writeFileSync(file, stringify(fileConfig(dir, origins)));
    p = await startFrom(file);
  });
  after(async () => {
    await p?.stop(0);
    await Promise.all(origins.map((o) => o.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('create-lb, dig, register-instances, configure-healthcheck, health, traffic, delete-lb', { skip: noDig }, async () => {
    const created = await ctl(p!, ['create-lb', 'books', '--listener', `http:0:${origins[1]!.port}`]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^books: 127\.0\.0\.1:\d+  books\.lb\.portico\.test$/m);
    const dnsPort = p!.address('dns')!.port;
    assert.deepEqual((await dig(dnsPort, 'books.lb.portico.test')).answers, ['127.0.0.1']);
    const reg = await ctl(p!, ['register-instances', 'books', '127.0.0.1', origins[2]!.address]);
    assert.equal(reg.code, 0, reg.stderr);
    assert.match(reg.stdout, new RegExp(`servers: ${origins[1]!.address}, ${origins[2]!.address}`));
    const hc = await ctl(p!, ['configure-healthcheck', 'books', '--target', `HTTP:${origins[0]!.port}/ping`, '--interval', '30s', '--timeout', '3s', '--healthy-threshold', '2', '--unhealthy-threshold', '2']);
    assert.equal(hc.code, 0, hc.stderr);
    assert.match(hc.stdout, new RegExp(`health: http port ${origins[0]!.port} /ping every 30000 ms, timeout 3000 ms, rise 2, fall 2`));
    await waitFor(() => origins[0]!.seen.filter((s) => s === 'GET /ping').length >= 2, 30_000, 'the first probes');
    const health = await ctl(p!, ['health', 'books']);
    assert.equal(health.code, 0, health.stderr);
    assert.match(health.stdout, /passed [1-9]/);
    // The existing pool endpoint through ctl health: a tcp check of pool web.
    const tcp = await ctl(p!, ['health', 'web', 'tcp', '--interval', '1s', '--timeout', '500ms', '--rise', '1', '--fall', '2']);
    assert.equal(tcp.code, 0, tcp.stderr);
    assert.match(tcp.stdout, /"type":"tcp"/);
    const port = p!.address('books')!.port;
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await get(port)).body);
    assert.deepEqual([...seen].sort(), [origins[1]!.name, origins[2]!.name]);
    const bad = await ctl(p!, ['create-lb', 'books2', '--listener', 'http:99999:0']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /listeners\[0\]\.port: expected a port 0-65535/);
    assert.match(bad.stderr, /listeners\[0\]\.serverPort: expected a port 1-65535/);
    const del = await ctl(p!, ['delete-lb', 'books']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(p!.address('books'), undefined);
    assert.equal((await dig(dnsPort, 'books.lb.portico.test')).status, 'NXDOMAIN');
  });
});

describe('run-time configuration shared through cluster.store (a real redis-server)', { skip: redisSkip() ?? false }, () => {
  let redis: RedisServer;
  let origins: Origin[];
  let dir: string;
  const nodes: Portico[] = [];
  before(async () => {
    redis = await startRedis();
    origins = await startOrigins(2);
    dir = mkdtempSync(join(tmpdir(), 'portico-runtime-redis-'));
    for (const name of ['lb1', 'lb2']) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, stringify({ ...fileConfig(join(dir, name), origins), cluster: { node: name, store: redis.url } }));
      nodes.push(await startFrom(file));
    }
  });
  after(async () => {
    for (const n of nodes) await n.stop(0);
    await Promise.all(origins.map((o) => o.close()));
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a load balancer created on one node runs on the other, and its deletion too', async () => {
    const [a, b] = nodes as [Portico, Portico];
    const created = await api(a, 'POST', '/api/v1/loadbalancers', { name: 'shared', listeners: [{ protocol: 'http', port: 0, serverPort: origins[1]!.port }], servers: ['127.0.0.1'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await waitFor(() => b.address('shared') !== undefined, 30_000, 'the load balancer on the second node');
    const seen = await get(b.address('shared')!.port);
    assert.equal(seen.body, origins[1]!.name);
    const onB = await api(b, 'GET', '/api/v1/loadbalancers/shared');
    assert.equal(onB.body.dnsName, 'shared.lb.portico.test');
    // Its journal holds it too: it would survive a restart of the second node without the store.
    assert.match(readFileSync(join(dir, 'lb2', 'state', 'runtime-changes.json'), 'utf8'), /"kind": "loadbalancer"/);
    assert.equal((await api(b, 'DELETE', '/api/v1/loadbalancers/shared')).status, 200);
    await waitFor(() => a.address('shared') === undefined, 30_000, 'the deletion on the first node');
  });
});

describe('run-time configuration written back to etcd (cluster.config: etcd, a real etcd)', { skip: skipWithoutEtcd() }, () => {
  let etcd: EtcdProcess;
  let origins: Origin[];
  let dir: string;
  const nodes: Portico[] = [];
  before(async () => {
    etcd = await startEtcd();
    origins = await startOrigins(2);
    dir = mkdtempSync(join(tmpdir(), 'portico-runtime-etcd-'));
    for (const name of ['lb1', 'lb2']) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, stringify({ ...fileConfig(join(dir, name), origins), cluster: { node: name, config: `etcd://127.0.0.1:${etcd.port}/portico` } }));
      nodes.push(await startFrom(file));
    }
  });
  after(async () => {
    for (const n of nodes) await n.stop(0);
    await Promise.all((origins ?? []).map((o) => o.close()));
    await etcd?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('a load balancer created on one node is kept in etcd and runs on the other', async () => {
    const [a, b] = nodes as [Portico, Portico];
    const created = await api(a, 'POST', '/api/v1/loadbalancers', { name: 'etc', listeners: [{ protocol: 'tcp', port: 0, serverPort: origins[0]!.port }], servers: ['127.0.0.1'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await waitFor(() => b.address('etc') !== undefined, 30_000, 'the load balancer on the second node');
    assert.equal((await get(b.address('etc')!.port)).body, origins[0]!.name);
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      const snap = await client.get('/portico/runtime/runtime-changes').string();
      assert.match(snap ?? '', /"kind":"loadbalancer","name":"etc"/);
    } finally {
      client.close();
    }
    assert.equal((await api(b, 'DELETE', '/api/v1/loadbalancers/etc')).status, 200);
    await waitFor(() => a.address('etc') === undefined, 30_000, 'the deletion on the first node');
  });
});
