import { test } from 'node:test';
import assert from 'node:assert/strict';
import { send } from '../../test-helpers/http.js';
import { startRoutedOrigin, type Origin, type PathHandler } from '../../test-helpers/origins.js';
import { startInFront, webConfig } from '../../test-helpers/portico.js';
import type { Portico } from '../../app/app.js';

/** The origin's behaviour by path; every request is counted per path. */
type Route = PathHandler;

async function farm(routes: Record<string, Route>, cache: Record<string, unknown> = {}): Promise<{ p: Portico; port: number; origin: Origin; hits: Map<string, number>; close(): Promise<void> }> {
  const { origin, hits } = await startRoutedOrigin(routes);
  const config = webConfig(
    [{ name: 'web', servers: [{ name: 'o', address: `127.0.0.1:${origin.port}` }] }],
    { routes: [{ pool: 'web', cache: 'main' }] },
    { caches: [{ name: 'main', memory: '4MiB', maxObjectSize: '64KiB', ...cache }] },
  );
  return { ...(await startInFront(origin, config)), origin, hits };
}

const fixed = (headers: Record<string, string>, body: string, status = 200): Route => (_req, res) => {
  res.writeHead(status, { 'content-type': 'text/plain', ...headers });
  res.end(body);
};

test('a fresh response is answered from the cache with Age and Cache-Status; the server sees one request (RFC 9111 §4, RFC 9211)', async () => {
  const f = await farm({ '/a': fixed({ 'cache-control': 'max-age=60', etag: '"v1"' }, 'hello') });
  try {
    const first = await send(f.port, '/a');
    assert.equal(first.status, 200);
    assert.equal(first.body, 'hello');
    assert.match(String(first.headers['cache-status']), /^portico; fwd=miss; stored$/);
    const second = await send(f.port, '/a');
    assert.equal(second.body, 'hello');
    assert.match(String(second.headers['cache-status']), /^portico; hit; ttl=\d+$/);
    assert.ok(second.headers['age'] !== undefined);
    assert.equal(second.headers['etag'], '"v1"');
    assert.equal(f.hits.get('/a'), 1);
  } finally {
    await f.close();
  }
});

test('never stored: no-store, private, Set-Cookie, Vary: *, and Authorization without public (SPEC §11)', async () => {
  const f = await farm({
    '/ns': fixed({ 'cache-control': 'no-store' }, 'x'),
    '/pr': fixed({ 'cache-control': 'private, max-age=60' }, 'x'),
    '/ck': fixed({ 'cache-control': 'public, max-age=60', 'set-cookie': 'a=1' }, 'x'),
    '/vs': fixed({ 'cache-control': 'max-age=60', vary: '*' }, 'x'),
    '/au': fixed({ 'cache-control': 'max-age=60' }, 'x'),
    '/aupub': fixed({ 'cache-control': 'public, max-age=60' }, 'x'),
  });
  try {
    for (const path of ['/ns', '/pr', '/ck', '/vs']) {
      await send(f.port, path);
      const r = await send(f.port, path);
      assert.equal(f.hits.get(path), 2, path);
      assert.match(String(r.headers['cache-status']), /detail=/, path);
    }
    await send(f.port, '/au', { headers: { authorization: 'Bearer a' } });
    await send(f.port, '/au', { headers: { authorization: 'Bearer b' } });
    assert.equal(f.hits.get('/au'), 2);
    await send(f.port, '/aupub', { headers: { authorization: 'Bearer a' } });
    await send(f.port, '/aupub', { headers: { authorization: 'Bearer b' } });
    assert.equal(f.hits.get('/aupub'), 1);
  } finally {
    await f.close();
  }
});

test('Vary: variants by the normalised request field (RFC 9111 §4.1)', async () => {
  const f = await farm({
    '/v': (req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
      res.end(String(req.headers['accept-language'] ?? 'none'));
    },
  });
  try {
    assert.equal((await send(f.port, '/v', { headers: { 'accept-language': 'en' } })).body, 'en');
    assert.equal((await send(f.port, '/v', { headers: { 'accept-language': 'fr' } })).body, 'fr');
    assert.equal((await send(f.port, '/v', { headers: { 'accept-language': 'EN' } })).body, 'en');
    assert.equal((await send(f.port, '/v', { headers: { 'accept-language': 'fr' } })).body, 'fr');
    assert.equal(f.hits.get('/v'), 2);
  } finally {
    await f.close();
  }
});

test('20 concurrent misses for one key reach the server once, and every one gets the whole body', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const f = await farm({
    '/slow': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.write('part1-');
      void gate.then(() => res.end('part2'));
    },
  });
  try {
    const all = Array.from({ length: 20 }, () => send(f.port, '/slow'));
    // Every request is in Portico (one at the server) before the response may end.
    const { waitFor } = await import('../../test-helpers/origins.js');
    await waitFor(() => f.hits.get('/slow') === 1, 10_000, 'the first request at the server');
    await waitFor(() => {
      const c = f.p as unknown as { caches: { get(n: string): { fills: { get(k: string): { watching: number } | undefined } } | undefined } };
      const fill = c.caches.get('main')?.fills.get('127.0.0.1/slow');
      return fill !== undefined && fill.watching >= 19;
    }, 10_000, '19 requests joined');
    release();
    const replies = await Promise.all(all);
    for (const r of replies) assert.equal(r.body, 'part1-part2');
    assert.equal(f.hits.get('/slow'), 1);
    assert.equal(replies.filter((r) => /collapsed/.test(String(r.headers['cache-status']))).length, 19);
  } finally {
    release();
    await f.close();
  }
});

test('revalidation: an expired object is asked with If-None-Match, a 304 refreshes it; a client conditional is answered 304 (RFC 9111 §4.3)', async () => {
  let inm: string | undefined;
  const f = await farm({
    '/r': (req, res) => {
      inm = req.headers['if-none-match'];
      if (inm === '"v1"') {
        res.writeHead(304, { 'cache-control': 'max-age=60', etag: '"v1"' });
        res.end();
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"v1"', 'content-type': 'text/plain' });
      res.end('body-v1');
    },
  });
  try {
    assert.equal((await send(f.port, '/r')).body, 'body-v1');
    const again = await send(f.port, '/r');
    assert.equal(inm, '"v1"');
    assert.equal(again.body, 'body-v1');
    assert.match(String(again.headers['cache-status']), /fwd=stale; fwd-status=304/);
    const cond = await send(f.port, '/r', { headers: { 'if-none-match': '"v1"' } });
    assert.equal(cond.status, 304);
    assert.equal(f.hits.get('/r'), 2);
  } finally {
    await f.close();
  }
});

test('stale-if-error: a failing server is answered with the stale object only with the permission (RFC 5861 §4)', async () => {
  let fail = false;
  const f = await farm({
    '/e': (_req, res) => {
      if (fail) {
        res.writeHead(503);
        res.end();
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=60', etag: '"e"' });
      res.end('good');
    },
    '/n': (_req, res) => {
      if (fail) {
        res.writeHead(503);
        res.end();
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"n"' });
      res.end('good');
    },
  });
  try {
    await send(f.port, '/e');
    await send(f.port, '/n');
    fail = true;
    const e = await send(f.port, '/e');
    assert.equal(e.status, 200);
    assert.equal(e.body, 'good');
    assert.match(String(e.headers['cache-status']), /stale-if-error/);
    assert.equal((await send(f.port, '/n')).status, 503);
  } finally {
    await f.close();
  }
});

test('HEAD from a stored GET; one byte range answered 206; an unsatisfiable one 416', async () => {
  const f = await farm({ '/b': fixed({ 'cache-control': 'max-age=60' }, '0123456789') });
  try {
    await send(f.port, '/b');
    const head = await send(f.port, '/b', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '10');
    assert.equal(head.body, '');
    const r = await send(f.port, '/b', { headers: { range: 'bytes=2-4' } });
    assert.equal(r.status, 206);
    assert.equal(r.body, '234');
    assert.equal(r.headers['content-range'], 'bytes 2-4/10');
    const tail = await send(f.port, '/b', { headers: { range: 'bytes=-3' } });
    assert.equal(tail.body, '789');
    assert.equal((await send(f.port, '/b', { headers: { range: 'bytes=20-' } })).status, 416);
    assert.equal(f.hits.get('/b'), 1);
  } finally {
    await f.close();
  }
});

test('a successful POST invalidates the stored response of its URL (RFC 9111 §4.4)', async () => {
  let version = 1;
  const f = await farm({
    '/doc': (req, res) => {
      if (req.method === 'POST') {
        version++;
        req.resume();
        req.on('end', () => {
          res.writeHead(204);
          res.end();
        });
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('v' + version);
    },
  });
  try {
    assert.equal((await send(f.port, '/doc')).body, 'v1');
    assert.equal((await send(f.port, '/doc')).body, 'v1');
    assert.equal((await send(f.port, '/doc', { method: 'POST' })).status, 204);
    assert.equal((await send(f.port, '/doc')).body, 'v2');
  } finally {
    await f.close();
  }
});

test('a chunked body that grows past maxObjectSize streams through whole and is not stored', async () => {
  const chunk = 'x'.repeat(16 * 1024);
  const f = await farm({
    '/big': (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      for (let i = 0; i < 8; i++) res.write(chunk);
      res.end();
    },
  });
  try {
    const a = await send(f.port, '/big');
    assert.equal(a.body.length, 8 * chunk.length);
    const b = await send(f.port, '/big');
    assert.equal(b.body.length, 8 * chunk.length);
    assert.equal(f.hits.get('/big'), 2);
  } finally {
    await f.close();
  }
});
