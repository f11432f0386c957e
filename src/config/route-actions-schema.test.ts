import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import '../balancer/index.js';
import { ConfigError } from './errors.js';
import { validateConfig } from './load.js';

/** The messages of the issues `routes` and `persistence` give, or [] when the configuration is valid. */
function issues(routes: unknown[], persistence: unknown = false): string[] {
  try {
    validateConfig({
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes }],
      pools: [{ name: 'p', persistence, servers: [{ name: 'a', address: '127.0.0.1:9' }] }],
    });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message.split('\n');
  }
}

test('route actions and persistence that this version runs are accepted', () => {
  assert.deepEqual(
    issues([
      { match: { path: '/old' }, redirect: { status: 308, location: 'https://{host}{path}{query}' } },
      { match: { path: '/health' }, respond: { body: 'ok', headers: { 'Cache-Control': 'no-store' } } },
      { match: { cookie: { name: 'tier', value: 'gold' } }, pool: 'p', priority: 'normal' },
      { pool: 'p', headers: { request: { set: { Host: 'internal' }, add: { 'X-A': '1' }, remove: ['X-B'] }, response: { remove: ['Server'] } } },
    ]),
    [],
  );
  for (const per of [
    { type: 'cookie', mode: 'insert', maxAge: '1h', domain: 'example.com' },
    { type: 'cookie', name: 'JSESSIONID', mode: 'prefix' },
    { type: 'source-ip', ttl: '10m', size: 1000 },
    { type: 'url-param', name: 'jsessionid', learn: true },
  ]) {
    assert.deepEqual(issues([{ pool: 'p' }], per), [], JSON.stringify(per));
  }
});

test('header edits that would break framing or forwarding are refused at their key', () => {
  const bad = (headers: unknown): string => issues([{ pool: 'p', headers }]).join('\n');
  assert.match(bad({ request: { set: { 'Content-Length': '5' } } }), /headers\.request\.set\.Content-Length: Content-Length is written by Portico/);
  assert.match(bad({ request: { remove: ['Transfer-Encoding'] } }), /headers\.request\.remove\.0: Transfer-Encoding is written by Portico/);
  assert.match(bad({ request: { add: { Host: 'x' } } }), /headers\.request\.add\.Host: Host cannot be added/);
  assert.match(bad({ request: { remove: ['host'] } }), /host cannot be removed/);
  assert.match(bad({ request: { set: { 'X-Forwarded-For': '1.2.3.4' } } }), /X-Forwarded-For is written by Portico/);
  assert.match(bad({ response: { set: { Connection: 'close' } } }), /Connection is written by Portico/);
  assert.match(bad({ response: { add: { 'X-A': 'a\r\nSet-Cookie: x=1' } } }), /control characters/);
});

test('answers that cannot be sent are refused', () => {
  assert.match(issues([{ respond: { status: 204, body: 'x' } }]).join('\n'), /respond\.body: a 204 response has no body/);
  assert.match(issues([{ respond: { status: 101 } }]).join('\n'), /respond\.status/);
  assert.match(issues([{ redirect: { location: 'https://x/{nope}' } }]).join('\n'), /unknown placeholder \{nope\}/);
  assert.match(issues([{ redirect: { location: 'https://x/a b' } }]).join('\n'), /spaces or control characters/);
  assert.match(issues([{ pool: 'p', respond: { body: 'x' } }]).join('\n'), /takes only one of pool, respond/);
});

test('persistence names must be tokens; tls-session belongs to tcp listeners', () => {
  assert.match(issues([{ pool: 'p' }], { type: 'cookie', name: 'a b' }).join('\n'), /persistence\.name: bad name/);
  assert.match(issues([{ pool: 'p' }], { type: 'url-param', name: 'sid=' }).join('\n'), /persistence\.name: bad name/);
  assert.match(issues([{ pool: 'p' }], { type: 'cookie', domain: 'not a domain' }).join('\n'), /persistence\.domain/);
  assert.match(issues([{ pool: 'p' }], { type: 'tls-session' }).join('\n'), /tls-session persistence works on tcp listeners/);
});

test('priority needs a queue on its pool', () => {
  const withQueue = (max: number): string[] => {
    try {
      validateConfig({
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'p', priority: 'high' }] }],
        pools: [{ name: 'p', queue: { max }, servers: [{ name: 'a', address: '127.0.0.1:9' }] }],
      });
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.message.split('\n');
    }
  };
  assert.deepEqual(withQueue(10), []);
  assert.match(withQueue(0).join('\n'), /routes\.0\.priority: priority orders the queue of pool "p", which has none/);
});
