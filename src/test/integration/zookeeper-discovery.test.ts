import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Portico } from '../../app/app.js';
import { ZkClient } from '../../discovery/zookeeper-client.js';
import { freePort, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { skipWithoutZookeeper, startZookeeper, type ZookeeperProcess } from '../../test-helpers/zookeeper.js';
import { answers, discoveryPortico as portico, readyNames as names, recorder } from '../../test-helpers/discovery.js';

async function session(port: number): Promise<ZkClient> {
  const c = new ZkClient({ hosts: [{ host: '127.0.0.1', port }], sessionTimeoutMs: 4000, connectTimeoutMs: 10_000 });
  await c.connect();
  return c;
}

describe('zookeeper discovery (a real ZooKeeper)', { skip: skipWithoutZookeeper() }, () => {
  let zk: ZookeeperProcess;
  let origins: Origin[];
  before(async () => {
    zk = await startZookeeper();
    origins = await startOrigins(3);
  });
  after(async () => {
    for (const o of origins ?? []) await o.close();
    await zk?.stop();
  });

  it('ephemeral nodes join; a closed session takes its node out; a bad node is left out; ZooKeeper down keeps the last list', async (t) => {
    const [o1, o2, o3] = origins as [Origin, Origin, Origin];
    const adminSession = await session(zk.port);
    const sa = await session(zk.port);
    const sb = await session(zk.port);
    const sc = await session(zk.port);
    const { log, lines } = recorder();
    let p: Portico | undefined;
    try {
      await adminSession.mkdirp('/services/web');
      await adminSession.mkdirp('/services/other');
      await sa.create('/services/web/a', JSON.stringify({ host: '127.0.0.1', port: o1.port, weight: 2 }), { ephemeral: true });
      await sb.create('/services/web/b', o2.address, { ephemeral: true });
      await sb.create('/services/other/x', o3.address, { ephemeral: true }); // another znode: not ours

      p = portico({ type: 'zookeeper', hosts: [`127.0.0.1:${await freePort()}`, `127.0.0.1:${zk.port}`], path: '/services/web', sessionTimeout: '4s' }, log);
      await p.start();
      assert.deepEqual(names(p), ['a', 'b'], lines.join('\n'));
      assert.equal(p.pools.get('web')!.byName('a')!.server.weight, 2);
      const port = p.address('web')!.port;
      assert.deepEqual([...(await answers(port, 6))].sort(), ['200 o1', '200 o2']);

      // A Curator ServiceInstance registers.
      const t0 = performance.now();
      const curator = {
        name: 'web',
        id: 'c',
        address: '127.0.0.1',
        port: o3.port,
        sslPort: null,
        payload: null,
        registrationTimeUTC: Date.now(),
        serviceType: 'DYNAMIC',
        uriSpec: { parts: [{ value: 'scheme', variable: true }] },
      };
      await sc.create('/services/web/c', JSON.stringify(curator), { ephemeral: true });
      await waitFor(() => names(p!).join() === 'a,b,c', 15_000, 'c to join');
      t.diagnostic(`ephemeral node created -> server in the pool: ${(performance.now() - t0).toFixed(0)} ms`);

      // b's session closes: ZooKeeper deletes its ephemeral nodes and b leaves.
      const t1 = performance.now();
      await sb.close();
      await waitFor(() => names(p!).join() === 'a,c', 15_000, 'b to leave when its session closed');
      t.diagnostic(`session closed -> server gone: ${(performance.now() - t1).toFixed(0)} ms`);

      // A node whose data is not a server is left out, with a warning.
      await adminSession.create('/services/web/bad', '{"host": "127.0.0.1"}');
      await waitFor(() => lines.some((l) => /node \/services\/web\/bad is not a valid server/.test(l)), 15_000, 'the bad node warning');
      assert.deepEqual(names(p), ['a', 'c']);

      // The status in the admin API.
      const res = await fetch(`${p.admin!.url}/api/v1/pools/web`);
      const body = (await res.json()) as { discovery: { type: string; source: string; servers: number; updates: number } };
      assert.equal(body.discovery.type, 'zookeeper');
      assert.match(body.discovery.source, /^zookeeper:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/services\/web$/);
      assert.equal(body.discovery.servers, 2);
      assert.ok(body.discovery.updates >= 3);

      // ZooKeeper goes away: the failure is reported, the last list stays and is served.
      await zk.stop();
      await waitFor(() => lines.some((l) => /discovery zookeeper .* failed/.test(l)), 30_000, 'the failure to be reported');
      assert.deepEqual(names(p), ['a', 'c']);
      assert.deepEqual([...(await answers(port, 4))].sort(), ['200 o1', '200 o3']);
    } finally {
      for (const s of [adminSession, sa, sb, sc]) await s.close();
      await p?.stop(100);
    }
  });
});
