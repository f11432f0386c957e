import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import './listener-kinds.js';
import '../balancer/index.js';
import { validateConfig } from '../config/load.js';
import { getBalancer } from '../balancer/registry.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { Pool } from '../pool/pool.js';
import { buildServer } from './app.js';
import { describePlan, planReload, reconcileServers } from './reload.js';

const base = {
  admin: { listen: '127.0.0.1:9090' },
  listeners: [
    { name: 'web', protocol: 'http', listen: '127.0.0.1:8080', routes: [{ pool: 'web' }] },
    { name: 'api', protocol: 'http', listen: '127.0.0.1:8081', routes: [{ pool: 'api' }] },
  ],
  pools: [
    { name: 'web', servers: [{ name: 'a', address: '127.0.0.1:9001' }, { name: 'b', address: '127.0.0.1:9002' }] },
    { name: 'api', servers: [{ name: 'x', address: '127.0.0.1:9101' }] },
  ],
};

type Raw = typeof base;
const clone = (): Raw => JSON.parse(JSON.stringify(base)) as Raw;
const cfg = (raw: unknown) => validateConfig(raw);

describe('planReload', () => {
  it('an identical configuration changes nothing', () => {
    const plan = planReload(cfg(base), cfg(clone()));
    assert.deepEqual(plan.listeners, { added: [], removed: [], updated: [], rebound: [], unchanged: ['web', 'api'] });
    assert.deepEqual(plan.pools, { added: [], removed: [], updated: [], unchanged: ['web', 'api'] });
    assert.deepEqual(plan.restartRequired, []);
    assert.equal(plan.admin, false);
    assert.deepEqual(describePlan(plan), []);
  });

  it('listeners: added, removed, updated in place, rebound on a new address or protocol', () => {
    const next = clone() as any;
    next.listeners[0].routes = [{ match: { path: '/v2/' }, pool: 'api' }, { pool: 'web' }]; // same address: in place
    next.listeners[1].listen = '127.0.0.1:8082'; // new address: rebound
    next.listeners.push({ name: 'extra', protocol: 'http', listen: '127.0.0.1:8083', routes: [{ pool: 'web' }] });
    const plan = planReload(cfg(base), cfg(next));
    assert.deepEqual(plan.listeners, { added: ['extra'], removed: [], updated: ['web'], rebound: ['api'], unchanged: [] });
    const fewer = clone() as any;
    fewer.listeners.pop();
    fewer.pools.pop();
    const p2 = planReload(cfg(base), cfg(fewer));
    assert.deepEqual(p2.listeners.removed, ['api']);
    assert.deepEqual(p2.pools.removed, ['api']);
  });

  it('pools: servers added, removed and changed by name; the balancer only when its keys change', () => {
    const next = clone() as any;
    next.pools[0].servers = [
      { name: 'a', address: '127.0.0.1:9001', weight: 5 },
      { name: 'c', address: '127.0.0.1:9003' },
    ];
    next.pools[1].balance = 'leastconn';
    next.pools.push({ name: 'new', servers: [] });
    const plan = planReload(cfg(base), cfg(next));
    assert.deepEqual(plan.pools.added, ['new']);
    const web = plan.pools.updated.find((c) => c.name === 'web')!;
    assert.deepEqual(web.servers, { added: ['c'], removed: ['b'], changed: ['a'] });
    assert.equal(web.balancer, false);
    assert.equal(web.services, false);
    const api = plan.pools.updated.find((c) => c.name === 'api')!;
    assert.equal(api.balancer, true);
    assert.deepEqual(api.servers, { added: [], removed: [], changed: [] });
    assert.deepEqual(describePlan(plan), [
      'pool new: added',
      'pool web: servers added: c; servers removed: b; servers changed: a',
      'pool api: balancer rebuilt',
    ]);
  });

  it('a changed health check restarts the pool services; timeouts and keepAlive do not', () => {
    const next = clone() as any;
    next.pools[0].health = { type: 'tcp', interval: '5s' };
    next.pools[1].timeouts = { connect: '1s' };
    const plan = planReload(cfg(base), cfg(next));
    const web = plan.pools.updated.find((c) => c.name === 'web')!;
    assert.equal(web.services, true);
    assert.equal(web.keepAlive, false);
    const api = plan.pools.updated.find((c) => c.name === 'api')!;
    assert.equal(api.services, false);
    assert.equal(api.balancer, false);
    const ka = clone() as any;
    ka.pools[1].keepAlive = { maxIdlePerServer: 2 };
    ka.pools[1].slowStart = '10s';
    const p2 = planReload(cfg(base), cfg(ka));
    assert.equal(p2.pools.updated[0]!.keepAlive, true);
    assert.equal(p2.pools.updated[0]!.lifecycle, true);
    assert.equal(p2.pools.updated[0]!.services, false);
  });

  it('reports what takes effect only at the next start, and applies the token and the log settings in place', () => {
    const next = clone() as any;
    next.admin = { listen: '127.0.0.1:9091', token: 'abc' };
    next.stateDir = '/var/lib/portico';
    next.log = { level: 'debug' };
    const plan = planReload(cfg(base), cfg(next));
    assert.deepEqual(plan.restartRequired, ['admin.listen', 'stateDir']);
    assert.equal(plan.admin, true);
    assert.equal(plan.log, true);
    assert.equal(planReload(cfg(base), cfg(clone())).log, false);
  });
});

describe('reconcileServers', () => {
  const pcOf = (servers: unknown[]) => validateConfig({ admin: { enabled: false }, pools: [{ name: 'p', servers }] }).pools[0]!;
  const setup = () => {
    const pc = pcOf([
      { name: 'a', address: '127.0.0.1:1' },
      { name: 'b', address: '127.0.0.1:2' },
    ]);
    const factory = getBalancer('roundrobin')!;
    const pool = new Pool(
      { name: 'p', factory, balancerOptions: undefined, rng: new SeededRng(1), clock: new ManualClock(0) },
      pc.servers.map((sc) => ({ server: buildServer('p', sc) })),
    );
    const retired: string[] = [];
    const host = { newServer: buildServer, initialOp: () => 'up' as const, retireConnections: (id: string) => retired.push(id) };
    return { pool, host, retired };
  };

  it('keeps servers by name with their runtime; takes new definitions and states; adds new ones', () => {
    const { pool, host, retired } = setup();
    const a = pool.byName('a')!;
    pool.acquire(a.server);
    reconcileServers(host, pool, pcOf([
      { name: 'a', address: '127.0.0.1:1', weight: 4, state: 'drain' },
      { name: 'b', address: '127.0.0.1:9' },
      { name: 'c', address: '127.0.0.1:3' },
    ]));
    assert.equal(pool.byName('a'), a, 'the same runtime');
    assert.equal(a.requests, 1, 'counters kept');
    assert.equal(a.server.weight, 4);
    assert.equal(a.admin, 'drain');
    assert.equal(pool.byName('b')!.server.port, 9);
    assert.deepEqual(retired, ['p/b'], 'idle connections to the old address of b are closed');
    assert.deepEqual([...pool].map((r) => r.server.name), ['a', 'b', 'c']);
  });

  it('a server no longer wanted drains and leaves once idle; an idle one leaves at once; cut leaves at once', () => {
    const { pool, host } = setup();
    const a = pool.byName('a')!;
    pool.acquire(a.server);
    reconcileServers(host, pool, pcOf([]));
    assert.equal(pool.byName('b'), undefined, 'idle: removed at once');
    assert.equal(a.removing, true);
    assert.equal(a.admin, 'drain');
    assert.equal(pool.current.set.available.length, 0);
    pool.release(a, { ok: true, latencyMs: 1 });
    assert.equal(pool.byName('a'), undefined, 'removed once idle');

    const s2 = setup();
    const a2 = s2.pool.byName('a')!;
    s2.pool.acquire(a2.server);
    reconcileServers(s2.host, s2.pool, pcOf([{ name: 'b', address: '127.0.0.1:2' }]));
    assert.equal(a2.removing, true, 'draining');
    reconcileServers(s2.host, s2.pool, pcOf([{ name: 'b', address: '127.0.0.1:2' }]), new Set(['p/a']));
    assert.equal(s2.pool.byName('a'), undefined, 'cut while busy');
    reconcileServers(s2.host, s2.pool, pcOf([{ name: 'a', address: '127.0.0.1:1' }, { name: 'b', address: '127.0.0.1:2' }]));
    const successor = s2.pool.byName('a')!;
    s2.pool.release(a2, { ok: true, latencyMs: 1 });
    assert.equal(s2.pool.byName('a'), successor, 'the release of the cut server leaves its successor alone');
  });

  it('a server wanted again while it drains stays, back in its configured state', () => {
    const { pool, host } = setup();
    const a = pool.byName('a')!;
    pool.acquire(a.server);
    reconcileServers(host, pool, pcOf([{ name: 'b', address: '127.0.0.1:2' }]));
    assert.equal(a.removing, true);
    reconcileServers(host, pool, pcOf([{ name: 'a', address: '127.0.0.1:1' }, { name: 'b', address: '127.0.0.1:2' }]));
    assert.equal(a.removing, false);
    assert.equal(a.admin, 'ready');
    pool.release(a, { ok: true, latencyMs: 1 });
    assert.equal(pool.byName('a'), a);
  });
});
