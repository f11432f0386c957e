/**
 * Several Portico nodes sharing state through one real redis-server (cluster.store:
 * redis://...): runtime changes made through one node's admin API reach the other, a
 * source-ip pin made on one node is honoured by the other, and a Redis killed mid-run costs
 * no request (the failures are counted) and is caught up with when it is back.
 */
import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { spawnPortico, startOrigins, waitFor, type Origin, type PorticoProcess } from '../../test-helpers/origins.js';
import { redisSkip, startRedis, type RedisServer } from '../../test-helpers/redis.js';
import { RedisStore } from '../../store/redis-store.js';

const skip = redisSkip();

interface Node {
  readonly proc: PorticoProcess;
  readonly http: string;
  readonly admin: string;
}

async function startNode(name: string, redisUrl: string, origins: readonly Origin[]): Promise<Node> {
  const proc = await spawnPortico({
    cluster: { node: name, store: redisUrl },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [
      {
        name: 'web',
        balance: 'roundrobin',
        health: { type: 'none' },
        persistence: { type: 'source-ip', ttl: '10m' },
        servers: origins.map((o) => ({ name: o.name, address: o.address })),
      },
    ],
  });
  const out = proc.output();
  const http = /listener web on http:\/\/(127\.0\.0\.1:\d+)/.exec(out)?.[1];
  const admin = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  assert.ok(http !== undefined && admin !== undefined, `addresses not found in: ${out}`);
  return { proc, http: `http://${http}`, admin };
}

/** One request from `from` (a loopback address); the origin's name, or why Portico did not answer 200. */
function served(node: Node, path = '/', from = '127.0.0.1'): Promise<string> {
  const url = new URL(node.http + path);
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, localAddress: from, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : `status ${res.statusCode}`));
      res.on('error', (err) => resolve(`status error ${err.message}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(`status error ${err.message}`));
    req.end();
  });
}

async function serverState(node: Node, server: string): Promise<string> {
  const res = await fetch(`${node.admin}/api/v1/pools/web/servers/${server}`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { state?: string };
  return body.state ?? '';
}

async function metric(node: Node, name: string): Promise<number> {
  const text = await (await fetch(`${node.admin}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + ' ') && !line.startsWith(name + '{')) continue;
    seen = true;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  assert.ok(seen, `${name} is not in /metrics`);
  return sum;
}

describe('cluster.store: redis', { skip: skip ?? false }, () => {
  let redis: RedisServer;
  let origins: Origin[];
  const nodes: Node[] = [];

  before(async () => {
    redis = await startRedis();
    origins = await startOrigins(2);
  });
  after(async () => {
    redis.resume();
    for (const n of nodes) await n.proc.stop();
    for (const o of origins) await o.close();
    await redis.stop();
  });

  it('a drain made through one node is in force on the other within a second; a pin made on one is honoured by the other', async (t) => {
    const a = await startNode('lb-a', redis.url, origins);
    nodes.push(a);
    const b = await startNode('lb-b', redis.url, origins);
    nodes.push(b);

    const t0 = Date.now();
    const patch = await fetch(`${a.admin}/api/v1/pools/web/servers/o1`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ state: 'drain' }),
    });
    assert.equal(patch.status, 200, await patch.text());
    await waitFor(async () => (await serverState(b, 'o1')) === 'drain', 15_000, 'the drain to reach node lb-b');
    const elapsedMs = Date.now() - t0;
    assert.ok(elapsedMs <= 1000, `the drain took ${elapsedMs} ms to reach the other node`);
    t.diagnostic(`drain on lb-a seen in lb-b's API after ${elapsedMs} ms (PATCH answered and polled every 10 ms)`);

    // The client (127.0.0.1) is pinned on node a to o2, the only server taking new clients.
    assert.equal(await served(a), 'o2');
    // o1 back to ready everywhere: node b would now alternate o1/o2 for a client it did not know.
    const ready = await fetch(`${a.admin}/api/v1/pools/web/servers/o1`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ state: 'ready' }),
    });
    assert.equal(ready.status, 200);
    await waitFor(async () => (await serverState(b, 'o1')) === 'ready', 15_000, 'ready to reach node lb-b');
    const onB: string[] = [];
    for (let i = 0; i < 6; i++) onB.push(await served(b));
    assert.deepEqual(onB, Array(6).fill('o2'), 'node b does not honour the pin made on node a');

    // A node started later takes the changes in force from the store.
    const weighO2 = await fetch(`${a.admin}/api/v1/pools/web/servers/o2`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ weight: 7 }),
    });
    assert.equal(weighO2.status, 200);
    const c = await startNode('lb-c', redis.url, origins);
    nodes.push(c);
    const res = (await (await fetch(`${c.admin}/api/v1/pools/web/servers/o2`)).json()) as { weight?: unknown };
    assert.equal(res.weight, 7, 'the node started later does not have the weight set through another node');
    await c.proc.stop();
    nodes.pop();
  });

  it('Redis killed mid-run: every request is served, the failures are counted, and the state is caught up when Redis is back', async (t) => {
    const n = nodes[0]!;
    assert.equal(await metric(n, 'portico_store_up'), 1);
    const errorsBefore = await metric(n, 'portico_store_errors_total');
    const results: string[] = [];
    let killedAt = -1;
    const deadline = Date.now() + 20_000;
    const timings: number[] = [];
    // 100 requests of the pinned client, then Redis is killed, then 200 requests of 200 clients
    // this node has never seen (127.0.1.0-199): each asks the store, which fails at once.
    for (let i = 0; i < 300 && Date.now() < deadline; i++) {
      if (i === 100) {
        await redis.kill();
        killedAt = i;
      }
      const t0 = performance.now();
      results.push(await served(n, `/r${i}`, i < 100 ? '127.0.0.1' : `127.0.1.${i - 100}`));
      timings.push(performance.now() - t0);
    }
    assert.equal(killedAt, 100);
    assert.equal(results.length, 300);
    const failed = results.filter((r) => r.startsWith('status'));
    assert.deepEqual(failed, [], `${failed.length} requests failed while Redis was down`);
    assert.ok(results.slice(0, 100).every((r) => r === 'o2'), 'the pinned client moved');
    // New clients are balanced (not pinned), over both servers.
    assert.deepEqual([...new Set(results.slice(100))].sort(), ['o1', 'o2']);
    // The pinned client stays pinned from the node's local table while the store is gone.
    assert.equal(await served(n), 'o2');
    assert.equal(await metric(n, 'portico_store_up'), 0);
    const status = (await (await fetch(`${n.admin}/api/v1/status`)).json()) as { store?: { up?: unknown; url?: unknown } };
    assert.equal(status.store?.up, false, 'the admin status does not show the store down');
    assert.equal(status.store?.url, redis.url);

    const errorsDown = await metric(n, 'portico_store_errors_total');
    // At least the 200 lookups of the new clients failed and were counted (their writes too).
    assert.ok(errorsDown - errorsBefore >= 200, `store errors counted: ${errorsBefore} -> ${errorsDown}`);
    const p = (xs: number[], q: number): string => ([...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))] ?? 0).toFixed(1);
    t.diagnostic(`request ms with Redis up (p50/p99/max): ${p(timings.slice(0, 100), 0.5)}/${p(timings.slice(0, 100), 0.99)}/${p(timings.slice(0, 100), 1)}; ` +
      `with Redis killed, new clients: ${p(timings.slice(100), 0.5)}/${p(timings.slice(100), 0.99)}/${p(timings.slice(100), 1)}; store errors counted: ${errorsDown - errorsBefore}`);

    // A change made through the API while the store is down is applied here and shared once it is back.
    const patch = await fetch(`${n.admin}/api/v1/pools/web/servers/o1`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ weight: 3 }),
    });
    assert.equal(patch.status, 200);

    await redis.restart();
    const back = Date.now();
    await waitFor(async () => (await metric(n, 'portico_store_up')) === 1, 10_000, 'the node to reconnect');
    t.diagnostic(`reconnected ${Date.now() - back} ms after redis-server was back`);
    const check = new RedisStore({ url: redis.url });
    await check.connect();
    try {
      // Resynchronised: the runtime changes are written back (within the 1 s spread), and the pin
      // of the client is written again on its next request.
      await waitFor(async () => ((await check.get('runtime-changes')) ?? '').includes('"weight":3'), 15_000, 'the runtime changes to be written back');
      assert.equal(await served(n), 'o2');
      await waitFor(async () => (await check.get('stick:web:source-ip:127.0.0.1')) !== undefined, 15_000, 'the pin to be written back');
      const other = nodes[1]!;
      await waitFor(async () => {
        const r = (await (await fetch(`${other.admin}/api/v1/pools/web/servers/o1`)).json()) as { weight?: unknown };
        return r.weight === 3;
      }, 15_000, 'the other node to take the change made during the outage');
    } finally {
      await check.close();
    }
  });

  it('Redis frozen (answers nothing): a new client waits at most the lookup timeout, and is served', async (t) => {
    const n = nodes[0]!;
    assert.equal(await served(n, '/', '127.0.2.1'), await served(n, '/', '127.0.2.1'), 'a pin works with Redis up');
    redis.pause();
    try {
      const times: number[] = [];
      const results: string[] = [];
      for (let i = 2; i < 22; i++) {
        const t0 = performance.now();
        results.push(await served(n, '/', `127.0.2.${i}`));
        times.push(performance.now() - t0);
      }
      assert.deepEqual(results.filter((r) => r.startsWith('status')), [], 'a request failed while Redis was frozen');
      const max = Math.max(...times);
      // The stick table asks the store for 100 ms at most (a frozen Redis would hold it for ever); the rest is the request itself.
      assert.ok(max < 1000, `a request took ${max.toFixed(0)} ms with Redis frozen`);
      t.diagnostic(`Redis frozen: 20 new clients served, slowest ${max.toFixed(0)} ms, median ${[...times].sort((a, b) => a - b)[10]!.toFixed(0)} ms`);
    } finally {
      redis.resume();
    }
  });
});
