/**
 * The shared tier of the cache (`shared: true`) with a real redis-server: a second Portico answers
 * what the first fetched (the origin sees one request), variants and tags included; a purge
 * through one node's admin API removes the object from Redis and from every node's memory; a
 * Redis killed mid-run costs no request, and the failures are counted.
 */
import { strict as assert } from 'node:assert';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Portico } from '../../app/app.js';
import type { CacheSet } from '../../cache/cache.js';
import { validateConfig } from '../../config/load.js';
import { send } from '../../test-helpers/http.js';
import { startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startPortico } from '../../test-helpers/portico.js';
import { redisSkip, startRedis, type RedisServer } from '../../test-helpers/redis.js';

const skip = redisSkip();
const TOKEN = 'sh4red-t0k';

interface Node {
  readonly p: Portico;
  readonly port: number;
  readonly admin: string;
}

function config(redisUrl: string, origin: Origin, node: string): unknown {
  return {
    log: { level: 'error' },
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    cluster: { node, store: redisUrl },
    caches: [{ name: 'main', memory: '4MiB', maxObjectSize: '256KiB', shared: true, sharedMaxObjectSize: '64KiB' }],
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web', cache: 'main' }] }],
    pools: [{ name: 'web', health: { type: 'none' }, servers: [{ name: 'o', address: origin.address }] }],
  };
}

async function startNode(redisUrl: string, origin: Origin, name: string): Promise<Node> {
  const { p, port } = await startPortico(config(redisUrl, origin, name));
  return { p, port, admin: `http://127.0.0.1:${p.admin!.address.port}` };
}

/** The node's cache (the app holds it; Portico's interface does not name it). */
function cacheOf(n: Node) {
  return (n.p as unknown as { caches: CacheSet }).caches.get('main')!;
}

function tier(n: Node) {
  const s = cacheOf(n).shared;
  assert.ok(s !== undefined, 'the cache has a shared tier');
  return s;
}

async function purge(n: Node, query: string): Promise<{ status: number; body: { purged: number; shared?: number; sharedError?: string } }> {
  const res = await fetch(`${n.admin}/api/v1/caches/main?${query}`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as { purged: number; shared?: number } };
}

async function metric(n: Node, name: string): Promise<number> {
  const text = await (await fetch(`${n.admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
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

describe('cache shared tier (cluster.store: redis)', { skip: skip ?? false }, () => {
  let redis: RedisServer;
  let origin: Origin;
  let a: Node;
  let b: Node;
  const seen = new Map<string, number>();
  const count = (path: string): number => seen.get(path) ?? 0;

  /** Fetch on `n` until its write to the shared tier is done (the write is not waited for by the request). */
  const store = async (n: Node, path: string, headers: Record<string, string> = {}): Promise<void> => {
    const writes = tier(n).counters.writes;
    const r = await send(n.port, path, { headers });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['cache-status']), /stored/, `${path} stored on the first node`);
    await waitFor(() => tier(n).counters.writes > writes, 10_000, `${path} written to Redis`);
  };

  before(async () => {
    redis = await startRedis();
    origin = await startOrigin('o', (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0]!;
      seen.set(path, count(path) + 1);
      const headers: Record<string, string> = { 'content-type': 'text/plain', 'cache-control': 'max-age=600', etag: `"${path}"` };
      if (path.startsWith('/tagged/')) headers['surrogate-key'] = 'red ' + path.slice('/tagged/'.length);
      if (path.startsWith('/vary')) headers.vary = 'Accept-Language';
      if (path === '/big') {
        res.writeHead(200, headers);
        res.end('x'.repeat(100 * 1024));
        return;
      }
      res.writeHead(200, headers);
      res.end(`body of ${path} ${req.headers['accept-language'] ?? ''}`);
    });
    a = await startNode(redis.url, origin, 'a');
    b = await startNode(redis.url, origin, 'b');
  });
  after(async () => {
    await a?.p.stop(0);
    await b?.p.stop(0);
    await origin?.close();
    await redis?.stop();
  });

  it('shared: true needs a redis:// cluster.store', () => {
    assert.throws(
      () => validateConfig({ caches: [{ name: 'main', shared: true }], listeners: [], pools: [] }),
      /caches\.0\.shared: the shared tier is kept in cluster\.store, which must then be a redis:\/\/ or rediss:\/\/ URL \(it is memory\)/,
    );
  });

  it('a second node answers what the first fetched: the origin sees one request, Age and the body are the stored ones', async () => {
    await store(a, '/one');
    const hit = await send(b.port, '/one');
    assert.equal(hit.status, 200);
    assert.equal(hit.body, 'body of /one ');
    assert.match(String(hit.headers['cache-status']), /^portico; hit; ttl=\d+; detail=shared$/);
    assert.equal(hit.headers['etag'], '"/one"');
    assert.ok(Number(hit.headers['age']) >= 0);
    assert.equal(count('/one'), 1);
    // Now in b's memory: the next hit does not ask Redis.
    const lookups = tier(b).counters.hits + tier(b).counters.misses;
    const again = await send(b.port, '/one');
    assert.match(String(again.headers['cache-status']), /^portico; hit; ttl=\d+$/);
    assert.equal(tier(b).counters.hits + tier(b).counters.misses, lookups);
    assert.equal(count('/one'), 1);
  });

  it('concurrent memory misses for one key ask Redis once and are all answered from what it found', async () => {
    await store(a, '/many');
    const t = tier(b).counters;
    const lookups = t.hits + t.misses;
    const replies = await Promise.all(Array.from({ length: 20 }, () => send(b.port, '/many')));
    for (const r of replies) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'body of /many ');
      assert.match(String(r.headers['cache-status']), /^portico; hit/);
    }
    assert.equal(t.hits + t.misses, lookups + 1, 'one lookup in Redis');
    assert.equal(count('/many'), 1);
  });

  it('a HEAD that misses memory is answered from the GET stored in the shared tier: no body, the stored length, the origin asked once', async () => {
    await store(a, '/head');
    const t = tier(b).counters;
    const found = t.hits;
    const h = await send(b.port, '/head', { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.body, '');
    assert.equal(h.headers['content-length'], String('body of /head '.length));
    assert.equal(h.headers['etag'], '"/head"');
    assert.match(String(h.headers['cache-status']), /^portico; hit; ttl=\d+; detail=shared$/);
    assert.ok(Number(h.headers['age']) >= 0);
    assert.equal(t.hits, found + 1, 'found in Redis');
    assert.equal(count('/head'), 1, 'the origin saw only the first GET');
    // Now in b's memory: a GET is a memory hit.
    const get = await send(b.port, '/head');
    assert.equal(get.body, 'body of /head ');
    assert.match(String(get.headers['cache-status']), /^portico; hit; ttl=\d+$/);
    assert.equal(count('/head'), 1);

    // Not in Redis either: the HEAD goes to the origin (and nothing is stored from it).
    const misses = t.misses;
    const miss = await send(b.port, '/head-nowhere', { method: 'HEAD' });
    assert.equal(miss.status, 200);
    assert.match(String(miss.headers['cache-status']), /^portico; fwd=miss/);
    assert.equal(t.misses, misses + 1, 'the shared tier was asked');
    assert.equal(count('/head-nowhere'), 1);
  });

  it("GET /api/v1/caches shows the shared tier's hits, misses, writes and errors, as the metrics count them", async () => {
    await store(a, '/viewed');
    await send(b.port, '/viewed');
    await send(b.port, '/viewed-nowhere');
    for (const n of [a, b]) {
      const res = await fetch(`${n.admin}/api/v1/caches`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 200);
      const view = ((await res.json()) as { caches: { name: string; shared?: Record<string, number> }[] }).caches.find((c) => c.name === 'main')!;
      const c = tier(n).counters;
      assert.deepEqual(view.shared, { hits: c.hits, misses: c.misses, writes: c.writes, errors: c.errors });
      const text = await (await fetch(`${n.admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      for (const [result, v] of [['hit', view.shared!.hits], ['miss', view.shared!.misses], ['write', view.shared!.writes]] as const) {
        assert.match(text, new RegExp(`^portico_cache_shared_requests_total\\{cache="main",result="${result}"\\} ${v}$`, 'm'), `${result} in /metrics`);
      }
      assert.equal(await metric(n, 'portico_cache_shared_errors_total'), view.shared!.errors);
    }
    const vb = tier(b).counters;
    assert.ok(vb.hits >= 1 && vb.misses >= 1, 'b found one object in Redis and missed another');
    assert.ok(tier(a).counters.writes >= 1, 'a wrote');
  });

  it('variants (Vary) are found by the request fields on the other node; a body over sharedMaxObjectSize stays in memory', async () => {
    await store(a, '/vary', { 'accept-language': 'en' });
    await store(a, '/vary', { 'accept-language': 'fr' });
    assert.equal((await send(b.port, '/vary', { headers: { 'accept-language': 'FR' } })).body, 'body of /vary fr');
    assert.equal((await send(b.port, '/vary', { headers: { 'accept-language': 'en' } })).body, 'body of /vary en');
    assert.equal(count('/vary'), 2);
    const de = await send(b.port, '/vary', { headers: { 'accept-language': 'de' } });
    assert.match(String(de.headers['cache-status']), /fwd=miss/);
    assert.equal(count('/vary'), 3);

    const first = await send(a.port, '/big');
    assert.match(String(first.headers['cache-status']), /stored/);
    assert.match(String((await send(a.port, '/big')).headers['cache-status']), /^portico; hit/);
    const other = await send(b.port, '/big');
    assert.equal(other.body.length, 100 * 1024);
    assert.match(String(other.headers['cache-status']), /fwd=miss/, 'an object over sharedMaxObjectSize is not in Redis');
  });

  it('a node that starts finds the objects in Redis (warm)', async () => {
    await store(a, '/warm');
    const c = await startNode(redis.url, origin, 'c');
    try {
      const r = await send(c.port, '/warm');
      assert.match(String(r.headers['cache-status']), /detail=shared/);
      assert.equal(count('/warm'), 1);
    } finally {
      await c.p.stop(0);
    }
  });

  it('a purge by URL, prefix or tag through one node removes the objects from Redis and from every node', async () => {
    for (const path of ['/p/url', '/p/dir/1', '/p/dir/2', '/tagged/x', '/tagged/y']) {
      await store(a, path);
      assert.match(String((await send(b.port, path)).headers['cache-status']), /detail=shared/, `${path} on b`);
    }
    
    const byUrl = await purge(a, 'url=/p/url');
    assert.equal(byUrl.status, 200);
    assert.deepEqual(byUrl.body, { purged: 1, shared: 1 });
    const byPrefix = await purge(a, 'prefix=/p/dir/');
    assert.deepEqual(byPrefix.body, { purged: 2, shared: 2 });
    const byTag = await purge(b, 'tag=red');
    assert.deepEqual(byTag.body, { purged: 2, shared: 2 });

    // b learns of a's purges through Redis (pub/sub), a of b's.
    for (const path of ['/p/url', '/p/dir/1', '/p/dir/2', '/tagged/x', '/tagged/y']) {
      await waitFor(() => cacheOf(b).store.lookup('127.0.0.1:' + b.port + path, {}) === undefined, 10_000, `${path} purged on b`);
      await waitFor(() => cacheOf(a).store.lookup('127.0.0.1:' + a.port + path, {}) === undefined, 10_000, `${path} purged on a`);
    }
    const before = count('/p/dir/1');
    const again = await send(b.port, '/p/dir/1');
    assert.match(String(again.headers['cache-status']), /fwd=miss; stored/);
    assert.equal(count('/p/dir/1'), before + 1);
    assert.match(String((await send(b.port, '/tagged/x')).headers['cache-status']), /fwd=miss; stored/);
  });

  it('Redis killed mid-run: no request fails, the failures are counted; back, it is used again', async () => {
    await store(a, '/before-kill');
    const errors = await metric(a, 'portico_cache_shared_errors_total');
    await redis.kill();
    try {
      for (let i = 0; i < 20; i++) {
        const fresh = await send(a.port, `/during-${i}`);
        assert.equal(fresh.status, 200, 'a miss with Redis down');
        assert.equal(fresh.body, `body of /during-${i} `);
        const hit = await send(a.port, '/before-kill');
        assert.equal(hit.status, 200);
        assert.match(String(hit.headers['cache-status']), /^portico; hit/, 'the memory tier answers');
        assert.equal((await send(b.port, `/during-${i}`)).status, 200, 'the other node too');
      }
      assert.ok((await metric(a, 'portico_cache_shared_errors_total')) > errors, 'failures of the shared tier are counted');
      const p = await purge(a, 'url=/before-kill');
      assert.equal(p.status, 200);
      assert.equal(p.body.purged, 1);
      assert.match(String(p.body.sharedError), /cluster\.store/);
    } finally {
      await redis.restart();
    }
    // Back: a new object reaches the other node again.
    await waitFor(
      async () => {
        const path = `/after-${Math.random().toString(36).slice(2)}`;
        const writes = tier(a).counters.writes;
        await send(a.port, path);
        await waitFor(() => tier(a).counters.writes > writes || tier(a).counters.errors > 0, 2000).catch(() => undefined);
        return tier(a).counters.writes > writes && /detail=shared/.test(String((await send(b.port, path)).headers['cache-status']));
      },
      20_000,
      'the shared tier used again after Redis is back',
    );
  });
});
