import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { startFakeConsul, type FakeConsul, type FakeInstance } from '../../test-helpers/consul.js';
import { startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { answers, discoveryPortico as portico, readyNames as names, recorder } from '../../test-helpers/discovery.js';

// Consul's server is not packaged for Debian here: these tests run against its documented
// HTTP API (the health endpoint with blocking queries) served by the test (src/test-helpers/consul.ts).

describe('consul discovery (against the HTTP API served by the test)', () => {
  let origins: Origin[];
  let consul: FakeConsul;
  const TOKEN = 'b1gs3cr3t-0000-acl';
  before(async () => {
    origins = await startOrigins(3);
    consul = await startFakeConsul({ token: TOKEN });
  });
  after(async () => {
    await consul?.close();
    for (const o of origins ?? []) await o.close();
  });

  it('blocking queries follow the catalog: an instance registered joins, a failing check takes it out; tags, datacenter and token', async (t) => {
    const [o1, o2, o3] = origins as [Origin, Origin, Origin];
    const inst = (id: string, o: Origin, over: Partial<FakeInstance> = {}): FakeInstance => ({ id, node: `node-${id}`, address: '127.0.0.1', port: o.port, tags: ['prod'], check: 'passing', ...over });
    consul.set([
      inst('web-1', o1, { weight: 3 }),
      inst('web-2', o2),
      inst('web-canary', o3, { tags: ['canary'] }), // lacks the tag
      inst('web-east', o3, { dc: 'east' }), // another datacenter
      inst('api-1', o3, { service: 'api' }), // another service
    ]);
    const { log, lines } = recorder();
    const p = portico({ type: 'consul', url: consul.url, service: 'web', tags: ['prod'], token: TOKEN, wait: '30s' }, log);
    await p.start();
    try {
      assert.deepEqual(names(p), ['web-1', 'web-2'], lines.join('\n'));
      assert.equal(p.pools.get('web')!.byName('web-1')!.server.weight, 3);
      const port = p.address('web')!.port;
      assert.deepEqual([...(await answers(port, 6))].sort(), ['200 o1', '200 o2']);
      // Portico is now in a blocking query.
      await waitFor(() => consul.held() === 1, 15_000, 'a blocking query to be held');

      // A new instance: the held query answers at once and the pool follows.
      const t0 = performance.now();
      consul.set([...consul.instances(), inst('web-3', o3)]);
      await waitFor(() => names(p).join() === 'web-1,web-2,web-3', 15_000, 'web-3 to join');
      t.diagnostic(`instance registered -> server in the pool: ${(performance.now() - t0).toFixed(0)} ms`);
      assert.ok(consul.queries.some((q) => q.releasedByChange && /[?&]index=\d+/.test(q.url) && /[?&]wait=30s/.test(q.url)), 'a blocking query was answered by the change');

      // web-2's check fails: passing=true leaves it out.
      consul.set(consul.instances().map((i) => (i.id === 'web-2' ? { ...i, check: 'critical' } : i)));
      await waitFor(() => names(p).join() === 'web-1,web-3', 15_000, 'web-2 to leave when its check failed');
      assert.deepEqual([...(await answers(port, 6))].sort(), ['200 o1', '200 o3']);
      // ...and comes back when it passes again.
      consul.set(consul.instances().map((i) => (i.id === 'web-2' ? { ...i, check: 'passing' } : i)));
      await waitFor(() => names(p).join() === 'web-1,web-2,web-3', 15_000, 'web-2 to come back');

      // Every query carried the token, the tag, the passing filter; none carried dc (the agent's own).
      assert.ok(consul.queries.length >= 4);
      for (const q of consul.queries) {
        assert.equal(q.token, TOKEN);
        assert.match(q.url, /^\/v1\/health\/service\/web\?passing=true&tag=prod/);
        assert.doesNotMatch(q.url, /[?&]dc=/);
      }

      // The status in the admin API names the service, never the token.
      const res = await fetch(`${p.admin!.url}/api/v1/pools/web`);
      const text = await res.text();
      assert.doesNotMatch(text, new RegExp(TOKEN));
      const body = JSON.parse(text) as { discovery: { type: string; source: string; servers: number } };
      assert.equal(body.discovery.type, 'consul');
      assert.equal(body.discovery.source, `${consul.url}/web`);
      assert.equal(body.discovery.servers, 3);
    } finally {
      await p.stop(100);
    }
  });

  it('a datacenter is asked for with dc', async () => {
    const [o1] = origins as [Origin];
    consul.set([{ id: 'web-east-1', node: 'e1', address: '127.0.0.1', port: o1.port, dc: 'east', check: 'passing' }, { id: 'web-local', node: 'l1', address: '127.0.0.1', port: o1.port, check: 'passing' }]);
    const { log } = recorder();
    const p = portico({ type: 'consul', url: consul.url, service: 'web', datacenter: 'east', token: TOKEN }, log);
    await p.start();
    try {
      assert.deepEqual(names(p), ['web-east-1']);
      assert.match(consul.queries.at(-1)!.url, /[?&]dc=east/);
    } finally {
      await p.stop(100);
    }
  });

  it('errors keep the last good list: a 500, a wrong token (403), Consul gone', async () => {
    const [o1, o2] = origins as [Origin, Origin];
    consul.set([
      { id: 'web-1', node: 'n1', address: '127.0.0.1', port: o1.port, check: 'passing' },
      { id: 'web-2', node: 'n2', address: '127.0.0.1', port: o2.port, check: 'passing' },
    ]);
    const { log, lines } = recorder();
    const p = portico({ type: 'consul', url: consul.url, service: 'web', token: TOKEN, wait: '30s' }, log);
    await p.start();
    try {
      assert.deepEqual(names(p), ['web-1', 'web-2']);
      const port = p.address('web')!.port;
      await waitFor(() => consul.held() === 1, 15_000, 'a blocking query to be held');
      consul.failWith(500);
      await waitFor(() => lines.some((l) => /discovery consul .* failed: .*HTTP 500: rpc error/.test(l)), 15_000, 'the 500 to be reported');
      assert.deepEqual(names(p), ['web-1', 'web-2']);
      assert.deepEqual([...(await answers(port, 4))].sort(), ['200 o1', '200 o2']);
      const res = await fetch(`${p.admin!.url}/api/v1/pools/web`);
      const body = (await res.json()) as { discovery: { failures: number; usingLastKnownGood: boolean; lastError: string } };
      assert.ok(body.discovery.failures >= 1);
      assert.equal(body.discovery.usingLastKnownGood, true);
      assert.match(body.discovery.lastError, /HTTP 500/);
      // Back: the next attempt (after the back-off) applies a change.
      consul.failWith(undefined);
      consul.set(consul.instances().filter((i) => i.id !== 'web-2'));
      await waitFor(() => names(p).join() === 'web-1', 30_000, 'the list after recovery');
    } finally {
      await p.stop(100);
    }

    // A wrong token: 403 is a failure like any other (nothing applied, the pool starts empty).
    const bad = recorder();
    const q = portico({ type: 'consul', url: consul.url, service: 'web', token: 'wrong' }, bad.log);
    await q.start();
    try {
      await waitFor(() => bad.lines.some((l) => /HTTP 403: ACL not found/.test(l)), 15_000, 'the 403 to be reported');
      assert.equal(q.pools.get('web')!.size, 0);
    } finally {
      await q.stop(100);
    }

    // Consul gone: the last list stays.
    const gone = recorder();
    const r = portico({ type: 'consul', url: consul.url, service: 'web', token: TOKEN, wait: '30s' }, gone.log);
    await r.start();
    try {
      assert.deepEqual(names(r), ['web-1']);
      await consul.close();
      await waitFor(() => gone.lines.some((l) => /discovery consul .* failed/.test(l)), 15_000, 'the failure to be reported');
      assert.deepEqual(names(r), ['web-1']);
      assert.deepEqual([...(await answers(r.address('web')!.port, 3))], ['200 o1']);
    } finally {
      await r.stop(100);
    }
  });
});
