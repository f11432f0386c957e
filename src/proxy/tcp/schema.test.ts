import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import '../../app/listener-kinds.js';
import '../../balancer/index.js';
import { ConfigError } from '../../config/errors.js';
import { validateConfig } from '../../config/validate.js';

function issues(config: unknown): string[] {
  try {
    validateConfig(config);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

const pool = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'db', servers: [{ name: 'a', address: '127.0.0.1:5432' }], ...extra });
const tcp = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'l4', protocol: 'tcp', listen: '127.0.0.1:0', pool: 'db', ...extra });

it('a valid tcp listener with inspect: tls, SNI routes and tls-session persistence', () => {
  const c = validateConfig({
    listeners: [tcp({ pool: undefined, inspect: 'tls', routes: [{ match: { sni: ['a.example.com', '*.b.example.com'] }, pool: 'db' }, { pool: 'db' }] })],
    pools: [pool({ persistence: { type: 'tls-session', ttl: '1m' } })],
  });
  const l = c.listeners[0]!;
  assert.ok(l.protocol === 'tcp' && l.dataPlane !== 'kernel');
  assert.deepEqual(l.routes?.[0]?.match?.sni, ['a.example.com', '*.b.example.com']);
  assert.equal(l.inspectTimeout, 5000);
  assert.equal(l.inspectMaxBytes, 16384);
  assert.equal(l.sendProxy, false);
  assert.equal(l.acceptProxy, false);
});

it('pool or routes, exactly one; sni needs inspect: tls', () => {
  assert.deepEqual(issues({ listeners: [tcp({ pool: undefined })], pools: [pool()] }), ['listeners.0: needs pool or routes']);
  assert.deepEqual(issues({ listeners: [tcp({ routes: [{ pool: 'db' }] })], pools: [pool()] }), ['listeners.0: takes pool or routes, not both']);
  assert.deepEqual(issues({ listeners: [tcp({ pool: undefined, routes: [{ match: { sni: 'a.example.com' }, pool: 'db' }] })], pools: [pool()] }), [
    'listeners.0.routes.0.match.sni: matching on sni needs inspect: tls on this listener',
  ]);
});

it('tls-session persistence only behind tcp listeners that inspect TLS', () => {
  assert.deepEqual(issues({ listeners: [tcp()], pools: [pool({ persistence: { type: 'tls-session' } })] }), [
    'pools.0.persistence.type: tls-session persistence works on tcp listeners with inspect: tls; listener "l4" uses this pool without it',
  ]);
});

it('a tcp listener hashes by source-ip only', () => {
  assert.deepEqual(issues({ listeners: [tcp()], pools: [pool({ balance: 'hash', hash: { key: 'header:X-User' } })] }), [
    'pools.0.hash.key: tcp listener "l4" uses this pool: a connection can only be hashed by source-ip',
  ]);
  assert.deepEqual(issues({ listeners: [tcp()], pools: [pool({ balance: 'hash', hash: { key: 'source-ip' } })] }), []);
});

it('sendProxy is false, v1 or v2; bad values and limits are refused at their key', () => {
  assert.deepEqual(issues({ listeners: [tcp({ sendProxy: 'v3', inspectMaxBytes: 10 })], pools: [pool()] }), [
    'listeners.0.sendProxy: expected false, v1 or v2, got "v3"',
    'listeners.0.inspectMaxBytes: 10 is out of range 512-1048576',
  ]);
});

it('https tls options: versions and a cipher list OpenSSL knows', () => {
  const https = (tls: Record<string, unknown>): unknown => ({
    listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: 'c.pem', key: 'k.pem' }], ...tls }, routes: [{ pool: 'db' }] }],
    pools: [pool()],
  });
  assert.deepEqual(issues(https({ minVersion: 'TLSv1.1' })).length, 1);
  assert.match(issues(https({ ciphers: 'NOT-A-CIPHER' }))[0]!, /^listeners\.0\.tls\.ciphers: no cipher matches "NOT-A-CIPHER"/);
});

it('https tls.clientAuth: verify is required or optional; match.clientCert needs an https listener with clientAuth; its headers cannot be set', () => {
  const listener = (tls: Record<string, unknown>, routes: unknown[] = [{ pool: 'db' }], protocol = 'https'): unknown => ({
    listeners: [{ name: 's', protocol, listen: '127.0.0.1:0', ...(protocol === 'https' ? { tls: { certificates: [{ cert: 'c.pem', key: 'k.pem' }], ...tls } } : {}), routes }],
    pools: [pool()],
  });
  assert.deepEqual(issues(listener({ clientAuth: { ca: 'ca.pem' } })), []);
  assert.deepEqual(issues(listener({ clientAuth: { ca: 'ca.pem', verify: 'optional', crl: 'crl.pem' } })), []);
  assert.deepEqual(issues(listener({ clientAuth: { ca: 'ca.pem', verify: 'sometimes' } })), [
    `listeners.0.tls.clientAuth.verify: must be one of required | optional, got "sometimes"`,
  ]);
  assert.equal(issues(listener({ clientAuth: { verify: 'optional' } }))[0], 'listeners.0.tls.clientAuth.ca: missing required key');
  assert.equal(issues(listener({ clientAuth: { ca: 'ca.pem', crls: 'x' } })).length, 1);
  const byCert = [{ match: { clientCert: 'verified' }, pool: 'db' }, { pool: 'db' }];
  assert.deepEqual(issues(listener({ clientAuth: { ca: 'ca.pem' } }, byCert)), []);
  assert.deepEqual(issues(listener({}, byCert)), ['listeners.0.routes.0.match.clientCert: matching on clientCert needs an https listener with tls.clientAuth']);
  assert.deepEqual(issues(listener({}, byCert, 'http')), ['listeners.0.routes.0.match.clientCert: matching on clientCert needs an https listener with tls.clientAuth']);
  assert.equal(issues(listener({ clientAuth: { ca: 'ca.pem' } }, [{ match: { clientCert: 'yes' }, pool: 'db' }])).length, 1);
  assert.deepEqual(issues(listener({}, [{ pool: 'db', headers: { request: { set: { 'X-Forwarded-Client-Cert': 'x' }, add: { 'x-client-verify': 'SUCCESS' } } } }])), [
    'listeners.0.routes.0.headers.request.set.X-Forwarded-Client-Cert: X-Forwarded-Client-Cert is written by Portico from the TLS client certificate (see tls.clientAuth)',
    'listeners.0.routes.0.headers.request.add.x-client-verify: x-client-verify is written by Portico from the TLS client certificate (see tls.clientAuth)',
  ]);
});
