import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import { LbError } from '../core/errors.js';
import { registerBalancer } from '../balancer/registry.js';
import { ConfigError } from './errors.js';
import '../balancer/index.js';
import { validateConfig } from './load.js';
import type { ConfigInput } from './types.js';

// A `hash` whose own option parser is stricter than the schema, as an algorithm's may be.
registerBalancer({
  name: 'hash',
  parseOptions(raw) {
    const o = raw as { boundedLoad: number };
    if (o.boundedLoad > 2) throw Object.assign(new Error('balance hash: boundedLoad: must be at most 2'), { path: 'boundedLoad', problem: 'must be at most 2' });
    return o;
  },
  build: () => {
    throw new Error('not built in these tests');
  },
});

const input: ConfigInput = {
  listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ match: { path: '/api/', method: ['get', 'post'] }, pool: 'api' }, { pool: 'api' }] }],
  pools: [{ name: 'api', balance: 'leastconn', timeouts: { connect: 500 }, servers: [{ name: 'a', address: '[::1]:9101', weight: 2 }] }],
};

test('an object validates exactly like a file, to the same typed and frozen result', () => {
  const c = validateConfig(input, { runnable: false });
  assert.equal(c.listeners[0]!.listen.port, 0);
  assert.ok(c.listeners[0]!.protocol === 'http');
  assert.deepEqual(c.listeners[0]!.routes[0]!.match?.method, ['GET', 'POST']);
  assert.equal(c.pools[0]!.timeouts.connect, 500);
  assert.equal(c.pools[0]!.timeouts.response, 30_000);
  assert.deepEqual(c.pools[0]!.servers[0]!.address, { host: '::1', port: 9101 });
  assert.ok(Object.isFrozen(c.pools[0]!.servers[0]!.address));
});

test('issues of an object carry a path and no position', () => {
  const bad = {
    ...input,
    pools: [{ name: 'api', servers: [{ name: 'a', address: '127.0.0.1:9101' }, { name: 'b', address: { host: 'x', port: 1 } }] }],
    extra: 1,
  };
  assert.throws(
    () => validateConfig(bad, { runnable: false }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError && err instanceof LbError);
      assert.deepEqual(err.lines(), [
        '<object> pools.0.servers.1.address: expected an address HOST:PORT, got a mapping',
        '<object> extra: unknown key',
      ]);
      assert.deepEqual(err.issues[0], {
        file: '<object>',
        line: 0,
        col: 0,
        path: 'pools.0.servers.1.address',
        message: 'expected an address HOST:PORT, got a mapping',
      });
      assert.equal(err.message, err.lines().join('\n'));
      return true;
    },
  );
  assert.throws(() => validateConfig(null, { runnable: false }), (err: unknown) => err instanceof ConfigError && err.lines().join() === '<object> (root): expected a mapping, got null');
});

test("an algorithm's own option parser runs at validation, its problem placed under the pool's options", () => {
  const pools = [{ name: 'h', balance: 'hash', hash: { key: 'cookie:sid', boundedLoad: 3 } }];
  assert.throws(
    () => validateConfig({ pools }, { runnable: false }),
    (err: unknown) => err instanceof ConfigError && err.lines().join() === '<object> pools.0.hash.boundedLoad: balance hash: must be at most 2',
  );
  const ok = validateConfig({ pools: [{ name: 'h', balance: 'hash', hash: { key: 'cookie:sid', boundedLoad: 1.5 } }] }, { runnable: false });
  assert.deepEqual(ok.pools[0]!.hash, { key: 'cookie:sid', method: 'maglev', boundedLoad: 1.5 });
});

test('upstream tls: false, true or options', () => {
  const tlsOf = (tls: unknown) => validateConfig({ pools: [{ name: 'p', tls }] }, { runnable: false }).pools[0]!.tls;
  assert.equal(tlsOf(false), false);
  assert.deepEqual(tlsOf(true), { verify: true });
  assert.deepEqual(tlsOf({ ca: 'ca.pem', servername: 'api.internal' }), { ca: 'ca.pem', servername: 'api.internal', verify: true });
  assert.deepEqual(tlsOf({ verify: false }), { verify: false });
  assert.throws(() => tlsOf({ verfy: false }), (err: unknown) => err instanceof ConfigError && err.lines().join() === '<object> pools.0.tls.verfy: unknown key (did you mean "verify"?)');
  assert.throws(() => tlsOf('yes'), (err: unknown) => err instanceof ConfigError && err.lines().join() === '<object> pools.0.tls: expected false | true | mapping, got "yes"');
});

test('rate limits default their burst to the rate', () => {
  const c = validateConfig({
    listeners: [{ name: 'w', protocol: 'http', listen: '127.0.0.1:0', rateLimit: { rate: '6000/m' }, routes: [{ respond: { status: 204 } }] }],
  }, { runnable: false });
  const l = c.listeners[0]!;
  assert.ok(l.protocol === 'http');
  assert.deepEqual(l.rateLimit, { key: 'source-ip', rate: { count: 6000, perMs: 60_000 }, burst: 6000 });
  assert.deepEqual(l.routes[0]!.respond, { status: 204, body: '', headers: {} });
});
