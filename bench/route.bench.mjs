// What routing and persistence cost per request: path and Host normalisation, a compiled route
// table, persistence lookups. Run after `npx tsc -p .`: node bench/route.bench.mjs
import { normalizeHost, normalizePath } from '../dist/proxy/http/normalize.js';
import { compileRoutes } from '../dist/proxy/http/router.js';
import { createPersistence, ServerTokens } from '../dist/persistence/index.js';
import { ServerSet } from '../dist/core/server-set.js';
import { ManualClock } from '../dist/core/clock.js';

// Several timed rounds after a warm-up, per second of CPU time used by this process (as parse.bench.mjs).
function bench(name, n, fn) {
  for (let i = 0; i < Math.min(n, 300_000); i++) fn();
  const rounds = [];
  for (let round = 0; round < 7; round++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const c = process.cpuUsage(c0);
    rounds.push(n / ((c.user + c.system) / 1e6));
  }
  rounds.sort((a, b) => a - b);
  console.log(`${name}: ${(1e9 / rounds[6]).toFixed(1)} ns best, ${(1e9 / rounds[3]).toFixed(1)} ns median`);
}

let sink = 0;
const view = (o) => ({
  method: 'GET',
  path: '/products/42',
  query: 'ref=home',
  host: 'shop.example.com',
  clientAddress: '192.0.2.10',
  lnames: ['host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'connection', 'cookie'],
  values: ['shop.example.com', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'text/html', 'en-US', 'gzip', 'keep-alive', 'sid=4f2a9c; tier=gold'],
  ...o,
});

bench('normalizePath /products/42 (nothing to do)', 5_000_000, () => (sink += normalizePath('/products/42').length));
bench('normalizePath /a/./b/../%7Ec//d (rewritten)', 1_000_000, () => (sink += normalizePath('/a/./b/../%7Ec//d').length));
bench('normalizeHost shop.example.com', 5_000_000, () => (sink += normalizeHost('shop.example.com').length));
bench('normalizeHost Shop.Example.com:8080', 5_000_000, () => (sink += normalizeHost('Shop.Example.com:8080').length));

const handle = { persistence: undefined };
const one = compileRoutes('web', [{ pool: 'web' }], () => handle);
const table = compileRoutes(
  'web',
  [
    { match: { host: 'images.example.com' }, pool: 'web' },
    { match: { path: '/api/' }, pool: 'web' },
    { match: { pathRegex: '\\.(png|jpe?g)$' }, pool: 'web' },
    { match: { header: { name: 'X-Tier', value: 'gold' } }, pool: 'web' },
    { match: { cookie: { name: 'tier', value: 'platinum' } }, pool: 'web' },
    { match: { userAgent: 'Mobile|Android' }, pool: 'web' },
    { match: { source: ['10.0.0.0/8'] }, pool: 'web' },
    { pool: 'web' },
  ],
  () => handle,
);
const req = view({});
const first = (routes) => {
  for (let i = 0; i < routes.length; i++) if (routes[i].match(req)) return i;
  return -1;
};
bench('route table of 1 (the default route)', 5_000_000, () => (sink += first(one)));
bench('route table of 8, the last one matches', 2_000_000, () => (sink += first(table)));

const servers = ['a', 'b', 'c'].map((n) => ({ id: `web/${n}`, name: n, host: '10.0.0.1', port: 80, weight: 1, backup: false, maxConnections: 0, meta: {} }));
const set = ServerSet.build(servers, new Map(), 1);
const tokens = new ServerTokens('bench');
const deps = { clock: new ManualClock(0), stateTokens: tokens };
const insert = createPersistence('web', { type: 'cookie', name: 'SRV', mode: 'insert' }, deps);
const withCookie = view({ values: [...req.values.slice(0, 6), `sid=4f2a9c; SRV=${tokens.tokenOf('web/b')}`] });
bench('cookie insert: lookup', 2_000_000, () => (sink += insert.lookup(withCookie, set) === undefined ? 0 : 1));
bench('cookie insert: forwardHeaders (strip the cookie)', 2_000_000, () => (sink += insert.forwardHeaders(withCookie).length));
const sip = createPersistence('web', { type: 'source-ip', ttl: 60_000, size: 100_000 }, deps);
sip.commit(req, undefined, servers[1], undefined, false);
bench('source-ip: lookup (hit)', 2_000_000, () => (sink += sip.lookup(req, set) === undefined ? 0 : 1));
bench('source-ip: commit (refresh)', 2_000_000, () => (sink += sip.commit(req, undefined, servers[1], servers[1], false).length));
if (sink === 0) console.log('');
