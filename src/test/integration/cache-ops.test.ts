import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Portico } from '../../app/app.js';
import { EXIT_OK, EXIT_REFUSED, EXIT_USAGE, runCtl } from '../../cli/ctl.js';
import { send } from '../../test-helpers/http.js';
import { startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startPortico } from '../../test-helpers/portico.js';

const TOKEN = 'c4che-t0k';

describe('cache operations: admin API, ctl, metrics, access log', () => {
  let origin: Origin;
  let p: Portico;
  let port: number;
  let admin: string;
  let dir: string;
  let logPath: string;
  const seen = new Map<string, number>();

  /** One admin API call with the token, another one, or (null) none. */
  const api = async (method: string, path: string, token: string | null = TOKEN): Promise<{ status: number; body: any }> => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await fetch(admin + path, { method, headers });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const ctl = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await runCtl(['--admin', admin, '--token', TOKEN, ...argv], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
    return { code, out, err };
  };
  const cacheOf = async (name: string): Promise<{ entries: number; bytes: number; hits: number; misses: number }> => {
    const r = await api('GET', '/api/v1/caches');
    assert.equal(r.status, 200);
    const c = (r.body.caches as { name: string }[]).find((x) => x.name === name);
    assert.ok(c !== undefined, `cache ${name} listed`);
    return c as unknown as { entries: number; bytes: number; hits: number; misses: number };
  };
  /** Fill the cache with `paths` (a miss each, then a hit each proves they are stored). */
  const fill = async (...paths: string[]): Promise<void> => {
    for (const path of paths) {
      await send(port, path);
      const again = await send(port, path);
      assert.match(String(again.headers['cache-status']), /^portico; hit/, `${path} stored`);
    }
  };

  before(async () => {
    origin = await startOrigin('o', (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      seen.set(path, (seen.get(path) ?? 0) + 1);
      const headers: Record<string, string> = { 'content-type': 'text/plain', 'cache-control': 'max-age=600' };
      if (path.startsWith('/tagged/')) headers['surrogate-key'] = path.endsWith('/a') ? 'red blue' : 'blue';
      if (path.startsWith('/vary')) headers.vary = 'accept-language';
      if (path.startsWith('/brief')) headers['cache-control'] = 'max-age=1';
      if (path.startsWith('/other/etag')) {
        // Expired at once, with a validator: each request after the first is revalidated (304).
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=0' });
          res.end();
          return;
        }
        headers.etag = '"v1"';
        headers['cache-control'] = 'max-age=0';
      }
      res.writeHead(200, headers);
      res.end(`body of ${path} ${req.headers['accept-language'] ?? ''}`);
    });
    dir = mkdtempSync(join(tmpdir(), 'portico-cacheops-'));
    logPath = join(dir, 'access.log');
    ({ p, port } = await startPortico({
      log: { level: 'error', access: { path: logPath, format: 'json' } },
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      caches: [
        { name: 'main', memory: '4MiB', maxObjectSize: '64KiB' },
        { name: 'other', memory: '1MiB', maxObjectSize: '64KiB' },
        { name: 'third', memory: '1MiB', maxObjectSize: '64KiB' },
      ],
      listeners: [
        {
          name: 'web',
          protocol: 'http',
          listen: '127.0.0.1:0',
          routes: [
            { match: { path: '/plain' }, pool: 'web' },
            { match: { path: '/elsewhere' }, pool: 'web', cache: 'other' },
            { match: { path: '/other/' }, pool: 'web', cache: 'third' },
            { pool: 'web', cache: 'main' },
          ],
        },
      ],
      pools: [{ name: 'web', servers: [{ name: 'o', address: origin.address }] }],
    }));
    admin = `http://127.0.0.1:${p.admin!.address.port}`;
  });
  after(async () => {
    await p?.stop(0);
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /api/v1/caches lists every cache; /metrics counts a miss and a hit, with bytes and entries', async () => {
    const before = await api('GET', '/api/v1/caches');
    assert.equal(before.status, 200);
    assert.deepEqual(
      before.body.caches.map((c: { name: string }) => c.name),
      ['main', 'other', 'third'],
    );
    assert.deepEqual(before.body.caches[1], { name: 'other', entries: 0, bytes: 0, hits: 0, misses: 0, stale: 0, revalidated: 0, hitRatio: null, evictions: 0 });

    await send(port, '/elsewhere');
    const hit = await send(port, '/elsewhere');
    assert.match(String(hit.headers['cache-status']), /^portico; hit/);
    const other = await cacheOf('other');
    assert.equal(other.entries, 1);
    assert.ok(other.bytes > 0);
    assert.equal(other.hits, 1);
    assert.equal(other.misses, 1);

    const m = await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const text = await m.text();
    assert.match(text, /^# TYPE portico_cache_requests_total counter$/m);
    assert.match(text, /^portico_cache_requests_total\{cache="other",result="hit"\} 1$/m);
    assert.match(text, /^portico_cache_requests_total\{cache="other",result="miss"\} 1$/m);
    assert.match(text, /^portico_cache_requests_total\{cache="other",result="stale"\} 0$/m);
    for (const r of ['revalidated', 'bypass', 'uncacheable']) assert.match(text, new RegExp(`^portico_cache_requests_total\\{cache="other",result="${r}"\\} 0$`, 'm'));
    assert.match(text, new RegExp(`^portico_cache_bytes\\{cache="other"\\} ${other.bytes}$`, 'm'));
    assert.match(text, /^portico_cache_entries\{cache="other"\} 1$/m);
    assert.match(text, /^# TYPE portico_cache_bytes gauge$/m);
  });

  it('the JSON access log carries the cache verdict, empty on a route without a cache', async () => {
    await send(port, '/logged');
    await send(port, '/logged');
    await send(port, '/plain');
    await waitFor(() => readFileSync(logPath, 'utf8').split('\n').filter((l) => l.includes('"/logged"') || l.includes('"/plain"')).length >= 3, 15_000, 'three access-log lines');
    const lines = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { target: string; cache: string });
    const logged = lines.filter((l) => l.target === '/logged');
    assert.equal(logged.length, 2);
    assert.match(logged[0]!.cache, /^fwd=miss; stored/);
    assert.match(logged[1]!.cache, /^hit; ttl=\d+$/);
    const plain = lines.filter((l) => l.target === '/plain');
    assert.equal(plain.length, 1);
    assert.equal(plain[0]!.cache, '');
  });

  it('DELETE purges by url (every variant), prefix and tag; the server is asked again afterwards', async () => {
    await send(port, '/vary/x', { headers: { 'accept-language': 'fr' } });
    await send(port, '/vary/x', { headers: { 'accept-language': 'de' } });
    const fr = await send(port, '/vary/x', { headers: { 'accept-language': 'fr' } });
    assert.match(String(fr.headers['cache-status']), /^portico; hit/);
    await fill('/pre/1', '/pre/2', '/prelude', '/tagged/a', '/tagged/b', '/tagged/c', '/keep');
    const start = await cacheOf('main');

    const byUrl = await api('DELETE', '/api/v1/caches/main?url=' + encodeURIComponent('/vary/x'));
    assert.equal(byUrl.status, 200, JSON.stringify(byUrl.body));
    assert.deepEqual(byUrl.body, { purged: 2 });
    const asked = seen.get('/vary/x')!;
    await send(port, '/vary/x', { headers: { 'accept-language': 'fr' } });
    assert.equal(seen.get('/vary/x'), asked + 1, 'the purged variant is fetched again');

    assert.deepEqual((await api('DELETE', '/api/v1/caches/main?prefix=/pre/')).body, { purged: 2 });
    const prelude = await send(port, '/prelude');
    assert.match(String(prelude.headers['cache-status']), /^portico; hit/, 'outside the prefix: kept');

    assert.deepEqual((await api('DELETE', '/api/v1/caches/main?tag=red')).body, { purged: 1 });
    assert.deepEqual((await api('DELETE', '/api/v1/caches/main?tag=blue')).body, { purged: 2 });
    assert.deepEqual((await api('DELETE', '/api/v1/caches/main?tag=blue')).body, { purged: 0 });
    const keep = await send(port, '/keep');
    assert.match(String(keep.headers['cache-status']), /^portico; hit/);
    const end = await cacheOf('main');
    // 2 variants + 2 under the prefix + 3 tagged went; /vary/x (fr) came back.
    assert.equal(end.entries, start.entries - 7 + 1);
  });

  it('purge errors: unknown cache 404, none or several of url/prefix/tag 400, no token 401', async () => {
    const unknown = await api('DELETE', '/api/v1/caches/nope?url=/a');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'LB_ADMIN_NOT_FOUND');
    assert.match(unknown.body.error.message, /no cache named "nope"/);
    for (const q of ['', '?url=/a&tag=t', '?prefix=/a&url=/b', '?url=', '?prefix=nopath', '?tag=a&tag=b']) {
      const r = await api('DELETE', '/api/v1/caches/main' + q);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, 'LB_ADMIN_BAD_REQUEST', q);
    }
    await fill('/guarded');
    const anon = await api('DELETE', '/api/v1/caches/main?url=/guarded', null);
    assert.equal(anon.status, 401);
    const wrong = await api('DELETE', '/api/v1/caches/main?url=/guarded', 'wrong');
    assert.equal(wrong.status, 401);
    const still = await send(port, '/guarded');
    assert.match(String(still.headers['cache-status']), /^portico; hit/, 'a refused purge dropped nothing');
  });

  it('an expired object without a validator is pruned by the app\'s timer, without a request for it', async () => {
    await send(port, '/brief');
    const held = (await cacheOf('main')).entries;
    const brief = await send(port, '/brief');
    assert.match(String(brief.headers['cache-status']), /^portico; hit/);
    // max-age=1 and no ETag or Last-Modified: nothing to revalidate with, so it goes once expired.
    await waitFor(async () => (await cacheOf('main')).entries === held - 1, 20_000, 'the expired object to be pruned');
  });

  it('portico ctl cache prints the table; ctl purge drops by --url, --prefix and --tag', async () => {
    await fill('/ctl/one', '/ctl/two', '/tagged/a');
    const t = await ctl('cache');
    assert.equal(t.code, EXIT_OK, t.err);
    assert.match(t.out, /^CACHE\s+ENTRIES\s+BYTES\s+HITS\s+MISSES\s+HIT RATIO\s+STALE\s+REVALIDATED\s+EVICTIONS\n/);
    assert.match(t.out, /\nmain\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+(\.\d)?%\s+0\s+0\s+0\n/);
    assert.match(t.out, /\nother\s+1\s+\d+\s+1\s+1\s+50%\s+0\s+0\s+0\n/);

    const one = await ctl('purge', 'main', '--url', '/ctl/one');
    assert.equal(one.code, EXIT_OK, one.err);
    assert.equal(one.out, 'main: 1 object purged (/ctl/one)\n');
    const pre = await ctl('purge', 'main', '--prefix', '/ctl/');
    assert.equal(pre.out, 'main: 1 object purged (under /ctl/)\n');
    const tag = await ctl('--json', 'purge', 'main', '--tag=red');
    assert.deepEqual(JSON.parse(tag.out), { purged: 1 });

    const none = await ctl('purge', 'main');
    assert.equal(none.code, EXIT_USAGE);
    assert.match(none.err, /purge takes one of --url, --prefix or --tag \(got none\)/);
    const two = await ctl('purge', 'main', '--url', '/a', '--tag', 'x');
    assert.equal(two.code, EXIT_USAGE);
    const unknown = await ctl('purge', 'nope', '--url', '/a');
    assert.equal(unknown.code, EXIT_REFUSED);
    assert.match(unknown.err, /no cache named "nope" \(LB_ADMIN_NOT_FOUND\)/);
  });

  it("the view's hits, misses, stale, revalidated and hit ratio agree with portico_cache_requests_total, revalidations included", async () => {
    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) statuses.push(String((await send(port, '/other/etag')).headers['cache-status']));
    assert.match(statuses[0]!, /fwd=miss; stored/);
    for (const s of statuses.slice(1)) assert.match(s, /fwd=stale; fwd-status=304/, statuses.join(' | '));
    assert.match(String((await send(port, '/other/plain')).headers['cache-status']), /fwd=miss/);
    assert.match(String((await send(port, '/other/plain')).headers['cache-status']), /^portico; hit/);

    const view = (await cacheOf('third')) as unknown as Record<string, number | null>;
    const text = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const metric = (result: string): number => {
      const m = new RegExp(`^portico_cache_requests_total\\{cache="third",result="${result}"\\} (\\d+)$`, 'm').exec(text);
      assert.ok(m !== null, `portico_cache_requests_total for ${result}`);
      return Number(m[1]);
    };
    const counts = Object.fromEntries(['hit', 'miss', 'stale', 'revalidated', 'bypass', 'uncacheable'].map((r) => [r, metric(r)]));
    assert.deepEqual(counts, { hit: 1, miss: 2, stale: 0, revalidated: 3, bypass: 0, uncacheable: 0 });
    assert.equal(view['hits'], counts['hit']);
    assert.equal(view['misses'], counts['miss']! + counts['bypass']! + counts['uncacheable']!);
    assert.equal(view['stale'], counts['stale']);
    assert.equal(view['revalidated'], counts['revalidated']);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    assert.equal(view['hits']! + view['misses']! + view['stale']! + view['revalidated']!, total, 'every request the metric counts is in the view');
    assert.equal(view['hitRatio'], (counts['hit']! + counts['stale']! + counts['revalidated']!) / total);
    assert.equal(view['hitRatio'], 4 / 6);
    const t = await ctl('cache');
    assert.match(t.out, /\nthird\s+2\s+\d+\s+1\s+2\s+66\.7%\s+0\s+3\s+0\n/, t.out);
  });
});
