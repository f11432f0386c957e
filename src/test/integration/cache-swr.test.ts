/**
 * stale-while-revalidate (RFC 5861 §3): the stale object is answered at once and one background
 * request refreshes it through the route's pool as a miss goes: on the pool's pooled server
 * connections, by its balancer, retried on another server when a server cannot be reached (which
 * passive health counts), and with the pool's timeouts.
 */
import { strict as assert } from 'node:assert';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import type { Portico } from '../../app/app.js';
import { send } from '../../test-helpers/http.js';
import { freePort, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startPortico } from '../../test-helpers/portico.js';
import { Agent } from 'node:http';

interface Seen {
  path: string;
  port: number;
  inm: string | undefined;
}

async function setup(handler: (req: IncomingMessage, res: ServerResponse, seen: Seen[]) => void, servers: (o: Origin) => Promise<unknown[]>) {
  const seen: Seen[] = [];
  const origin = await startOrigin('o', (req, res) => {
    seen.push({ path: req.url ?? '', port: req.socket.remotePort ?? 0, inm: req.headers['if-none-match'] as string | undefined });
    handler(req, res, seen);
  });
  try {
    const { p, port } = await startPortico({
      log: { level: 'error' },
      admin: { listen: '127.0.0.1:0' },
      caches: [{ name: 'main', memory: '4MiB', maxObjectSize: '64KiB' }],
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web', cache: 'main' }] }],
      pools: [{ name: 'web', balance: 'roundrobin', retries: 2, health: { type: 'none' }, servers: await servers(origin) }],
    });
    return { p: p as Portico, port, origin, seen, admin: `http://127.0.0.1:${p.admin!.address.port}` };
  } catch (err) {
    await origin.close();
    throw err;
  }
}

test('stale-while-revalidate: the stale object is answered at once; the refresh goes over the pool\'s kept-alive server connection with the stored validators, and its 304 refreshes the object', async () => {
  const s = await setup(
    (req, res, seen) => {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { 'cache-control': 'max-age=600', etag: '"v1"' });
        res.end();
        return;
      }
      // Stale at once (max-age=0), usable stale for a minute while it is refreshed.
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=0, stale-while-revalidate=60', etag: '"v1"' });
      res.end(`body ${seen.length}`);
    },
    async (o) => [{ name: 'o', address: o.address }],
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const miss = await send(s.port, '/s', { agent });
    assert.equal(miss.body, 'body 1');
    assert.match(String(miss.headers['cache-status']), /fwd=miss; stored/);
    const stale = await send(s.port, '/s', { agent });
    assert.equal(stale.body, 'body 1');
    assert.match(String(stale.headers['cache-status']), /^portico; hit; ttl=-?\d+; detail=stale-while-revalidate$/);
    await waitFor(() => s.seen.length === 2, 10_000, 'the background refresh at the server');
    assert.equal(s.seen[1]!.inm, '"v1"', 'the stored validator is sent');
    assert.equal(s.seen[1]!.port, s.seen[0]!.port, 'the refresh reuses the pool\'s kept-alive connection of the miss');
    await waitFor(async () => /^portico; hit; ttl=\d+$/.test(String((await send(s.port, '/s', { agent })).headers['cache-status'])), 10_000, 'the 304 made the object fresh');
    assert.equal(s.seen.length, 2);
  } finally {
    agent.destroy();
    await s.p.stop(0);
    await s.origin.close();
  }
});

test('stale-while-revalidate: a refresh that picks a server that cannot be reached is retried on another, and passive health counts the failure', async () => {
  const dead = await freePort(); // nothing listens there
  const s = await setup(
    (req, res, seen) => {
      const n = seen.filter((x) => x.path === req.url).length;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=0, stale-while-revalidate=60', etag: `"${n}"` });
      res.end(`${req.url} #${n}`);
    },
    async (o) => [
      { name: 'dead', address: `127.0.0.1:${dead}` },
      { name: 'o', address: o.address },
    ],
  );
  try {
    // Round robin over two servers: of four keys, each stored then refreshed once, some picks fall
    // on the dead server first; every fetch, misses and refreshes alike, must end on `o`.
    const paths = ['/a', '/b', '/c', '/d'];
    for (const path of paths) assert.equal((await send(s.port, path)).body, `${path} #1`);
    for (const path of paths) {
      const r = await send(s.port, path);
      assert.match(String(r.headers['cache-status']), /detail=stale-while-revalidate/);
      assert.equal(r.body, `${path} #1`);
      await waitFor(() => s.seen.filter((x) => x.path === path).length === 2, 10_000, `${path} refreshed`);
    }
    for (const path of paths) {
      await waitFor(async () => (await send(s.port, path)).body !== `${path} #1`, 10_000, `${path} replaced by its refresh`);
    }
    const view = (await (await fetch(`${s.admin}/api/v1/pools/web/servers/dead`)).json()) as { failures: number };
    assert.ok(view.failures >= 4, `the dead server's connect failures are counted (${view.failures})`);
  } finally {
    await s.p.stop(0);
    await s.origin.close();
  }
});

test('stale-while-revalidate: the refresh carries the forwarding fields a forwarded request of the same client gets (X-Forwarded-For/-Proto/-Host, Forwarded, trustedProxies applied)', async () => {
  const FWD = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'] as const;
  const heads: { path: string; inm: string | undefined; fwd: Record<string, string | undefined> }[] = [];
  const origin = await startOrigin('o', (req, res) => {
    const fwd: Record<string, string | undefined> = {};
    for (const n of FWD) fwd[n] = req.headers[n] as string | undefined;
    heads.push({ path: req.url ?? '', inm: req.headers['if-none-match'] as string | undefined, fwd });
    if (req.url === '/pass') {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end('passed');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=0, stale-while-revalidate=60', etag: '"v"' });
    res.end(`body ${heads.length}`);
  });
  const { p, port } = await startPortico({
    log: { level: 'error' },
    caches: [{ name: 'main', memory: '4MiB', maxObjectSize: '64KiB' }],
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', trustedProxies: ['127.0.0.0/8'], routes: [{ pool: 'web', cache: 'main' }] }],
    pools: [{ name: 'web', health: { type: 'none' }, servers: [{ name: 'o', address: origin.address }] }],
  });
  try {
    const client = { host: 'www.example.com:8080', 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', forwarded: 'for=203.0.113.7' };
    assert.match(String((await send(port, '/s', { headers: client })).headers['cache-status']), /fwd=miss; stored/);
    // The request that finds the object stale comes from another client behind the same proxy.
    const other = { ...client, 'x-forwarded-for': '198.51.100.9', forwarded: 'for=198.51.100.9' };
    const stale = await send(port, '/s', { headers: other });
    assert.match(String(stale.headers['cache-status']), /detail=stale-while-revalidate/);
    await waitFor(() => heads.filter((h) => h.path === '/s').length === 2, 10_000, 'the background refresh at the server');
    const refresh = heads.filter((h) => h.path === '/s')[1]!;
    assert.equal(refresh.inm, '"v"', 'the refresh is the revalidation');
    // What a forwarded request of that client gets, on the same route.
    await send(port, '/pass', { headers: other });
    const forwarded = heads.find((h) => h.path === '/pass')!;
    assert.deepEqual(refresh.fwd, forwarded.fwd);
    assert.deepEqual(refresh.fwd, {
      'x-forwarded-for': '198.51.100.9, 127.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'www.example.com:8080',
      forwarded: 'for=198.51.100.9, for=127.0.0.1;proto=http;host="www.example.com:8080"',
    });
  } finally {
    await p.stop(0);
    await origin.close();
  }
});
