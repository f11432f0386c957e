/**
 * A plain cache hit (a fresh stored 200, whole, to a GET without conditional or range fields)
 * goes out as one buffer kept on the object (head, blank line, body) while its head is the same:
 * these tests hold the answer to what RFC 9111 asks of every hit whatever path it takes (Age and
 * Date current, the route's header edits, a refreshed head after a 304, conditional and range
 * requests, HEAD), on pipelined HTTP/1.1 requests, HTTP/1.0 and h2 alike, and that the object's
 * body is then held once.
 */
import { strict as assert } from 'node:assert';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import type { Portico } from '../../app/app.js';
import type { CacheSet } from '../../cache/cache.js';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import { send } from '../../test-helpers/http.js';
import { startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startInFront, startPortico } from '../../test-helpers/portico.js';

const BODY = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(455) + 'end'; // 16,383 bytes

interface Farm {
  p: Portico;
  port: number;
  second: number;
  origin: Origin;
  fetched: () => number;
  close(): Promise<void>;
}

/** An origin whose /v answers `version` (304 to its ETag once `notModified` is set), behind two listeners sharing a cache. */
async function farm(): Promise<Farm & { state: { version: number; revalidations: number } }> {
  const state = { version: 1, revalidations: 0 };
  let fetched = 0;
  const origin = await startOrigin('o', (req, res) => {
    fetched++;
    if (req.url === '/v' && req.headers['if-none-match'] === '"v"') {
      state.revalidations++;
      res.writeHead(304, { etag: '"v"', 'cache-control': 'max-age=600', 'x-version': String(state.version) });
      res.end();
      return;
    }
    const maxAge = req.url === '/v' ? 0 : 600;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': `max-age=${maxAge}`, etag: '"v"', 'accept-ranges': 'bytes', 'x-version': String(state.version) });
    res.end(BODY);
  });
  const f = await startInFront(origin, {
    log: { level: 'error' },
    admin: { enabled: false },
    caches: [{ name: 'main', memory: '4MiB', maxObjectSize: '64KiB' }],
    listeners: [
      { name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web', cache: 'main', headers: { response: { set: { 'x-route': 'one' } } } }] },
      { name: 'two', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web', cache: 'main', headers: { response: { set: { 'x-route': 'two' }, remove: ['x-version'] } } }] },
    ],
    pools: [{ name: 'web', health: { type: 'none' }, servers: [{ name: 'o', address: origin.address }] }],
  });
  return { ...f, second: f.p.address('two')!.port, origin, state, fetched: () => fetched };
}

/** Write `raw` on one connection and read until `done` says so (or the server closes); the bytes read. */
function rawExchange(port: number, raw: string, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      text += d;
      if (done(text)) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(text));
    s.write(raw);
  });
}

/** Split a byte stream of HTTP/1.x responses, each with Content-Length. */
function responses(text: string): { status: string; headers: [string, string][]; body: string }[] {
  const out: { status: string; headers: [string, string][]; body: string }[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = text.slice(at, end).split('\r\n');
    const headers = lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
    const cl = Number(headers.find(([k]) => k === 'content-length')?.[1] ?? '0');
    out.push({ status: lines[0]!, headers, body: text.slice(end + 4, end + 4 + cl) });
    at = end + 4 + cl;
  }
  return out;
}

const field = (r: { headers: [string, string][] }, name: string): string[] => r.headers.filter(([k]) => k === name).map(([, v]) => v);

function cacheOf(p: Portico) {
  return (p as unknown as { caches: CacheSet }).caches.get('main')!;
}

test('plain hits: pipelined on one connection, each whole and exact, one Accept-Ranges, the standard reason phrase; the body is then held once, in the buffer sent', async () => {
  const f = await farm();
  try {
    assert.match(String((await send(f.port, '/a', { headers: { host: 'x' } })).headers['cache-status']), /fwd=miss; stored/);
    const req = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
    const text = await rawExchange(f.port, req.repeat(5), (t) => responses(t).filter((r) => r.body.length === BODY.length).length === 5);
    const rs = responses(text);
    assert.equal(rs.length, 5);
    for (const r of rs) {
      assert.equal(r.status, 'HTTP/1.1 200 OK');
      assert.equal(r.body, BODY);
      assert.deepEqual(field(r, 'content-length'), [String(BODY.length)]);
      assert.deepEqual(field(r, 'accept-ranges'), ['bytes']);
      assert.deepEqual(field(r, 'x-route'), ['one']);
      assert.equal(field(r, 'age').length, 1);
      assert.match(field(r, 'cache-status')[0]!, /^portico; hit; ttl=\d+$/);
      assert.equal(field(r, 'date').length, 1);
      assert.equal(field(r, 'connection').length, 0);
    }
    assert.equal(f.fetched(), 1);
    const o = cacheOf(f.p).store.lookup('x/a', {})!;
    assert.ok(o.wire !== undefined, 'the hit was sent as one buffer');
    assert.equal(o.body.length, 1);
    assert.equal(o.body[0]!.buffer, o.wire.buf.buffer, 'the body is a view of the buffer sent');
    assert.equal(o.body[0]!.toString(), BODY);
  } finally {
    await f.close();
  }
});

test('plain hits: Age and Date follow the clock; two routes on one object keep their own header edits, hit after hit', async () => {
  const f = await farm();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await send(f.port, '/b', { agent, headers: { host: 'x' } });
    const first = await send(f.port, '/b', { agent, headers: { host: 'x' } });
    const age0 = Number(first.headers['age']);
    const date0 = Date.parse(String(first.headers['date']));
    let later = first;
    await waitFor(
      async () => {
        later = await send(f.port, '/b', { agent, headers: { host: 'x' } });
        return Number(later.headers['age']) > age0;
      },
      20_000,
      'Age to grow',
    );
    assert.ok(Date.parse(String(later.headers['date'])) > date0, 'Date moved on with Age');
    assert.equal(later.body, BODY);
    const ttl0 = Number(/ttl=(\d+)/.exec(String(first.headers['cache-status']))![1]);
    const ttl1 = Number(/ttl=(\d+)/.exec(String(later.headers['cache-status']))![1]);
    assert.ok(ttl1 < ttl0, 'ttl falls as Age grows');

    // The same object (same host and target) through two routes, alternately.
    for (let i = 0; i < 3; i++) {
      const one = await send(f.port, '/b', { headers: { host: 'x' } });
      const two = await send(f.second, '/b', { headers: { host: 'x' } });
      assert.equal(one.headers['x-route'], 'one');
      assert.equal(one.headers['x-version'], '1');
      assert.equal(two.headers['x-route'], 'two');
      assert.equal(two.headers['x-version'], undefined);
      assert.equal(one.body, BODY);
      assert.equal(two.body, BODY);
      assert.match(String(two.headers['cache-status']), /^portico; hit/);
    }
    assert.equal(f.fetched(), 1);
  } finally {
    agent.destroy();
    await f.close();
  }
});

test('plain hits after a revalidation carry the refreshed head; conditional, range, HEAD and HTTP/1.0 requests are answered right after wire hits', async () => {
  const f = await farm();
  try {
    // /v is stale at once: the second request revalidates (304 with max-age=600), the next ones are plain hits.
    await send(f.port, '/v', { headers: { host: 'x' } });
    f.state.version = 2;
    const reval = await send(f.port, '/v', { headers: { host: 'x' } });
    assert.match(String(reval.headers['cache-status']), /fwd=stale; fwd-status=304/);
    for (let i = 0; i < 2; i++) {
      const hit = await send(f.port, '/v', { headers: { host: 'x' } });
      assert.match(String(hit.headers['cache-status']), /^portico; hit; ttl=\d+$/);
      assert.equal(hit.headers['x-version'], '2', 'the 304 refreshed the stored head');
      assert.equal(hit.body, BODY);
    }
    assert.equal(f.state.revalidations, 1);

    const inm = await send(f.port, '/v', { headers: { host: 'x', 'if-none-match': '"v"' } });
    assert.equal(inm.status, 304);
    assert.equal(inm.body, '');
    const range = await send(f.port, '/v', { headers: { host: 'x', range: 'bytes=3-9' } });
    assert.equal(range.status, 206);
    assert.equal(range.body, BODY.slice(3, 10));
    assert.equal(range.headers['content-range'], `bytes 3-9/${BODY.length}`);
    const head = await send(f.port, '/v', { method: 'HEAD', headers: { host: 'x' } });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String(BODY.length));

    const h10 = responses(await rawExchange(f.port, 'GET /v HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n', (t) => responses(t).some((r) => r.body.length === BODY.length)))[0]!;
    assert.equal(h10.status, 'HTTP/1.1 200 OK');
    assert.deepEqual(field(h10, 'connection'), ['keep-alive']);
    assert.equal(h10.body, BODY);
    const close = await rawExchange(f.port, 'GET /v HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', () => false);
    const c = responses(close)[0]!;
    assert.deepEqual(field(c, 'connection'), ['close']);
    assert.equal(c.body, BODY);
    assert.equal(f.fetched(), 2);
  } finally {
    await f.close();
  }
});

test('plain hits reach an h2 client whole, on an https listener, with a compressing route (identity and gzip)', { skip: missingBinary('openssl') }, async () => {
  let fetched = 0;
  const origin = await startOrigin('o', (_req, res) => {
    fetched++;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600', etag: '"h"' });
    res.end(BODY);
  });
  const cert = selfSigned(['www.example.com']);
  let p: Portico | undefined;
  let client: ClientHttp2Session | undefined;
  try {
    ({ p } = await startPortico(
      {
        log: { level: 'error' },
        admin: { enabled: false },
        caches: [{ name: 'main', memory: '4MiB', maxObjectSize: '64KiB' }],
        listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] }, routes: [{ pool: 'web', cache: 'main', compress: true }] }],
        pools: [{ name: 'web', health: { type: 'none' }, servers: [{ name: 'o', address: origin.address }] }],
      },
      's',
    ));
    client = h2connect(`https://127.0.0.1:${p.address('s')!.port}`, { servername: 'www.example.com', rejectUnauthorized: false });
    const c = client;
    const get = (headers: Record<string, string> = {}) =>
      new Promise<{ headers: Record<string, unknown>; raw: Buffer }>((resolve, reject) => {
        const req = c.request({ ':path': '/h', ':authority': 'www.example.com', ...headers });
        let h: Record<string, unknown> = {};
        const chunks: Buffer[] = [];
        req.on('response', (x) => (h = { ...x }));
        req.on('data', (b: Buffer) => chunks.push(b));
        req.on('end', () => resolve({ headers: h, raw: Buffer.concat(chunks) }));
        req.on('error', reject);
        req.end();
      });
    assert.match(String((await get()).headers['cache-status']), /fwd=miss; stored/);
    for (let i = 0; i < 3; i++) {
      const r = await get();
      assert.equal(r.headers[':status'], 200);
      assert.match(String(r.headers['cache-status']), /^portico; hit; ttl=\d+$/);
      assert.equal(r.headers['vary'], 'Accept-Encoding');
      assert.equal(r.headers['content-length'], String(BODY.length));
      assert.equal(r.raw.toString(), BODY);
    }
    const { gunzipSync } = await import('node:zlib');
    const gz = await get({ 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.raw).toString(), BODY);
    assert.equal(fetched, 1);
  } finally {
    client?.destroy();
    await p?.stop(0);
    await origin.close();
  }
});
