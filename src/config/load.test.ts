import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import { ConfigError } from './errors.js';
import { EXAMPLE_CONFIG } from './example.js';
import '../balancer/index.js';
import { loadConfigFile, parseConfigText } from './load.js';
import type { HttpListenerConfig } from './types.js';
import { DEFAULT_CIPHERS } from './schema/tls.js';


test('the full example parses to typed values: durations in ms, addresses, rates, status ranges', () => {
  const c = parseConfigText(EXAMPLE_CONFIG, 'example.yaml', {}, { runnable: false });
  assert.deepEqual(c.admin, { enabled: true, listen: { host: '127.0.0.1', port: 9090 }, token: '', tls: false, protectReads: false, metricsOpen: false, timeouts: { header: 10_000, body: 30_000, keepAlive: 5_000 }, maxBodyBytes: 1_048_576, allowedHosts: [] });
  assert.deepEqual(c.cluster, { node: 'lb1', store: 'memory', config: 'file', workers: 'auto', statsTimeout: 500, upgradeTimeout: 60_000, accept: 'primary' });
  assert.deepEqual(c.log, { level: 'info', format: 'text', access: { path: 'stdout', format: 'json' } });
  assert.equal(c.shutdownGrace, 10_000);
  assert.equal(c.stateDir, '.portico');
  assert.deepEqual(
    c.listeners.map((l) => [l.name, l.protocol, l.listen.host, l.listen.port]),
    [
      ['web', 'http', '0.0.0.0', 8080],
      ['secure', 'https', '0.0.0.0', 8443],
      ['mysql', 'tcp', '0.0.0.0', 3307],
      ['mirror', 'redirect', '0.0.0.0', 8081],
      ['dns', 'dns', '0.0.0.0', 5353],
    ],
  );

  const web = c.listeners[0] as HttpListenerConfig;
  assert.deepEqual(web.limits, {
    headerTimeout: 10_000,
    keepAliveTimeout: 60_000,
    bodyTimeout: 60_000,
    maxHeaderBytes: 16384,
    maxHeaders: 100,
    maxUriBytes: 8192,
    maxBodyBytes: 0,
    maxConnections: 10000,
    maxRequestsPerConnection: 0,
  });
  assert.deepEqual(web.trustedProxies, ['10.0.0.0/8']);
  assert.deepEqual(web.access, { allow: ['0.0.0.0/0'], deny: [] });
  assert.deepEqual(web.rateLimit, { key: 'source-ip', rate: { count: 100, perMs: 1000 }, burst: 200 });
  assert.equal(web.exposeServer, false);
  assert.equal(web.noRouteStatus, 503);
  assert.deepEqual(web.routes[0]!.match, { host: ['images.example.com'] });
  assert.deepEqual(web.routes[2]!.match, { header: { name: 'User-Agent', regex: 'Mobile' } });
  assert.deepEqual(web.routes[2]!.headers.request.set, { 'X-Client': 'mobile' });
  assert.equal(web.routes[3]!.priority, 'high');
  assert.deepEqual(web.routes[4]!.redirect, { status: 301, location: 'https://{host}/new/' });
  assert.equal(web.routes[5]!.match, undefined);
  assert.equal(web.routes[5]!.pool, 'web');

  const secure = c.listeners[1]!;
  assert.ok(secure.protocol === 'https');
  assert.deepEqual(secure.tls, {
    certificates: [{ cert: 'certs/www.pem', key: 'certs/www.key', ocsp: false }],
    minVersion: 'TLSv1.2',
    ciphers: DEFAULT_CIPHERS,
    clientAuth: false,
    http2: true,
    sessionCache: 'shared',
    sessionTimeout: 300_000,
    ticketKeyRotation: 3_600_000,
    reloadCheck: 5000,
  });
  const mysql = c.listeners[2]!;
  assert.ok(mysql.protocol === 'tcp' && mysql.dataPlane !== 'kernel');
  assert.deepEqual([mysql.pool, mysql.inspect, mysql.maxConnections], ['db', 'tls', 10000]);
  const mirror = c.listeners[3]!;
  assert.ok(mirror.protocol === 'redirect');
  assert.equal(mirror.status, 302);
  const dns = c.listeners[4]!;
  assert.ok(dns.protocol === 'dns');
  assert.deepEqual(dns.zones[0]!.records[0], { name: 'www', type: 'A', pool: 'web', policy: 'roundrobin', answers: 2, fallback: 'all' });
  assert.deepEqual(dns.zones[0]!.records[2], { name: 'static', type: 'A', values: ['192.0.2.10'], policy: 'roundrobin', answers: 0, fallback: 'all' });

  const [webPool, api, images, db] = c.pools;
  assert.equal(webPool!.balance, 'roundrobin');
  assert.deepEqual(webPool!.persistence, { type: 'cookie', name: 'SRV', mode: 'insert' });
  assert.deepEqual(webPool!.health, {
    type: 'http',
    path: '/health',
    method: 'GET',
    expect: { status: [[200, 399]] },
    interval: 2000,
    timeout: 1000,
    rise: 2,
    fall: 3,
    jitter: 0,
  });
  assert.deepEqual(webPool!.passive, {
    consecutiveErrors: 5,
    ejectFor: 30_000,
    maxEjectFor: 300_000,
    maxEjectPercent: 50,
    errors: ['connect', 'response', '5xx'],
  });
  assert.equal(webPool!.slowStart, 30_000);
  assert.equal(webPool!.retries, 2);
  assert.deepEqual(webPool!.timeouts, { connect: 2000, response: 30_000, idle: 60_000 });
  assert.deepEqual(webPool!.keepAlive, { maxIdlePerServer: 64, idleTimeout: 30_000, maxRequests: 0, readBuffer: 32768 });
  assert.deepEqual(webPool!.queue, { max: 1000, timeout: 5000 });
  assert.equal(webPool!.panicThreshold, 0);
  assert.equal(webPool!.tls, false);
  assert.deepEqual(webPool!.discovery, { type: 'static' });
  assert.deepEqual(webPool!.servers[0], {
    name: 'web1',
    address: { host: '127.0.0.1', port: 9101 },
    weight: 1,
    backup: false,
    maxConnections: 0,
    state: 'ready',
  });
  assert.equal(webPool!.servers[1]!.maxConnections, 200);
  assert.equal(webPool!.servers[2]!.backup, true);
  assert.deepEqual(
    [webPool!.servers[3]!.state, webPool!.servers[3]!.url, webPool!.servers[3]!.site],
    ['drain', 'http://www3.example.com', 'eu'],
  );
  assert.deepEqual(api!.hash, { key: 'header:X-User', method: 'maglev', boundedLoad: 1.25 });
  assert.deepEqual(images!.lard, { low: 25, high: 65, replicate: true, shrinkAfter: 20_000, maxTargets: 65536 });
  assert.deepEqual(images!.discovery, { type: 'dns-srv', name: '_http._tcp.images.example.com', refresh: 30_000 });
  assert.deepEqual(db!.persistence, { type: 'tls-session', ttl: 300_000, size: 100_000 });
  assert.deepEqual(db!.health, { type: 'tcp', interval: 5000, timeout: 1000, rise: 2, fall: 3, jitter: 0 });
  assert.deepEqual(db!.servers[0]!.address, { host: '2001:db8::10', port: 3306 });
});

test('the parsed configuration is deep-frozen and JSON-serialisable', () => {
  const c = parseConfigText(EXAMPLE_CONFIG, 'example.yaml', {}, { runnable: false });
  const walk = (v: unknown, path: string): void => {
    if (typeof v !== 'object' || v === null) return;
    assert.ok(Object.isFrozen(v), `${path} is not frozen`);
    for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(c, 'config');
  assert.throws(() => {
    (c.pools[0]!.servers as unknown as unknown[]).push({});
  }, TypeError);
  assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
});

test('defaults fill every section that is left out', () => {
  const c = parseConfigText('pools: [ { name: p } ]\n', 'min.yaml', {}, { runnable: false });
  assert.deepEqual(c.admin, { enabled: true, listen: { host: '127.0.0.1', port: 9090 }, token: '', tls: false, protectReads: false, metricsOpen: false, timeouts: { header: 10_000, body: 30_000, keepAlive: 5_000 }, maxBodyBytes: 1_048_576, allowedHosts: [] });
  assert.deepEqual(c.cluster, { node: hostname(), store: 'memory', config: 'file', workers: 'auto', statsTimeout: 500, upgradeTimeout: 60_000, accept: 'primary' });
  assert.deepEqual(c.log, { level: 'info', format: 'text', access: false });
  assert.equal(c.shutdownGrace, 10_000);
  assert.deepEqual(c.listeners, []);
  const p = c.pools[0]!;
  assert.equal(p.balance, 'roundrobin');
  assert.deepEqual(p.health, { type: 'none' });
  assert.deepEqual([p.persistence, p.passive, p.tls, p.slowStart, p.retries], [false, false, false, 0, 2]);
  assert.deepEqual(p.hash, { key: 'source-ip', method: 'maglev' });
  assert.deepEqual(p.queue, { max: 0, timeout: 5000 });
  assert.deepEqual(p.servers, []);
});

test('${VAR} and ${VAR:-default} are replaced in string values', () => {
  const yaml = [
    'admin:',
    '  token: ${TOKEN:-fallback}',
    '  listen: 127.0.0.1:${ADMIN_PORT:-9090}',
    'cluster: { node: "${NODE}-${REGION:-eu}", workers: "${WORKERS:-2}" }',
    'stateDir: "$${HOME}/state"',
    'pools:',
    '  - name: p',
    '    servers:',
    '      - name: a',
    '        address: ${SERVER_A}',
    '        weight: ${WEIGHT:-1}',
    '        backup: ${BACKUP:-false}',
    '',
  ].join('\n');
  const c = parseConfigText(yaml, 'env.yaml', { NODE: 'lb7', SERVER_A: '10.0.0.5:80', WEIGHT: '3', ADMIN_PORT: '' }, { runnable: false });
  assert.equal(c.admin.token, 'fallback');
  assert.equal(c.admin.listen.port, 9090, 'an empty variable takes the default');
  assert.equal(c.cluster.node, 'lb7-eu');
  assert.equal(c.cluster.workers, 2);
  assert.equal(c.stateDir, '${HOME}/state');
  assert.deepEqual(c.pools[0]!.servers[0]!.address, { host: '10.0.0.5', port: 80 });
  assert.equal(c.pools[0]!.servers[0]!.weight, 3);
  assert.equal(c.pools[0]!.servers[0]!.backup, false);
  const set = parseConfigText(yaml, 'env.yaml', { NODE: 'n', SERVER_A: 'h:1', TOKEN: 'tok', REGION: 'us', BACKUP: 'true' }, { runnable: false });
  assert.deepEqual([set.admin.token, set.cluster.node, set.pools[0]!.servers[0]!.backup], ['tok', 'n-us', true]);
});

test('several unset variables are each reported where they are used; a bad reference too', () => {
  const yaml = 'admin:\n  token: ${A}${B}\nstateDir: ${}\ncluster: { node: "${C}" }\n';
  assert.throws(
    () => parseConfigText(yaml, 'env.yaml', {}, { runnable: false }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.lines(), [
        'env.yaml:2:3 admin.token: environment variables A, B are not set (write ${A:-DEFAULT} to give a default)',
        'env.yaml:3:1 stateDir: bad ${...}: write ${NAME} or ${NAME:-default} (NAME is letters, digits and _), or $${ for a literal ${',
        'env.yaml:4:12 cluster.node: environment variable C is not set (write ${C:-DEFAULT} to give a default)',
      ]);
      return true;
    },
  );
});

test('a missing variable hides what its absence causes, not an unknown key', () => {
  assert.throws(
    () => parseConfigText('admin: { token: "${NOPE}" }\npools:\n  - name: p\n    tokn: ${NOPE}\n', 'env.yaml', {}, { runnable: false }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.lines(), [
        'env.yaml:1:10 admin.token: environment variable NOPE is not set (write ${NOPE:-DEFAULT} to give a default)',
        'env.yaml:4:5 pools.0.tokn: environment variable NOPE is not set (write ${NOPE:-DEFAULT} to give a default)',
        'env.yaml:4:5 pools.0.tokn: unknown key',
      ]);
      return true;
    },
  );
});

test('JSON is accepted, with positions', () => {
  const json = JSON.stringify(
    {
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:8080', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'a', address: '127.0.0.1:9101', weight: 2 }] }],
    },
    null,
    2,
  );
  const c = parseConfigText(json, 'lb.json', {}, { runnable: false });
  assert.equal(c.pools[0]!.servers[0]!.weight, 2);
  assert.equal(c.listeners[0]!.listen.port, 8080);
  const bad = json.replace('"weight": 2', '"weight": 300');
  assert.throws(
    () => parseConfigText(bad, 'lb.json', {}, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && err.lines().join() === 'lb.json:21:11 pools.0.servers.0.weight: 300 is out of range 0-256',
  );
});

test('loadConfigFile reads YAML and JSON files; a missing file is a ConfigError', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-config-'));
  writeFileSync(join(dir, 'lb.yaml'), EXAMPLE_CONFIG);
  assert.equal(loadConfigFile(join(dir, 'lb.yaml'), {}, { runnable: false, files: false }).pools.length, 4);
  writeFileSync(join(dir, 'lb.json'), JSON.stringify({ pools: [{ name: 'p' }] }));
  assert.equal(loadConfigFile(join(dir, 'lb.json'), {}, { runnable: false }).pools[0]!.name, 'p');
  const missing = join(dir, 'nope.yaml');
  assert.throws(
    () => loadConfigFile(missing, {}, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && err.lines().join() === `${missing}:0:0 (file): cannot read the configuration: no such file`,
  );
  assert.throws(
    () => loadConfigFile(dir, {}, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && err.lines().join() === `${dir}:0:0 (file): cannot read the configuration: is a directory`,
  );
});

test('aliases are followed, and a file that expands without bound is refused', () => {
  const c = parseConfigText('pools:\n  - &p { name: a, retries: 3 }\n  - { name: b, retries: 1 }\n', 'a.yaml', {}, { runnable: false });
  assert.equal(c.pools[0]!.retries, 3);
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]', ''].join('\n');
  assert.throws(
    () => parseConfigText(bomb, 'bomb.yaml', {}, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && /^bomb\.yaml:1:1 \(yaml\): /.test(err.lines()[0]!),
  );
});

test('listeners[].upgrades: websocket by default, lowercased tokens, h2c refused', () => {
  const yaml = (up: string): string =>
    `listeners:\n  - { name: web, protocol: http, listen: 127.0.0.1:8080, routes: [{ pool: web }]${up} }\npools:\n  - { name: web, servers: [{ name: a, address: 127.0.0.1:9101 }] }\n`;
  assert.deepEqual((parseConfigText(yaml(''), 'a.yaml', {}, { runnable: false }).listeners[0] as HttpListenerConfig).upgrades, ['websocket']);
  assert.deepEqual((parseConfigText(yaml(', upgrades: [WebSocket, TLS]'), 'a.yaml', {}, { runnable: false }).listeners[0] as HttpListenerConfig).upgrades, ['websocket', 'tls']);
  assert.throws(
    () => parseConfigText(yaml(', upgrades: [websocket, H2C]'), 'a.yaml', {}, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && err.lines().join().includes('h2c is never tunnelled'),
  );
  assert.throws(() => parseConfigText(yaml(', upgrades: ["web socket"]'), 'a.yaml', {}, { runnable: false }), ConfigError);
});

test('zookeeper and consul discovery sections take their defaults; a bad znode path is refused with the reason', () => {
  const c = parseConfigText('pools:\n  - name: p\n    discovery: { type: zookeeper, hosts: [127.0.0.1:2181], path: /services/p }\n', 'zk.yaml', {}, { runnable: false });
  assert.deepEqual(c.pools[0]!.discovery, { type: 'zookeeper', hosts: [{ host: '127.0.0.1', port: 2181 }], path: '/services/p', sessionTimeout: 10_000, connectTimeout: 3000 });
  assert.throws(
    () => parseConfigText('pools:\n  - name: p\n    discovery: { type: zookeeper, hosts: [127.0.0.1:2181], path: services/ }\n', 'zk.yaml', {}, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && /absolute znode path/.test(err.message),
  );
  const k = parseConfigText('pools:\n  - name: p\n    discovery: { type: consul, service: web }\n', 'c.yaml', {}, { runnable: false });
  assert.deepEqual(k.pools[0]!.discovery, { type: 'consul', url: 'http://127.0.0.1:8500', service: 'web', tags: [], wait: 300_000 });
  assert.throws(
    () => parseConfigText('pools:\n  - name: p\n    discovery: { type: consul, service: web, wait: 11m }\n', 'c.yaml', {}, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && /too long/.test(err.message),
  );
});
