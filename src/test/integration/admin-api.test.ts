import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPortico, markValidated, type Portico } from '../../app/app.js';
import { loadConfigFile } from '../../config/load.js';
import { freePort, startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';

interface Reply {
  status: number;
  body: any;
}

/** One admin API call; the body is parsed as JSON. */
async function api(p: Portico, method: string, path: string, body?: unknown, token?: string): Promise<Reply> {
  const a = p.admin!.address;
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`http://127.0.0.1:${a.port}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** GET through the proxy on a fresh connection; resolves with the origin's name. */
function via(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function spread(port: number, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await via(port);
    seen.set(r.body, (seen.get(r.body) ?? 0) + 1);
  }
  return seen;
}

function configOf(origins: Origin[], stateDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: 'error' },
    admin: { listen: '127.0.0.1:0' },
    stateDir,
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
    ...extra,
  };
}

describe('admin API', () => {
  let origins: Origin[];
  let extra: Origin;
  let dir: string;
  let p: Portico;
  let port: number;
  before(async () => {
    origins = await startOrigins(2);
    extra = await startOrigin('o3');
    dir = mkdtempSync(join(tmpdir(), 'portico-admin-'));
    p = createPortico(configOf(origins, dir));
    await p.start();
    port = p.address('web')!.port;
  });
  after(async () => {
    await p.stop(0);
    await Promise.all([...origins, extra].map((o) => o.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('status: node, version, uptime, listeners, config generation; ready is 200', async () => {
    const s = await api(p, 'GET', '/api/v1/status');
    assert.equal(s.status, 200);
    assert.equal(typeof s.body.node, 'string');
    assert.match(s.body.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof s.body.uptimeSec, 'number');
    assert.deepEqual(s.body.listeners, [{ name: 'web', protocol: 'http', address: `127.0.0.1:${port}` }]);
    assert.equal(s.body.config.generation, 1);
    assert.equal(s.body.config.file, null);
    assert.deepEqual(s.body.runtimeChanges.inForce, []);
    assert.equal(s.body.runtimeChanges.journal, join(dir, 'runtime-changes.json'));
    const r = await api(p, 'GET', '/api/v1/status/ready');
    assert.equal(r.status, 200);
    assert.equal(r.body.ready, true);
  });

  it('pools: servers with states, weights, health and counters; unknown names are 404', async () => {
    await spread(port, 4);
    const all = await api(p, 'GET', '/api/v1/pools');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.pools.map((x: { name: string }) => x.name), ['web']);
    const web = await api(p, 'GET', '/api/v1/pools/web');
    assert.equal(web.body.balance, 'roundrobin');
    assert.equal(web.body.available, 2);
    const o1 = web.body.servers[0];
    assert.equal(o1.name, 'o1');
    assert.equal(o1.address, origins[0]!.address);
    assert.equal(o1.state, 'ready');
    assert.equal(o1.health, 'no check', 'no health section: no check, as HAProxy says');
    assert.equal(o1.check, 'none');
    assert.equal(o1.weight, 1);
    assert.equal(o1.source, 'config');
    assert.ok(o1.requests >= 1);
    const none = await api(p, 'GET', '/api/v1/pools/nope');
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, 'LB_ADMIN_NOT_FOUND');
    assert.match(none.body.error.message, /pools: web/);
    assert.equal((await api(p, 'GET', '/api/v1/pools/web/servers/zz')).status, 404);
  });

  it('register: validated like the configuration; the new server takes traffic; a duplicate is 409', async () => {
    const bad = await api(p, 'POST', '/api/v1/pools/web/servers', { name: 'o3', address: 'nowhere', weight: 900, colour: 'red' });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.code, 'LB_ADMIN_INVALID');
    const paths = bad.body.error.issues.map((i: { path: string }) => i.path).sort();
    assert.deepEqual(paths, ['address', 'colour', 'weight']);
    assert.equal((await api(p, 'POST', '/api/v1/pools/web/servers', [1])).status, 400);
    const ok = await api(p, 'POST', '/api/v1/pools/web/servers', { name: 'o3', address: extra.address, weight: 2 });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.name, 'o3');
    assert.equal(ok.body.source, 'runtime');
    const seen = await spread(port, 8);
    assert.equal(seen.get('o3'), 4, 'weight 2 of 4');
    const dup = await api(p, 'POST', '/api/v1/pools/web/servers', { name: 'o1', address: extra.address });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'LB_ADMIN_CONFLICT');
  });

  it('patch: weight and state change in place; a bad value is refused with its key', async () => {
    const bad = await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', { state: 'sleeping', weight: -1 });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.body.error.issues.map((i: { path: string }) => i.path).sort(), ['state', 'weight']);
    assert.equal((await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', { address: '1.2.3.4:5' })).status, 422);
    assert.equal((await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', {})).status, 400);
    const drain = await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', { state: 'drain' });
    assert.equal(drain.status, 200);
    assert.equal(drain.body.state, 'drain');
    assert.equal(drain.body.available, false);
    const seen = await spread(port, 6);
    assert.equal(seen.get('o1'), undefined);
    const w = await api(p, 'PATCH', '/api/v1/pools/web/servers/o2', { weight: 3 });
    assert.equal(w.body.weight, 3);
    const back = await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', { state: 'ready' });
    assert.equal(back.body.state, 'ready');
    assert.equal(back.body.runtimeChange, undefined, 'back to its configured value: no longer a runtime change');
  });

  it('no mutation through GET, and an unknown method is 405', async () => {
    const r = await api(p, 'GET', '/api/v1/reload');
    assert.equal(r.status, 405);
    assert.equal(r.body.error.code, 'LB_ADMIN_METHOD_NOT_ALLOWED');
    assert.equal((await api(p, 'POST', '/api/v1/pools/web')).status, 405);
  });

  it('deregister: drains first, removes once idle; ?now=true cuts', async () => {
    const slow = await startOrigin('slow', (_req, res) => setTimeout(() => res.end('slow'), 400));
    try {
      assert.equal((await api(p, 'POST', '/api/v1/pools/web/servers', { name: 'slow', address: slow.address, weight: 256 })).status, 201);
      // With weight 256 of 262 the next request goes to `slow` (smooth weighted round robin starts with the heaviest).
      const pending = via(port, '/hold');
      await waitFor(() => slow.seen.length === 1, 15_000, 'request at slow');
      const del = await api(p, 'DELETE', '/api/v1/pools/web/servers/slow');
      assert.equal(del.status, 202);
      assert.equal(del.body.state, 'removing');
      assert.equal(del.body.active, 1);
      const during = await api(p, 'GET', '/api/v1/pools/web/servers/slow');
      assert.equal(during.body.state, 'removing');
      assert.equal(during.body.available, false);
      assert.equal((await pending).body, 'slow', 'the request in flight finishes');
      await waitFor(async () => (await api(p, 'GET', '/api/v1/pools/web/servers/slow')).status === 404, 15_000, 'slow removed');
      const idle = await api(p, 'DELETE', '/api/v1/pools/web/servers/o3?now=true');
      assert.equal(idle.status, 200);
      assert.equal(idle.body.state, 'removed');
      assert.equal((await api(p, 'DELETE', '/api/v1/pools/web/servers/o3')).status, 404);
      assert.equal((await api(p, 'DELETE', '/api/v1/pools/web/servers/o2?now=maybe')).status, 400);
    } finally {
      await slow.close();
    }
  });

  it('changes are journaled, shown beside the file values, and survive a restart', async () => {
    assert.equal((await api(p, 'POST', '/api/v1/pools/web/servers', { name: 'o3', address: extra.address })).status, 201);
    assert.equal((await api(p, 'DELETE', '/api/v1/pools/web/servers/o1')).status, 200);
    const journal = JSON.parse(readFileSync(join(dir, 'runtime-changes.json'), 'utf8'));
    assert.equal(journal.version, 1);
    const status = await api(p, 'GET', '/api/v1/status');
    const inForce = status.body.runtimeChanges.inForce as { server: string; kind: string; runtime?: unknown; config?: unknown }[];
    assert.deepEqual(inForce.map((c) => `${c.server}:${c.kind}`).sort(), ['o1:deregistered', 'o2:changed', 'o3:registered']);
    const o2 = inForce.find((c) => c.server === 'o2')!;
    assert.deepEqual(o2.runtime, { weight: 3 });
    assert.deepEqual(o2.config, { weight: 1 });
    await p.stop(0);
    p = createPortico(configOf(origins, dir));
    await p.start();
    port = p.address('web')!.port;
    const web = await api(p, 'GET', '/api/v1/pools/web');
    assert.deepEqual(web.body.servers.map((s: { name: string; weight: number }) => `${s.name}/${s.weight}`), ['o2/3', 'o3/1']);
    const seen = await spread(port, 8);
    assert.equal(seen.get('o1'), undefined);
    assert.equal(seen.get('o2'), 6);
    assert.equal(seen.get('o3'), 2);
  });

  it('health: replaced at run time, validated, and probes run', async () => {
    const dead = await freePort();
    assert.equal((await api(p, 'POST', '/api/v1/pools/web/servers', { name: 'dead', address: `127.0.0.1:${dead}` })).status, 201);
    const bad = await api(p, 'PUT', '/api/v1/pools/web/health', { type: 'tcp', interval: 'often' });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.body.error.issues.map((i: { path: string }) => i.path), ['interval']);
    const ok = await api(p, 'PUT', '/api/v1/pools/web/health', { type: 'tcp', interval: '100ms', timeout: '2s', fall: 1, rise: 1 });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.health.type, 'tcp');
    await waitFor(async () => (await api(p, 'GET', '/api/v1/pools/web/servers/dead')).body.health === 'down', 15_000, 'dead marked down');
    const live = await api(p, 'GET', '/api/v1/pools/web/servers/o2');
    assert.equal(live.body.health, 'up');
    assert.ok(live.body.probe.passed >= 1);
    const none = await api(p, 'PUT', '/api/v1/pools/web/health', { type: 'none' });
    assert.equal(none.status, 200);
    assert.equal((await api(p, 'DELETE', '/api/v1/pools/web/servers/dead?now=true')).status, 200);
  });
});

describe('admin API: token, reload', () => {
  let origins: Origin[];
  let dir: string;
  let file: string;
  let p: Portico;
  before(async () => {
    origins = await startOrigins(2);
    dir = mkdtempSync(join(tmpdir(), 'portico-admin-'));
    file = join(dir, 'portico.json');
    writeFileSync(file, JSON.stringify(configOf(origins.slice(0, 1), dir, { admin: { listen: '127.0.0.1:0', token: 'tok-123' } })));
    p = createPortico(markValidated(loadConfigFile(file)), { configFile: file });
    await p.start();
  });
  after(async () => {
    await p.stop(0);
    await Promise.all(origins.map((o) => o.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('mutations need the bearer token; reads do not', async () => {
    assert.equal((await api(p, 'GET', '/api/v1/pools')).status, 200);
    const no = await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', { weight: 2 });
    assert.equal(no.status, 401);
    assert.equal(no.body.error.code, 'LB_ADMIN_UNAUTHORIZED');
    assert.equal((await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', { weight: 2 }, 'wrong')).status, 401);
    assert.equal((await api(p, 'POST', '/api/v1/reload', undefined, 'wrong')).status, 401);
    assert.equal((await api(p, 'PATCH', '/api/v1/pools/web/servers/o1', { weight: 2 }, 'tok-123')).status, 200);
  });

  it('reload applies the file; an invalid file is refused with every error and the running config stays', async () => {
    const port = p.address('web')!.port;
    writeFileSync(file, JSON.stringify(configOf(origins, dir, { admin: { listen: '127.0.0.1:0', token: 'tok-123' } })));
    const ok = await api(p, 'POST', '/api/v1/reload', undefined, 'tok-123');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.generation, 2);
    assert.deepEqual(ok.body.changes, ['pool web: servers added: o2']);
    assert.equal(p.address('web')!.port, port, 'the listener keeps its socket');
    const web = await api(p, 'GET', '/api/v1/pools/web');
    assert.deepEqual(web.body.servers.map((s: { name: string; weight: number }) => `${s.name}/${s.weight}`), ['o1/2', 'o2/1'], 'the runtime weight of o1 stays');
    writeFileSync(file, JSON.stringify({ ...configOf(origins, dir), pools: [{ name: 'web', balance: 'nope', servers: [{ name: 'a', address: 'x' }] }] }));
    const bad = await api(p, 'POST', '/api/v1/reload', undefined, 'tok-123');
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.code, 'LB_CONFIG_INVALID');
    assert.match(bad.body.error.message, /generation 2 keeps running/);
    assert.equal(bad.body.error.issues.length, 2);
    assert.ok(bad.body.error.issues.every((i: { path: string }) => i.path.startsWith(`${file}:`)));
    const status = await api(p, 'GET', '/api/v1/status');
    assert.equal(status.body.config.generation, 2);
    assert.equal(status.body.config.lastReload.ok, false);
    assert.equal(status.body.config.lastReload.errors.length, 2);
    assert.equal((await via(port)).status, 200);
  });

  it('a reload applies a new token in place', async () => {
    writeFileSync(file, JSON.stringify(configOf(origins, dir, { admin: { listen: '127.0.0.1:0', token: 'tok-456' } })));
    const r = await api(p, 'POST', '/api/v1/reload', undefined, 'tok-123');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.changes, ['admin: token or allowed hosts updated']);
    assert.equal((await api(p, 'PATCH', '/api/v1/pools/web/servers/o2', { weight: 2 }, 'tok-123')).status, 401);
    assert.equal((await api(p, 'PATCH', '/api/v1/pools/web/servers/o2', { weight: 2 }, 'tok-456')).status, 200);
  });

  it('a listener moved to another port gets a new socket; a port in use refuses the reload and changes nothing', async () => {
    const old = p.address('web')!.port;
    const moved = await freePort();
    const withPort = (port: number, servers: Origin[]): unknown => {
      const c = configOf(servers, dir, { admin: { listen: '127.0.0.1:0', token: 'tok-456' } }) as { listeners: { listen: string }[] };
      c.listeners[0]!.listen = `127.0.0.1:${port}`;
      return c;
    };
    writeFileSync(file, JSON.stringify(withPort(moved, origins)));
    const r = await api(p, 'POST', '/api/v1/reload', undefined, 'tok-456');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.changes, ['listener web: new address or protocol (new socket; the old one drains)']);
    assert.equal(p.address('web')!.port, moved);
    assert.equal((await via(moved)).status, 200);
    await waitFor(async () => (await via(old).then(() => false, () => true)), 15_000, 'the old socket closed');
    const busy = await startOrigin('busy');
    writeFileSync(file, JSON.stringify(withPort(busy.port, origins.slice(0, 1))));
    const refused = await api(p, 'POST', '/api/v1/reload', undefined, 'tok-456');
    await busy.close();
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, /EADDRINUSE/);
    assert.equal(p.address('web')!.port, moved, 'the listener is untouched');
    const web = await api(p, 'GET', '/api/v1/pools/web');
    assert.equal(web.body.servers.length, 2, 'the pool is untouched');
    assert.equal((await via(moved)).status, 200);
  });

  it('Portico refuses a non-loopback admin listener without a token', () => {
    assert.throws(
      () => createPortico(configOf(origins, dir, { admin: { listen: '0.0.0.0:0' } })),
      (err: Error) => /admin\.listen: 0\.0\.0\.0 is not a loopback address: set admin\.token/.test(err.message),
    );
  });
});
