import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import { ConfigError } from './errors.js';
import '../balancer/index.js';
import { parseConfigText } from './load.js';


/** The issues of a YAML text as `portico check` prints them, or [] when it is valid. */
function problems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfigText(yaml, 'lb.yaml', env, { runnable: false });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.code, 'LB_CONFIG');
    assert.equal(err.source, 'config');
    return err.lines();
  }
}

const POOL = `pools:
  - name: web
    servers:
      - { name: a, address: 127.0.0.1:9101 }
      - { name: b, address: 127.0.0.1:9102 }
`;

const LISTENER = `listeners:
  - name: web
    protocol: http
    listen: 127.0.0.1:8080
    routes: [ { pool: web } ]
`;

test('the base configuration of these tests is valid', () => {
  assert.deepEqual(problems(LISTENER + POOL), []);
});

test('a port out of range points at the key', () => {
  const yaml = LISTENER.replace('127.0.0.1:8080', '127.0.0.1:70000') + POOL;
  assert.deepEqual(problems(yaml), ['lb.yaml:4:5 listeners.0.listen: bad address "127.0.0.1:70000": port 70000 is out of range 0-65535']);
});

test('an unknown key (a typo) gets a suggestion, and what it hid is missing', () => {
  const yaml = LISTENER.replace('routes:', 'routs:') + POOL;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:2:5 listeners.0.routes: missing required key',
    'lb.yaml:5:5 listeners.0.routs: unknown key (did you mean "routes"?)',
  ]);
  assert.deepEqual(problems(`${LISTENER}${POOL}    retires: 3\n`), ['lb.yaml:11:5 pools.0.retires: unknown key (did you mean "retries"?)']);
  assert.deepEqual(problems(`${LISTENER}${POOL}frobnicate: true\n`), ['lb.yaml:11:1 frobnicate: unknown key']);
});

test('a route naming a pool that does not exist', () => {
  const yaml = LISTENER.replace('{ pool: web }', '{ pool: wbe }') + POOL;
  assert.deepEqual(problems(yaml), ['lb.yaml:5:17 listeners.0.routes.0.pool: pool "wbe" does not exist (did you mean "web"?) (pools: web)']);
});

test('duplicate names: listeners, pools, servers in a pool', () => {
  const yaml = `${LISTENER}  - name: web
    protocol: tcp
    listen: 127.0.0.1:3307
    pool: web
${POOL.replace('name: b', 'name: a')}  - name: web
`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:6:5 listeners.1.name: duplicate listener name "web" (first at listeners.0.name)',
    'lb.yaml:14:11 pools.0.servers.1.name: duplicate server name "a" (first at pools.0.servers.0.name)',
    'lb.yaml:15:5 pools.1.name: duplicate pool name "web" (first at pools.0.name)',
  ]);
});

test('a bad duration and a bad server address', () => {
  const yaml = `${LISTENER}${POOL.replace('127.0.0.1:9102', 'localhost')}    timeouts: { connect: 2 sec }\n`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:10:20 pools.0.servers.1.address: bad address "localhost": missing :PORT',
    'lb.yaml:11:17 pools.0.timeouts.connect: bad duration "2 sec": a duration is a number with a unit (ms, s, m, h, d), e.g. 250ms, 2s, 1m30s; a plain number is milliseconds',
  ]);
});

test('an unset environment variable with no default is named', () => {
  const yaml = `admin:\n  token: \${LB_TOKEN}\n${LISTENER}${POOL}`;
  assert.deepEqual(problems(yaml), ['lb.yaml:2:3 admin.token: environment variable LB_TOKEN is not set (write ${LB_TOKEN:-DEFAULT} to give a default)']);
  assert.deepEqual(problems(yaml, { LB_TOKEN: 's3cret' }), []);
});

test('an admin API off loopback needs a token', () => {
  const yaml = `admin:\n  listen: 0.0.0.0:9090\n${LISTENER}${POOL}`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:2:3 admin.listen: 0.0.0.0 is not a loopback address: set admin.token so that only its holders may change anything',
  ]);
  assert.deepEqual(problems(`admin:\n  listen: 0.0.0.0:9090\n  token: \${T}\n${LISTENER}${POOL}`, { T: 'x' }), []);
  assert.deepEqual(problems(`admin:\n  listen: '[::1]:9090'\n${LISTENER}${POOL}`), []);
});

test('regular expressions must compile', () => {
  const yaml = LISTENER.replace('{ pool: web }', '{ match: { pathRegex: "^/(a|b" }, pool: web }') + POOL;
  assert.deepEqual(problems(yaml), ['lb.yaml:5:26 listeners.0.routes.0.match.pathRegex: bad regular expression "^/(a|b": Unterminated group']);
  const header = LISTENER.replace('{ pool: web }', '{ match: { header: { name: X-A, regex: "[" } }, pool: web }') + POOL;
  assert.deepEqual(problems(header), ['lb.yaml:5:47 listeners.0.routes.0.match.header.regex: bad regular expression "[": Unterminated character class']);
});

test('two listeners on one address and port; port 0 is exempt; a wildcard overlaps', () => {
  const second = (listen: string): string => `${LISTENER}  - name: other\n    protocol: tcp\n    listen: ${listen}\n    pool: web\n${POOL}`;
  assert.deepEqual(problems(second('127.0.0.1:8080')), [
    'lb.yaml:8:5 listeners.1.listen: 127.0.0.1:8080 is already used by listener "web" (listeners.0.listen)',
  ]);
  assert.deepEqual(problems(second('0.0.0.0:8080')), [
    'lb.yaml:8:5 listeners.1.listen: 0.0.0.0:8080 is already used by listener "web" (listeners.0.listen)',
  ]);
  assert.deepEqual(problems(second('127.0.0.1:9090')), ['lb.yaml:1:1 admin.listen: 127.0.0.1:9090 is already used by listener "other" (listeners.1.listen)']);
  assert.deepEqual(problems(second("'[::1]:8080'")), []);
  const zeros = LISTENER.replace('127.0.0.1:8080', '127.0.0.1:0') + `  - name: other\n    protocol: tcp\n    listen: 127.0.0.1:0\n    pool: web\n${POOL}`;
  assert.deepEqual(problems(zeros), []);
});

test('tcp and redirect listeners name existing pools; so do DNS records', () => {
  const yaml = `listeners:
  - { name: t, protocol: tcp, listen: 127.0.0.1:3307, pool: db }
  - { name: r, protocol: redirect, listen: 127.0.0.1:8081, pool: mirrors }
  - name: d
    protocol: dns
    listen: 127.0.0.1:5353
    zones: [ { name: example.com, records: [ { name: www, type: A, pool: webs } ] } ]
${POOL}`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:2:55 listeners.0.pool: pool "db" does not exist (pools: web)',
    'lb.yaml:3:60 listeners.1.pool: pool "mirrors" does not exist (pools: web)',
    'lb.yaml:7:68 listeners.2.zones.0.records.0.pool: pool "webs" does not exist (did you mean "web"?) (pools: web)',
  ]);
});

test('hash and lard options only with that balance', () => {
  const yaml = `${LISTENER}${POOL}    hash: { key: uri }\n    lard: { low: 10 }\n  - name: h\n    balance: hash\n    hash: { key: uri }\n`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:11:5 pools.0.hash: hash options apply only with balance: hash (this pool uses roundrobin)',
    'lb.yaml:12:5 pools.0.lard: lard options apply only with balance: lard (this pool uses roundrobin)',
  ]);
  assert.deepEqual(problems(`${LISTENER}${POOL}    balance: lard\n    lard: { low: 70, high: 65 }\n`), [
    'lb.yaml:12:13 pools.0.lard.low: low (70) must be below high (65)',
  ]);
});

test('an https listener needs certificates', () => {
  const yaml = `listeners:
  - name: s
    protocol: https
    listen: 127.0.0.1:8443
    routes: [ { pool: web } ]
  - name: t
    protocol: https
    listen: 127.0.0.1:8444
    tls: { certificates: [] }
    routes: [ { pool: web } ]
${POOL}`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:2:5 listeners.0.tls: missing required key',
    'lb.yaml:9:12 listeners.1.tls.certificates: an https listener needs at least one certificate',
  ]);
});

test("a redirect listener's tls: an https listener's without http2, clientAuth and ocsp", () => {
  const yaml = `listeners:
  - name: r
    protocol: redirect
    listen: 127.0.0.1:8443
    pool: web
    tls:
      certificates: [ { cert: c.pem, key: k.pem, ocsp: true } ]
      http2: true
      minVersion: TLSv1.1
  - { name: s, protocol: redirect, listen: 127.0.0.1:8444, pool: web, tls: { certificates: [] } }
  - { name: t, protocol: redirect, listen: 127.0.0.1:8445, pool: web, tls: { certificates: [ { cert: c.pem, key: k.pem } ], clientAuth: false, sessionCache: shared } }
${POOL}`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:7:50 listeners.0.tls.certificates.0.ocsp: unknown key',
    'lb.yaml:8:7 listeners.0.tls.http2: unknown key',
    'lb.yaml:9:7 listeners.0.tls.minVersion: must be one of TLSv1.2 | TLSv1.3, got "TLSv1.1"',
    'lb.yaml:10:78 listeners.1.tls.certificates: a redirect listener with tls needs at least one certificate',
    'lb.yaml:11:125 listeners.2.tls.clientAuth: unknown key',
  ]);
});

test('a route without match must be the last', () => {
  const yaml = LISTENER.replace('routes: [ { pool: web } ]', 'routes:\n      - pool: web\n      - { match: { path: /api/ }, pool: web }\n      - { match: {}, pool: web }') + POOL;
  assert.deepEqual(problems(yaml), ['lb.yaml:6:9 listeners.0.routes.0: a route without match takes every request: the 2 routes after it are unreachable']);
});

test('a route takes exactly one action; a header match exactly one test', () => {
  const yaml = LISTENER.replace(
    '{ pool: web }',
    '{ match: { header: { name: X-A, value: a, regex: b } }, pool: web, respond: { status: 200 } }',
  ) + POOL;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:5:15 listeners.0.routes.0: takes only one of pool, respond',
    'lb.yaml:5:26 listeners.0.routes.0.match.header: takes only one of value, regex',
  ]);
  const none = LISTENER.replace('{ pool: web }', '{ match: { cookie: { name: tier } } }') + POOL;
  assert.deepEqual(problems(none), [
    'lb.yaml:5:15 listeners.0.routes.0: needs one of pool, redirect, respond',
    'lb.yaml:5:26 listeners.0.routes.0.match.cookie: needs one of value, regex',
  ]);
});

test('an unknown protocol, balancer or enum value', () => {
  const yaml = `${LISTENER.replace('protocol: http', 'protocol: htpp')}${POOL}    balance: roundrobn\n    health: { type: http, method: POST }\n`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:3:5 listeners.0.protocol: unknown protocol "htpp" (did you mean "http"?): one of http | https | tcp | redirect | dns | udp',
    'lb.yaml:11:5 pools.0.balance: unknown balancer "roundrobn" (did you mean "roundrobin"?) (known: fastest, hash, lard, least-traffic, leastconn, p2c, random, roundrobin)',
    'lb.yaml:12:27 pools.0.health.method: must be one of GET | HEAD, got "POST"',
  ]);
});

test('wrong types are named, with the value that was there', () => {
  const yaml = `${LISTENER}${POOL}    retries: lots\n    passive: yes\n  - name: empty\n    servers: {}\n`;
  assert.deepEqual(problems(yaml), [
    'lb.yaml:11:5 pools.0.retries: expected a whole number (0-10), got "lots"',
    'lb.yaml:12:5 pools.0.passive: expected false | mapping, got "yes"',
    'lb.yaml:14:5 pools.1.servers: expected a list, got a mapping',
  ]);
});

test('a discovered pool lists no servers', () => {
  const yaml = `${LISTENER}${POOL}    discovery: { type: dns-srv, name: _http._tcp.web.example.com }\n`;
  assert.deepEqual(problems(yaml), ['lb.yaml:8:5 pools.0.servers: this pool takes its servers from discovery (dns-srv): leave servers empty']);
});

test('YAML syntax errors and an empty file', () => {
  assert.deepEqual(problems('listeners:\n  - name: a\n  name: b\n'), ['lb.yaml:3:1 (yaml): All mapping items must start at the same column']);
  assert.deepEqual(problems('a: 1\na: 2\n'), ['lb.yaml:2:1 (yaml): Map keys must be unique']);
  assert.deepEqual(problems(''), ['lb.yaml:1:1 (root): the configuration is empty']);
  assert.deepEqual(problems('- 1\n'), ['lb.yaml:1:1 (root): expected a mapping, got a list']);
  assert.deepEqual(problems('pools:\n  - name: p\n    servers:\n      - name: s\n        address: [::1]:80\n'), [
    "lb.yaml:5:23 (yaml): Unexpected scalar at node end (put an IPv6 address in quotes: '[::1]:8080')",
  ]);
});
