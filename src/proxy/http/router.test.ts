import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { compileMatch, compileRoutes, type MatchSpec, type RequestView } from './router.js';
import { HOP_BY_HOP } from './headers.js';
import type { PoolHandle } from './listener-runtime.js';
import type { Persistence } from '../../persistence/persistence.js';

function view(o: Partial<Omit<RequestView, 'lnames' | 'values'>> & { headers?: [string, string][] } = {}): RequestView {
  const headers = o.headers ?? [];
  return {
    method: o.method ?? 'GET',
    path: o.path ?? '/',
    query: o.query ?? '',
    host: o.host ?? 'www.example.com',
    clientAddress: o.clientAddress ?? '192.0.2.10',
    lnames: headers.map((h) => h[0].toLowerCase()),
    values: headers.map((h) => h[1]),
  };
}

const m = (spec: MatchSpec) => compileMatch(spec);

describe('compileMatch: each key alone', () => {
  it('no match takes every request', () => {
    assert.equal(compileMatch(undefined)(view()), true);
    assert.equal(compileMatch({})(view()), true);
  });

  it('host: exact, a list, and *.domain for every subdomain (not the domain itself)', () => {
    assert.equal(m({ host: 'www.example.com' })(view()), true);
    assert.equal(m({ host: 'www.example.com' })(view({ host: 'api.example.com' })), false);
    assert.equal(m({ host: ['a.example', 'b.example'] })(view({ host: 'b.example' })), true);
    const wild = m({ host: '*.example.com' });
    assert.equal(wild(view({ host: 'img.example.com' })), true);
    assert.equal(wild(view({ host: 'a.b.example.com' })), true);
    assert.equal(wild(view({ host: 'example.com' })), false);
    assert.equal(wild(view({ host: 'badexample.com' })), false);
    assert.equal(m({ host: ['x.test', '*.example.com'] })(view({ host: 'x.test' })), true);
  });

  it('path: a prefix', () => {
    const api = m({ path: '/api/' });
    assert.equal(api(view({ path: '/api/users' })), true);
    assert.equal(api(view({ path: '/api' })), false);
    assert.equal(api(view({ path: '/apix/' })), false);
  });

  it('pathRegex', () => {
    const re = m({ pathRegex: '\\.(png|jpg)$' });
    assert.equal(re(view({ path: '/img/a.png' })), true);
    assert.equal(re(view({ path: '/img/a.png.html' })), false);
  });

  it('method: one or a list', () => {
    assert.equal(m({ method: 'POST' })(view({ method: 'POST' })), true);
    assert.equal(m({ method: 'POST' })(view({ method: 'GET' })), false);
    const rw = m({ method: ['PUT', 'DELETE'] });
    assert.equal(rw(view({ method: 'DELETE' })), true);
    assert.equal(rw(view({ method: 'GET' })), false);
  });

  it('header: value, regex, present and absent; any occurrence; names in any case', () => {
    const h = (headers: [string, string][]) => view({ headers });
    assert.equal(m({ header: { name: 'X-Tier', value: 'gold' } })(h([['x-tier', 'gold']])), true);
    assert.equal(m({ header: { name: 'X-Tier', value: 'gold' } })(h([['X-Tier', 'silver']])), false);
    assert.equal(m({ header: { name: 'X-Tier', value: 'gold' } })(h([['X-Tier', 'silver'], ['X-Tier', 'gold']])), true);
    assert.equal(m({ header: { name: 'Accept', regex: 'json' } })(h([['Accept', 'application/json']])), true);
    assert.equal(m({ header: { name: 'Accept', regex: 'json' } })(h([])), false);
    assert.equal(m({ header: { name: 'Authorization', present: true } })(h([['Authorization', 'x']])), true);
    assert.equal(m({ header: { name: 'Authorization', present: true } })(h([])), false);
    assert.equal(m({ header: { name: 'Authorization', present: false } })(h([])), true);
    assert.equal(m({ header: { name: 'Authorization', present: false } })(h([['authorization', '']])), false);
  });

  it('cookie: value or regex, in any Cookie header', () => {
    const gold = m({ cookie: { name: 'tier', value: 'gold' } });
    assert.equal(gold(view({ headers: [['Cookie', 'a=1; tier=gold; b=2']] })), true);
    assert.equal(gold(view({ headers: [['Cookie', 'a=1'], ['Cookie', 'tier=gold']] })), true);
    assert.equal(gold(view({ headers: [['Cookie', 'xtier=gold']] })), false);
    assert.equal(gold(view({ headers: [['Cookie', 'tier=golden']] })), false);
    assert.equal(gold(view()), false);
    assert.equal(m({ cookie: { name: 'tier', regex: '^(gold|platinum)$' } })(view({ headers: [['Cookie', 'tier=platinum']] })), true);
  });

  it('query: value or regex, percent-decoded', () => {
    const beta = m({ query: { name: 'beta', value: 'on' } });
    assert.equal(beta(view({ query: 'a=1&beta=on' })), true);
    assert.equal(beta(view({ query: 'beta=off' })), false);
    assert.equal(beta(view({ query: 'xbeta=on' })), false);
    assert.equal(beta(view({ query: '' })), false);
    assert.equal(m({ query: { name: 'q', value: 'a b' } })(view({ query: 'q=a%20b' })), true);
    assert.equal(m({ query: { name: 'v', regex: '^[0-9]+$' } })(view({ query: 'v=42' })), true);
  });

  it('userAgent: a regex over User-Agent; no header never matches', () => {
    const mobile = m({ userAgent: 'Mobile|Android' });
    assert.equal(mobile(view({ headers: [['User-Agent', 'Mozilla/5.0 (Linux; Android 14)']] })), true);
    assert.equal(mobile(view({ headers: [['User-Agent', 'curl/8.0']] })), false);
    assert.equal(mobile(view()), false);
  });

  it('source: client address ranges, IPv4 and IPv6', () => {
    const inside = m({ source: ['10.0.0.0/8', '2001:db8::/32'] });
    assert.equal(inside(view({ clientAddress: '10.1.2.3' })), true);
    assert.equal(inside(view({ clientAddress: '::ffff:10.1.2.3' })), true);
    assert.equal(inside(view({ clientAddress: '2001:db8::1' })), true);
    assert.equal(inside(view({ clientAddress: '192.0.2.1' })), false);
  });
});

describe('compileMatch: keys combined (all must hold)', () => {
  it('two keys', () => {
    const api = m({ host: 'api.example.com', path: '/v2/' });
    assert.equal(api(view({ host: 'api.example.com', path: '/v2/x' })), true);
    assert.equal(api(view({ host: 'api.example.com', path: '/v1/x' })), false);
    assert.equal(api(view({ host: 'www.example.com', path: '/v2/x' })), false);
  });

  it('every key at once, and each one alone failing fails the match', () => {
    const spec: MatchSpec = {
      host: '*.example.com',
      path: '/admin/',
      pathRegex: '^/admin/[a-z]+$',
      method: ['GET', 'POST'],
      header: { name: 'X-Role', value: 'ops' },
      cookie: { name: 'tier', value: 'gold' },
      query: { name: 'debug', value: '1' },
      userAgent: 'Firefox',
      source: ['10.0.0.0/8'],
    };
    const all = m(spec);
    const good = {
      host: 'ops.example.com',
      path: '/admin/users',
      method: 'POST',
      query: 'debug=1',
      clientAddress: '10.9.8.7',
      headers: [
        ['X-Role', 'ops'],
        ['Cookie', 'tier=gold'],
        ['User-Agent', 'Firefox/130'],
      ] as [string, string][],
    };
    assert.equal(all(view(good)), true);
    const breakOne: [string, Parameters<typeof view>[0]][] = [
      ['host', { ...good, host: 'example.org' }],
      ['path', { ...good, path: '/public/users' }],
      ['pathRegex', { ...good, path: '/admin/Users' }],
      ['method', { ...good, method: 'DELETE' }],
      ['header', { ...good, headers: [good.headers[1]!, good.headers[2]!] }],
      ['cookie', { ...good, headers: [good.headers[0]!, ['Cookie', 'tier=bronze'], good.headers[2]!] }],
      ['query', { ...good, query: 'debug=0' }],
      ['userAgent', { ...good, headers: [good.headers[0]!, good.headers[1]!, ['User-Agent', 'curl']] }],
      ['source', { ...good, clientAddress: '192.0.2.1' }],
    ];
    for (const [key, v] of breakOne) assert.equal(all(view(v)), false, `${key} alone failing must fail the match`);
  });
});

describe('compileRoutes', () => {
  const handle = (persistence?: Persistence): PoolHandle => ({ persistence }) as unknown as PoolHandle;

  it('names routes, keeps their order, and resolves pools', () => {
    const web = handle();
    const routes = compileRoutes('web', [{ match: { path: '/a/' }, pool: 'web' }, { name: 'last', pool: 'web' }], (n) => (n === 'web' ? web : undefined));
    assert.deepEqual(
      routes.map((r) => r.name),
      ['web#0', 'last'],
    );
    assert.equal(routes[0]!.pool, web);
    assert.equal(routes[0]!.priority, 'normal');
    assert.throws(() => compileRoutes('web', [{ pool: 'nope' }], () => undefined), /unknown pool nope/);
  });

  it('a route with no action and no persistence relays headers exactly as without routes', () => {
    const [r] = compileRoutes('web', [{ pool: 'web', headers: { request: { set: {}, add: {}, remove: [] }, response: { set: {}, add: {}, remove: [] } } }], () => handle());
    assert.equal(r!.requestDrop, HOP_BY_HOP);
    assert.equal(r!.responseDrop, HOP_BY_HOP);
    assert.equal(r!.requestAdd, '');
    assert.equal(r!.responseAdd, '');
    // Phases: forwarding headers and passive health only; nothing on the response side.
    assert.deepEqual(
      r!.phases.all.map((p) => p.name),
      ['forwarding', 'passive-health'],
    );
    assert.equal(r!.phases.request.length, 0);
    assert.equal(r!.phases.responseHead.length, 0);
    assert.equal(r!.phases.responseBody.length, 0);
  });

  it('phases in order: persistence, forwarding, passive health, X-Served-By with exposeServer', () => {
    const per = { requestHeaders: ['cookie'], responseHeaders: ['set-cookie'] } as unknown as Persistence;
    const [r] = compileRoutes('web', [{ pool: 'web' }], () => handle(per), { exposeServer: true });
    assert.deepEqual(
      r!.phases.all.map((p) => p.name),
      ['persistence', 'forwarding', 'passive-health', 'served-by'],
    );
    assert.deepEqual(
      r!.phases.responseHead.map((p) => p.name),
      ['persistence', 'served-by'],
    );
  });

  it('a route that answers by itself has one phase, which answers; no pool', () => {
    const [r] = compileRoutes('web', [{ redirect: { status: 301, location: 'https://{host}{path}' } }], () => undefined);
    assert.equal(r!.pool, undefined);
    assert.deepEqual(
      r!.phases.all.map((p) => p.name),
      ['route-answer'],
    );
    const a = r!.phases.request[0]!.onRequest!({ method: 'GET', path: '/x', query: '', host: 'a.test' } as never);
    assert.equal((a as { status: number }).status, 301);
  });

  it('header edits: removed and replaced names are dropped, set and add appended', () => {
    const [r] = compileRoutes(
      'web',
      [
        {
          pool: 'web',
          headers: {
            request: { set: { 'X-Env': 'prod' }, add: { 'X-Tag': 'a' }, remove: ['X-Debug'] },
            response: { set: { Server: 'portico' }, add: {}, remove: ['X-Powered-By'] },
          },
        },
      ],
      () => handle(),
    );
    assert.ok(r!.requestDrop.has('x-env') && r!.requestDrop.has('x-debug') && r!.requestDrop.has('connection'));
    assert.ok(!r!.requestDrop.has('x-tag'));
    assert.equal(r!.requestAdd, 'X-Env: prod\r\nX-Tag: a\r\n');
    assert.ok(r!.responseDrop.has('server') && r!.responseDrop.has('x-powered-by'));
    assert.equal(r!.responseAdd, 'Server: portico\r\n');
  });

  it("the pool's persistence adds the headers it rewrites to what is dropped", () => {
    const per = { requestHeaders: ['cookie'], responseHeaders: ['set-cookie'] } as unknown as Persistence;
    const [r] = compileRoutes('web', [{ pool: 'web' }], () => handle(per));
    assert.ok(r!.requestDrop.has('cookie') && r!.responseDrop.has('set-cookie'));
    assert.ok(!HOP_BY_HOP.has('cookie'), 'the shared hop-by-hop set is not touched');
  });

  it('priority is carried', () => {
    const [r] = compileRoutes('web', [{ pool: 'web', priority: 'high' }], () => handle());
    assert.equal(r!.priority, 'high');
  });
});
