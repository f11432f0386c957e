import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { send, type Reply } from '../../test-helpers/http.js';
import { rawRequest, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';

/** The status line of a raw exchange. */
const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);

describe('content switching: every match key routes to its pool', () => {
  const names = ['hosted', 'api', 'images', 'writes', 'tagged', 'gold', 'beta', 'mobile', 'inside', 'combo', 'fallback'];
  const origins = new Map<string, Origin>();
  let p: Portico;
  let port = 0;

  before(async () => {
    for (const n of names) origins.set(n, await startOrigin(n));
    ({ p, port } = await startPortico(
      webConfig(names.map((n) => ({ name: n, servers: [{ name: n, address: origins.get(n)!.address }] })), {
        routes: [
          { match: { host: ['shop.example.com', '*.shop.example'] }, pool: 'hosted' },
          { match: { path: '/combo/', method: 'PUT', header: { name: 'X-Team', value: 'blue' } }, pool: 'combo' },
          { match: { path: '/api/' }, pool: 'api' },
          { match: { pathRegex: '\\.(png|jpe?g)$' }, pool: 'images' },
          { match: { method: ['POST', 'DELETE'] }, pool: 'writes' },
          { match: { header: { name: 'X-Tag', present: true } }, pool: 'tagged' },
          { match: { cookie: { name: 'tier', value: 'gold' } }, pool: 'gold' },
          { match: { query: { name: 'beta', regex: '^(1|on)$' } }, pool: 'beta' },
          { match: { userAgent: 'Mobile|Android' }, pool: 'mobile' },
          { match: { source: ['127.0.0.2/32'] }, pool: 'inside' },
          { pool: 'fallback' },
        ],
      }),
    ));
  });

  after(async () => {
    await p.stop(100);
    await Promise.all([...origins.values()].map((o) => o.close()));
  });

  const cases: [string, string, Parameters<typeof send>[2]][] = [
    ['host (exact, case and port normalised)', 'hosted', { headers: { Host: 'SHOP.Example.COM.:8080' } }],
    ['host (*.domain)', 'hosted', { headers: { Host: 'eu.shop.example' } }],
    ['path prefix', 'api', {}],
    ['pathRegex', 'images', {}],
    ['method', 'writes', { method: 'DELETE' }],
    ['header present', 'tagged', { headers: { 'X-Tag': '' } }],
    ['cookie', 'gold', { headers: { Cookie: 'a=1; tier=gold' } }],
    ['query', 'beta', {}],
    ['userAgent', 'mobile', { headers: { 'User-Agent': 'Mozilla/5.0 (Linux; Android 14) Mobile' } }],
    ['source', 'inside', { localAddress: '127.0.0.2' }],
    ['path + method + header combined', 'combo', { method: 'PUT', headers: { 'X-Team': 'blue' } }],
    ['nothing special: the default route', 'fallback', {}],
  ];
  const paths: Record<string, string> = { api: '/api/users', images: '/img/logo.png', beta: '/page?x=1&beta=on', combo: '/combo/x' };

  for (const [what, pool, o] of cases) {
    it(what, async () => {
      const r = await send(port, paths[pool] ?? '/page', o);
      assert.equal(r.status, 200);
      assert.equal(r.body, pool);
    });
  }

  it('a combined match with one key failing falls through to the next route', async () => {
    assert.equal((await send(port, '/combo/x', { method: 'PUT', headers: { 'X-Team': 'red' } })).body, 'fallback');
    assert.equal((await send(port, '/combo/x', { method: 'GET', headers: { 'X-Team': 'blue' } })).body, 'fallback');
    assert.equal((await send(port, '/api/x', { method: 'PUT', headers: { 'X-Team': 'blue' } })).body, 'api');
  });

  it('first match wins', async () => {
    // /api/ comes before method and cookie routes
    assert.equal((await send(port, '/api/x', { method: 'POST', headers: { Cookie: 'tier=gold' } })).body, 'api');
  });
});

describe('content switching: no route', () => {
  let o: Origin;
  before(async () => {
    o = await startOrigin('only');
  });
  after(async () => {
    await o.close();
  });

  for (const [status, listenerKeys] of [
    [503, {}],
    [404, { noRouteStatus: 404 }],
  ] as const) {
    it(`answers ${status} when nothing matches and there is no default${status === 404 ? ' (noRouteStatus: 404)' : ''}`, async () => {
      const p = createPortico({
        log: { level: 'error' },
      admin: { enabled: false },
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', ...listenerKeys, routes: [{ match: { path: '/only/' }, pool: 'p' }] }],
        pools: [{ name: 'p', servers: [{ name: 'only', address: o.address }] }],
      });
      await p.start();
      try {
        const port = p.address('web')!.port;
        const r = await send(port, '/elsewhere');
        assert.equal(r.status, status);
        assert.match(r.body, new RegExp(`^${status} `));
        assert.equal((await send(port, '/only/x')).body, 'only');
        assert.deepEqual(o.seen.filter((s) => s.includes('elsewhere')), []);
      } finally {
        await p.stop(100);
      }
    });
  }
});

describe('path normalisation: routing and forwarding agree', () => {
  let pub: Origin;
  let admin: Origin;
  let p: Portico;
  let port = 0;

  before(async () => {
    pub = await startOrigin('public');
    admin = await startOrigin('admin');
    ({ p, port } = await startPortico(
      webConfig([
        { name: 'public', servers: [{ name: 'public', address: pub.address }] },
        { name: 'admin', servers: [{ name: 'admin', address: admin.address }] },
      ], {
        routes: [
          { match: { path: '/admin', source: ['10.0.0.0/8'] }, pool: 'admin' },
          { match: { path: '/admin' }, respond: { status: 403, body: 'admin is internal\n' } },
          { match: { path: '/public/' }, pool: 'public' },
          { respond: { status: 404, body: 'nothing here\n' } },
        ],
      }),
    ));
  });

  after(async () => {
    await p.stop(100);
    await pub.close();
    await admin.close();
  });

  const raw = (target: string): Promise<string> => rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

  it('what resolves to /admin is treated as /admin: never the public route', async () => {
    for (const target of ['/admin', '/public/../admin', '/%2e%2e/admin', '/public/%2E%2E/admin', '//admin', '/public/./../admin', '/public/..//admin', '/a/b/../../admin']) {
      const out = await raw(target);
      assert.equal(statusOf(out), 403, `${target}: ${out.split('\r\n')[0]}`);
      assert.ok(out.endsWith('admin is internal\n'), target);
    }
  });

  it('encodings that servers resolve differently are refused with 400', async () => {
    for (const target of [
      '/admin%2f..',
      '/public/..%2fadmin',
      '/public%2f..%2fadmin',
      '/%252e%252e/admin',
      '/public/%252e%252e/admin',
      '/public/%252fadmin',
      '/public/..;/admin',
      '/public\\..\\admin',
      '/public/%00',
      '/public/%zz',
    ]) {
      const out = await raw(target);
      assert.equal(statusOf(out), 400, `${target}: ${out.split('\r\n')[0]}`);
    }
  });

  it('the server receives the normalised path (with the query as sent), and never an admin path', async () => {
    const before = pub.seen.length;
    const out = await raw('/public/./a//b/../c/%7Euser%2fx?q=%2e%2e&z=1');
    assert.equal(statusOf(out), 200);
    assert.deepEqual(pub.seen.slice(before), ['GET /public/a/c/~user%2Fx?q=%2e%2e&z=1']);
    assert.deepEqual(admin.seen, []);
    assert.deepEqual(pub.seen.filter((s) => s.includes('admin')), []);
  });

  it('an absolute-form target is normalised the same way', async () => {
    const out = await rawRequest(port, 'GET http://x/public/../admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(out), 403);
  });
});

describe('route actions', () => {
  let echo: Origin;
  let p: Portico;
  let port = 0;

  before(async () => {
    echo = await startOrigin('echo', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-powered-by': 'origin', server: 'origin/1.0' });
      res.end(JSON.stringify(req.headers));
    });
    ({ p, port } = await startPortico(
      webConfig([{ name: 'web', servers: [{ name: 'echo', address: echo.address }] }], {
        routes: [
          { match: { host: 'old.example.com' }, redirect: { status: 301, location: 'https://new.example.com{path}{query}' } },
          { match: { path: '/moved' }, redirect: { location: '{scheme}://{host}/new{path}' }, headers: { response: { set: { 'Cache-Control': 'no-store' } } } },
          { match: { path: '/health' }, respond: { status: 200, body: 'ok ✓\n', headers: { 'X-Portico': 'yes' } } },
          {
            pool: 'web',
            headers: {
              request: { set: { 'X-Env': 'prod', Host: 'internal.example' }, add: { 'X-Tag': 'a' }, remove: ['X-Debug'] },
              response: { set: { Server: 'portico' }, add: { 'X-Frame-Options': 'DENY' }, remove: ['X-Powered-By'] },
            },
          },
        ],
      }),
    ));
  });

  after(async () => {
    await p.stop(100);
    await echo.close();
  });

  it('request headers are set, added and removed before the server sees them', async () => {
    const r = await send(port, '/x', { headers: { 'X-Env': 'dev', 'X-Debug': '1', 'X-Tag': 'client', 'X-Keep': 'k' } });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as Record<string, string>;
    assert.equal(seen['x-env'], 'prod');
    assert.equal(seen['x-debug'], undefined);
    assert.equal(seen['x-tag'], 'client, a');
    assert.equal(seen['x-keep'], 'k');
    assert.equal(seen['host'], 'internal.example');
    assert.equal(seen['x-forwarded-host'], '127.0.0.1:' + port, 'X-Forwarded-Host keeps what the client asked for');
  });

  it('response headers are set, added and removed before the client sees them', async () => {
    const r = await send(port, '/x');
    assert.equal(r.headers['server'], 'portico');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-powered-by'], undefined);
    assert.equal(r.headers['content-type'], 'application/json');
  });

  it('redirect: status and location from the template; the server is not asked', async () => {
    const before = echo.seen.length;
    const r = await send(port, '/a/../docs?x=1', { headers: { Host: 'OLD.example.com' } });
    assert.equal(r.status, 301);
    assert.equal(r.headers['location'], 'https://new.example.com/docs?x=1');
    const m = await send(port, '/moved', { headers: { Host: 'site.test:8080' } });
    assert.equal(m.status, 302);
    assert.equal(m.headers['location'], 'http://site.test/new/moved');
    assert.equal(m.headers['cache-control'], 'no-store');
    assert.equal(echo.seen.length, before);
  });

  it('respond: status, body and headers, keep-alive kept, HEAD without body', async () => {
    const out = await rawRequest(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nHEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = Buffer.from(out, 'latin1').toString('utf8');
    assert.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 3, text);
    assert.equal(text.match(/ok ✓\n/g)?.length, 2, 'two bodies: HEAD has none');
    assert.match(text, /X-Portico: yes/);
    assert.match(text, /Content-Length: 7\r\n/, "bytes, not characters");
  });

  it('an HTTP/1.0 client is answered with Connection: close', async () => {
    const out = await rawRequest(port, 'GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(statusOf(out), 200);
    assert.match(out, /Connection: close\r\n/);
  });

  it('a respond route answers a request with a body and closes the connection', async () => {
    const out = await rawRequest(port, 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal(statusOf(out), 200);
    assert.match(out, /Connection: close/);
  });
});

describe('priority: under a full queue, high requests leave it first', () => {
  let slow: Origin;
  let p: Portico;
  let port = 0;
  const order: string[] = [];
  let release: (() => void) | undefined;

  before(async () => {
    slow = await startOrigin('slow', (req, res) => {
      const tag = String(req.headers['x-id'] ?? '');
      order.push(tag);
      const done = (): void => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(tag);
      };
      if (tag === 'blocker') release = done;
      else setTimeout(done, 5);
    });
    ({ p, port } = await startPortico(
      webConfig([{ name: 'app', queue: { max: 100, timeout: '10s' }, servers: [{ name: 'slow', address: slow.address, maxConnections: 1 }] }], {
        routes: [
          { match: { cookie: { name: 'tier', value: 'gold' } }, pool: 'app', priority: 'high' },
          { match: { cookie: { name: 'tier', value: 'bronze' } }, pool: 'app', priority: 'low' },
          { pool: 'app' },
        ],
      }),
    ));
  });

  after(async () => {
    await p.stop(100);
    await slow.close();
  });

  it('gold requests that arrived after bronze ones are served before them', async () => {
    const pool = p.pools.get('app')!;
    const all: Promise<Reply>[] = [send(port, '/', { headers: { 'X-Id': 'blocker' } })];
    await waitFor(() => release !== undefined, 15_000, 'the blocker to reach the server');
    for (let i = 0; i < 5; i++) all.push(send(port, '/', { headers: { 'X-Id': `low${i}`, Cookie: 'tier=bronze' } }));
    await waitFor(() => pool.queued === 5, 15_000, 'five low requests queued');
    for (let i = 0; i < 3; i++) all.push(send(port, '/', { headers: { 'X-Id': `normal${i}` } }));
    await waitFor(() => pool.queued === 8, 15_000, 'three normal requests queued');
    for (let i = 0; i < 5; i++) all.push(send(port, '/', { headers: { 'X-Id': `high${i}`, Cookie: 'tier=gold' } }));
    await waitFor(() => pool.queued === 13, 15_000, 'five high requests queued');
    release!();
    const replies = await Promise.all(all);
    assert.ok(replies.every((r) => r.status === 200));
    assert.equal(order[0], 'blocker');
    const rest = order.slice(1);
    assert.deepEqual(
      rest.map((t) => t.replace(/\d+$/, '')),
      ['high', 'high', 'high', 'high', 'high', 'normal', 'normal', 'normal', 'low', 'low', 'low', 'low', 'low'],
      rest.join(' '),
    );
    assert.deepEqual(rest.filter((t) => t.startsWith('low')), ['low0', 'low1', 'low2', 'low3', 'low4'], 'FIFO within a class');
  });
});
