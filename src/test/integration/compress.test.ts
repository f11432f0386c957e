import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect } from 'node:net';
import zlib from 'node:zlib';
import { startOrigin, startRoutedOrigin, type PathHandler } from '../../test-helpers/origins.js';
import { startInFront, startPortico, webConfig } from '../../test-helpers/portico.js';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';

type Route = PathHandler;

async function farm(routes: Record<string, Route>, route: Record<string, unknown> = { compress: true }, top: Record<string, unknown> = {}) {
  const { origin, hits } = await startRoutedOrigin(routes);
  const config = webConfig([{ name: 'web', servers: [{ name: 'o', address: `127.0.0.1:${origin.port}` }] }], { routes: [{ pool: 'web', ...route }] }, top);
  return { ...(await startInFront(origin, config)), hits };
}

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  /** The body decoded by its Content-Encoding. */
  text: string;
}

function decode(ce: string | undefined, raw: Buffer): string {
  if (ce === 'gzip') return zlib.gunzipSync(raw).toString();
  if (ce === 'br') return zlib.brotliDecompressSync(raw).toString();
  assert.equal(ce, undefined, 'unexpected content-encoding ' + ce);
  return raw.toString();
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        try {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, text: decode(res.headers['content-encoding'], raw) });
        } catch (e) {
          reject(e as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(200);

const fixed = (headers: Record<string, string>, body: string, status = 200): Route => (_req, res) => {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
};

test('gzip and br round trips: Content-Encoding, no Content-Length, Vary merged with the server\'s, a weak ETag (SPEC §11)', async () => {
  const f = await farm({ '/t': fixed({ etag: '"v1"', vary: 'Accept-Language' }, TEXT) });
  try {
    for (const coding of ['gzip', 'br']) {
      const r = await get(f.port, '/t', { 'accept-encoding': coding });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], coding);
      assert.equal(r.headers['content-length'], undefined);
      assert.equal(r.headers['vary'], 'Accept-Language, Accept-Encoding');
      assert.equal(r.headers['etag'], 'W/"v1"');
      assert.equal(r.text, TEXT);
      assert.ok(r.raw.length < TEXT.length / 5, `${coding}: ${r.raw.length} bytes`);
      // Counted before the body's last bytes were sent.
      const m = await f.p.observability.metrics.render();
      assert.ok(m.includes(`portico_compressed_bytes_total{listener="web",algorithm="${coding}",direction="in"} ${TEXT.length}\n`), m);
      assert.ok(m.includes(`portico_compressed_bytes_total{listener="web",algorithm="${coding}",direction="out"} ${r.raw.length}\n`), m);
    }
    // Without Accept-Encoding: the server's body and its own ETag, and Vary says why.
    const plain = await get(f.port, '/t');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['content-length'], String(TEXT.length));
    assert.equal(plain.headers['etag'], '"v1"');
    assert.equal(plain.headers['vary'], 'Accept-Language, Accept-Encoding');
    assert.equal(plain.text, TEXT);
  } finally {
    await f.close();
  }
});

test('the coding follows the q-values, ties to the route\'s order; identity when nothing offered is acceptable', async () => {
  const f = await farm({ '/t': fixed({}, TEXT) }, { compress: { algorithms: ['gzip', 'br'] } });
  try {
    const cases: [string, string | undefined][] = [
      ['br, gzip', 'gzip'],
      ['br;q=1, gzip;q=0.5', 'br'],
      ['gzip;q=0, *', 'br'],
      ['*;q=0.2, br;q=0.1', 'gzip'],
      ['deflate', undefined],
      ['gzip;q=0, br;q=0', undefined],
      ['identity', undefined],
    ];
    for (const [ae, want] of cases) {
      const r = await get(f.port, '/t', { 'accept-encoding': ae });
      assert.equal(r.headers['content-encoding'], want, ae);
      assert.equal(r.text, TEXT, ae);
    }
  } finally {
    await f.close();
  }
});

test('never compressed: HEAD, 204, 304, 206, an encoded body, no-transform, a small body, an unlisted type', async () => {
  const gz = zlib.gzipSync(TEXT);
  const f = await farm({
    '/t': fixed({ etag: '"e"' }, TEXT),
    '/204': (_req, res) => {
      res.writeHead(204, { etag: '"e"' });
      res.end();
    },
    '/304': (_req, res) => {
      res.writeHead(304, { etag: '"e"' });
      res.end();
    },
    '/206': fixed({ 'content-range': `bytes 0-99/${TEXT.length}`, etag: '"e"' }, TEXT.slice(0, 100), 206),
    '/enc': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'content-length': String(gz.length), etag: '"e"' });
      res.end(gz);
    },
    '/nt': fixed({ 'cache-control': 'public, no-transform', etag: '"e"' }, TEXT),
    '/small': fixed({ etag: '"e"' }, 'tiny'),
    '/png': (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(TEXT.length), etag: '"e"' });
      res.end(TEXT);
    },
  });
  try {
    const ae = { 'accept-encoding': 'gzip, br' };
    const head = await get(f.port, '/t', ae, 'HEAD');
    assert.equal(head.headers['content-encoding'], undefined);
    assert.equal(head.headers['content-length'], String(TEXT.length));
    assert.equal(head.headers['etag'], '"e"');
    for (const [path, status] of [['/204', 204], ['/304', 304]] as const) {
      const r = await get(f.port, path, ae);
      assert.equal(r.status, status);
      assert.equal(r.headers['content-encoding'], undefined, path);
      assert.equal(r.headers['etag'], '"e"', path);
      assert.equal(r.raw.length, 0);
    }
    const part = await get(f.port, '/206', ae);
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-encoding'], undefined);
    assert.equal(part.text, TEXT.slice(0, 100));
    const enc = await get(f.port, '/enc', ae);
    assert.equal(enc.headers['content-encoding'], 'gzip');
    assert.deepEqual(enc.raw, gz); // relayed as it came, not compressed twice
    assert.equal(enc.headers['etag'], '"e"');
    for (const path of ['/nt', '/small', '/png']) {
      const r = await get(f.port, path, ae);
      assert.equal(r.headers['content-encoding'], undefined, path);
      assert.equal(r.headers['etag'], '"e"', path);
      assert.equal(r.headers['vary'], undefined, path);
      assert.ok(r.headers['content-length'] !== undefined, path);
    }
    assert.equal((await get(f.port, '/small', ae)).text, 'tiny');
  } finally {
    await f.close();
  }
});

test('a chunked origin body is compressed whole; a response without ETag or Vary gets no ETag', async () => {
  const parts = Array.from({ length: 20 }, (_, i) => `part ${i}: ${'x'.repeat(500)}\n`);
  const f = await farm({
    '/c': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (const p of parts) res.write(p);
      res.end();
    },
  });
  try {
    const r = await get(f.port, '/c', { 'accept-encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.headers['etag'], undefined);
    assert.equal(r.headers['vary'], 'Accept-Encoding');
    assert.equal(r.text, parts.join(''));
  } finally {
    await f.close();
  }
});

test('an HTTP/1.0 client gets a compressed body delimited by the close', async () => {
  const f = await farm({ '/t': fixed({}, TEXT) });
  try {
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(f.port, '127.0.0.1', () => s.write('GET /t HTTP/1.0\r\nHost: a\r\nAccept-Encoding: br\r\n\r\n'));
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
    });
    const at = raw.indexOf('\r\n\r\n');
    const head = raw.subarray(0, at).toString('latin1');
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.match(head, /\r\ncontent-encoding: br\r\n/i);
    assert.doesNotMatch(head, /content-length|transfer-encoding/i);
    assert.match(head, /\r\nConnection: close/i);
    assert.equal(zlib.brotliDecompressSync(raw.subarray(at + 4)).toString(), TEXT);
  } finally {
    await f.close();
  }
});

test('server-sent events through a compressing route arrive one by one, before the stream ends', async () => {
  // The origin sends the next event only once the client has decoded the previous one.
  let next!: () => void;
  const f = await farm({
    '/sse': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let i = 0;
      next = () => {
        if (i === 5) res.end();
        else res.write(`data: event ${i++}\n\n`);
      };
      next();
    },
  });
  try {
    for (const coding of ['gzip', 'br']) {
      const events = await new Promise<string[]>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: f.port, path: '/sse', headers: { 'accept-encoding': coding }, agent: false }, (res) => {
          try {
            assert.equal(res.headers['content-encoding'], coding);
          } catch (e) {
            reject(e as Error);
            return;
          }
          const dec = coding === 'br' ? zlib.createBrotliDecompress() : zlib.createGunzip();
          const got: string[] = [];
          let buf = '';
          res.pipe(dec);
          dec.on('data', (c: Buffer) => {
            buf += c.toString();
            let at: number;
            while ((at = buf.indexOf('\n\n')) >= 0) {
              got.push(buf.slice(0, at));
              buf = buf.slice(at + 2);
              next();
            }
          });
          dec.on('end', () => resolve(got));
          dec.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(events, [0, 1, 2, 3, 4].map((i) => `data: event ${i}`), coding);
    }
  } finally {
    await f.close();
  }
});

test('with cache: on the route the cache keeps the identity body and each compressed variant: the first hit per coding is compressed on delivery and kept, the next ones are sent as kept (with Content-Length)', async () => {
  const f = await farm({ '/t': fixed({ 'cache-control': 'max-age=60', etag: '"v1"', vary: 'Origin' }, TEXT) }, { cache: 'main', compress: true }, { caches: [{ name: 'main', memory: '4MiB', maxObjectSize: '64KiB' }] });
  try {
    const miss = await get(f.port, '/t', { 'accept-encoding': 'gzip' });
    assert.equal(miss.headers['content-encoding'], 'gzip');
    assert.equal(miss.headers['etag'], 'W/"v1"');
    assert.match(String(miss.headers['cache-status']), /fwd=miss; stored/);
    assert.equal(miss.text, TEXT);
    const cache = (f.p as unknown as { caches: { get(n: string): { store: { bytes: number } } } }).caches.get('main')!.store;
    const identityBytes = cache.bytes;
    for (const coding of ['gzip', 'br']) {
      const hit = await get(f.port, '/t', { 'accept-encoding': coding });
      assert.match(String(hit.headers['cache-status']), /^portico; hit/);
      assert.equal(hit.headers['content-encoding'], coding);
      assert.equal(hit.headers['content-length'], undefined, 'compressed on delivery (chunked)');
      assert.equal(hit.headers['etag'], 'W/"v1"');
      assert.equal(hit.headers['vary'], 'Origin, Accept-Encoding');
      assert.equal(hit.text, TEXT);
      const kept = await get(f.port, '/t', { 'accept-encoding': coding });
      assert.match(String(kept.headers['cache-status']), /^portico; hit/);
      assert.equal(kept.headers['content-encoding'], coding);
      assert.equal(kept.headers['content-length'], String(hit.raw.length), 'the kept variant, sized');
      assert.ok(kept.raw.equals(hit.raw), 'the same bytes as the compressed first hit');
      assert.equal(kept.headers['etag'], 'W/"v1"');
      assert.equal(kept.headers['vary'], 'Origin, Accept-Encoding');
      assert.equal(kept.text, TEXT);
    }
    assert.ok(cache.bytes > identityBytes, 'the variants are counted in the cache\'s bytes');
    // A client that takes no coding gets the stored bytes as they are, with the server's ETag.
    const plain = await get(f.port, '/t');
    assert.match(String(plain.headers['cache-status']), /^portico; hit/);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['content-length'], String(TEXT.length));
    assert.equal(plain.headers['etag'], '"v1"');
    assert.equal(plain.headers['vary'], 'Origin, Accept-Encoding');
    assert.equal(plain.text, TEXT);
    // HEAD and a range are answered from the cache uncompressed.
    const head = await get(f.port, '/t', { 'accept-encoding': 'gzip' }, 'HEAD');
    assert.equal(head.headers['content-encoding'], undefined);
    const range = await get(f.port, '/t', { 'accept-encoding': 'gzip', range: 'bytes=0-9' });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-encoding'], undefined);
    assert.equal(range.text, TEXT.slice(0, 10));
    // The client's weak validator from a compressed answer is satisfied by the stored response.
    const cond = await get(f.port, '/t', { 'if-none-match': 'W/"v1"', 'accept-encoding': 'gzip' });
    assert.equal(cond.status, 304);
    assert.equal(f.hits.get('/t'), 1);
    // Every compressed answer, miss and hits (kept ones too), was counted.
    const m = await f.p.observability.metrics.render();
    assert.match(m, /portico_compressed_bytes_total\{listener="web",algorithm="gzip",direction="in"\} 27000\n/);
  } finally {
    await f.close();
  }
});

test('an h2 client on an https listener gets the compressed body as DATA frames', { skip: missingBinary('openssl') }, async () => {
  const origin = await startOrigin('o', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', etag: '"h"' });
    res.write(TEXT.slice(0, 3000));
    res.end(TEXT.slice(3000));
  });
  const cert = selfSigned(['www.example.com']);
  const p = createPortico({
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] }, routes: [{ pool: 'web', compress: true }] }],
    pools: [{ name: 'web', servers: [{ name: 'o', address: origin.address }] }],
  });
  let client: ClientHttp2Session | undefined;
  try {
    await p.start();
    client = h2connect(`https://127.0.0.1:${p.address('s')!.port}`, { servername: 'www.example.com', rejectUnauthorized: false });
    const c = client;
    for (const coding of ['br', 'gzip']) {
      const r = await new Promise<{ headers: Record<string, unknown>; raw: Buffer }>((resolve, reject) => {
        const req = c.request({ ':path': '/', ':authority': 'www.example.com', 'accept-encoding': coding });
        let headers: Record<string, unknown> = {};
        const chunks: Buffer[] = [];
        req.on('response', (h) => (headers = { ...h }));
        req.on('data', (b: Buffer) => chunks.push(b));
        req.on('end', () => resolve({ headers, raw: Buffer.concat(chunks) }));
        req.on('error', reject);
        req.end();
      });
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.headers['content-encoding'], coding);
      assert.equal(r.headers['etag'], 'W/"h"');
      assert.equal(decode(coding, r.raw), TEXT);
    }
  } finally {
    client?.destroy();
    await p.stop(0);
    await origin.close();
  }
});
