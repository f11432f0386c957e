import { test } from 'node:test';
import assert from 'node:assert/strict';
import { invalidatedTargets, parseCacheControl, setPolicyClock, storeDecision, StoredPolicy, type Fields } from './policy.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
let now = T0;
setPolicyClock(() => now);
const date = new Date(T0).toUTCString();

function req(headers: Fields = {}, method = 'GET', url = '/x') {
  return { method, url, headers: { host: 'a.example', ...headers } };
}
function res(headers: Fields, status = 200) {
  return { status, headers: { date, ...headers } };
}
function stored(reqH: Fields, resH: Fields, status = 200): StoredPolicy {
  now = T0;
  const d = storeDecision(req(reqH), res(resH, status));
  assert.ok('policy' in d, `expected storable, got ${JSON.stringify(d)}`);
  return d.policy;
}
function notStored(reqH: Fields, resH: Fields, status = 200, method = 'GET'): string {
  const d = storeDecision(req(reqH, method), res(resH, status));
  assert.ok('notStored' in d, 'expected not stored');
  return d.notStored;
}

test('parseCacheControl: names lower-cased, quoted values unquoted, flags true', () => {
  assert.deepEqual(parseCacheControl('Max-Age=60, no-cache="set-cookie", public'), { 'max-age': '60', 'no-cache': 'set-cookie', public: true });
});

test('RFC 9111 §3: only GET responses are stored', () => {
  assert.equal(notStored({}, { 'cache-control': 'max-age=60' }, 200, 'POST'), 'method');
  assert.equal(notStored({}, { 'cache-control': 'max-age=60' }, 200, 'HEAD'), 'method');
});

test('RFC 9111 §3: a status the cache does not understand (206, 500) is not stored', () => {
  assert.equal(notStored({}, { 'cache-control': 'max-age=60' }, 206), 'status');
  assert.equal(notStored({}, { 'cache-control': 'max-age=60' }, 500), 'status');
});

test('RFC 9111 §5.2.1.5 / §5.2.2.5: no-store in the request or the response', () => {
  assert.equal(notStored({ 'cache-control': 'no-store' }, { 'cache-control': 'max-age=60' }), 'no-store');
  assert.equal(notStored({}, { 'cache-control': 'no-store, max-age=60' }), 'no-store');
});

test('RFC 9111 §5.2.2.7: private is never stored by a shared cache', () => {
  assert.equal(notStored({}, { 'cache-control': 'private, max-age=60' }), 'private');
});

test('SPEC §11: a response with Set-Cookie is never stored, even public', () => {
  assert.equal(notStored({}, { 'cache-control': 'public, max-age=60', 'set-cookie': 'a=1' }), 'set-cookie');
});

test('RFC 9111 §4.1: Vary: * is never stored', () => {
  assert.equal(notStored({}, { 'cache-control': 'max-age=60', vary: 'Accept, *' }), 'vary-star');
});

test('RFC 9111 §3.5: a request with Authorization is stored only with public, s-maxage or must-revalidate', () => {
  assert.equal(notStored({ authorization: 'Bearer x' }, { 'cache-control': 'max-age=60' }), 'authorization');
  stored({ authorization: 'Bearer x' }, { 'cache-control': 'public, max-age=60' });
  stored({ authorization: 'Bearer x' }, { 'cache-control': 's-maxage=60' });
  stored({ authorization: 'Bearer x' }, { 'cache-control': 'must-revalidate, max-age=60' });
});

test('RFC 9111 §4.2.1: s-maxage wins over max-age and Expires in a shared cache', () => {
  const p = stored({}, { 'cache-control': 'max-age=10, s-maxage=100', expires: new Date(T0 + 5000).toUTCString() });
  assert.equal(p.lifetime(), 100);
  const q = stored({}, { 'cache-control': 'max-age=10', expires: new Date(T0 + 5000_000).toUTCString() });
  assert.equal(q.lifetime(), 10);
});

test('RFC 9111 §4.2.2: heuristic freshness from Last-Modified for a status cacheable by default', () => {
  const p = stored({}, { 'last-modified': new Date(T0 - 1000_000).toUTCString() });
  assert.equal(Math.round(p.lifetime()), 100);
});

test('RFC 9111 §4.2.2: no heuristic and no validator: not stored', () => {
  assert.equal(notStored({}, {}), 'no-freshness');
  // 302 is not heuristically cacheable: without explicit freshness it is not worth storing.
  assert.equal(notStored({}, { location: '/y' }, 302), 'no-freshness');
});

test('RFC 9111 §4.2.3: age counts the Age received plus the time resident', () => {
  const p = stored({}, { 'cache-control': 'max-age=100', age: '10' });
  now = T0 + 5_000;
  assert.equal(p.age(), 15);
  assert.equal(p.responseHeaders()['age'], '15');
});

test('RFC 9111 §4.2: fresh until the lifetime, then revalidate', () => {
  const p = stored({}, { 'cache-control': 'max-age=10', etag: '"v1"' });
  now = T0 + 9_000;
  assert.equal(p.evaluate(req()), 'fresh');
  now = T0 + 11_000;
  assert.equal(p.evaluate(req()), 'revalidate');
});

test('RFC 9111 §5.2.2.4: no-cache is stored but always revalidated', () => {
  const p = stored({}, { 'cache-control': 'no-cache, max-age=100', etag: '"v1"' });
  assert.equal(p.evaluate(req()), 'revalidate');
  assert.equal(notStored({}, { 'cache-control': 'no-cache, max-age=100' }), 'no-freshness');
});

test('RFC 9111 §5.2.2.2: must-revalidate serves fresh content but never stale', () => {
  const p = stored({}, { 'cache-control': 'max-age=10, must-revalidate, stale-while-revalidate=100, stale-if-error=100', etag: '"a"' });
  now = T0 + 5_000;
  assert.equal(p.evaluate(req()), 'fresh');
  now = T0 + 20_000;
  assert.equal(p.evaluate(req()), 'revalidate');
  assert.equal(p.staleIfError(), false);
});

test('RFC 9111 §5.2.1: request directives no-cache, max-age, min-fresh, max-stale', () => {
  const p = stored({}, { 'cache-control': 'max-age=100', etag: '"a"' });
  now = T0 + 50_000;
  assert.equal(p.evaluate(req({ 'cache-control': 'no-cache' })), 'revalidate');
  assert.equal(p.evaluate(req({ pragma: 'no-cache' })), 'revalidate');
  assert.equal(p.evaluate(req({ 'cache-control': 'max-age=30' })), 'revalidate');
  assert.equal(p.evaluate(req({ 'cache-control': 'min-fresh=60' })), 'revalidate');
  now = T0 + 120_000;
  assert.equal(p.evaluate(req({ 'cache-control': 'max-stale=30' })), 'fresh');
  assert.equal(p.evaluate(req({ 'cache-control': 'max-stale=10' })), 'revalidate');
});

test('RFC 5861 §3: stale-while-revalidate only within its window', () => {
  const p = stored({}, { 'cache-control': 'max-age=10, stale-while-revalidate=30', etag: '"a"' });
  now = T0 + 20_000;
  assert.equal(p.evaluate(req()), 'stale-while-revalidate');
  now = T0 + 41_000;
  assert.equal(p.evaluate(req()), 'revalidate');
});

test('RFC 5861 §4: stale-if-error only within its window and only with the permission', () => {
  const p = stored({}, { 'cache-control': 'max-age=10, stale-if-error=30', etag: '"a"' });
  now = T0 + 20_000;
  assert.equal(p.staleIfError(), true);
  now = T0 + 41_000;
  assert.equal(p.staleIfError(), false);
  const q = stored({}, { 'cache-control': 'max-age=10', etag: '"a"' });
  now = T0 + 20_000;
  assert.equal(q.staleIfError(), false);
});

test('RFC 9111 §4.3.1: validators are the stored ETag and Last-Modified only', () => {
  const lm = new Date(T0 - 1000).toUTCString();
  const p = stored({}, { 'cache-control': 'max-age=1', etag: '"v1"', 'last-modified': lm });
  assert.deepEqual(p.validators(), { 'if-none-match': '"v1"', 'if-modified-since': lm });
});

test('RFC 9111 §4.3.4: a 304 refreshes the stored head and keeps the body', () => {
  const p = stored({}, { 'cache-control': 'max-age=10', etag: '"v1"', 'x-a': '1' });
  now = T0 + 20_000;
  const r = p.revalidated(req(), { status: 304, headers: { date: new Date(now).toUTCString(), etag: '"v1"', 'cache-control': 'max-age=60', 'x-a': '2' } });
  assert.equal(r.modified, false);
  assert.equal(r.policy.storedHeaders()['x-a'], '2');
  assert.equal(r.policy.evaluate(req()), 'fresh');
  assert.equal(r.policy.status(), 200);
});

test('policies survive toObject/fromObject (the shared tier)', () => {
  const p = stored({}, { 'cache-control': 'max-age=10, stale-if-error=30', etag: '"a"' });
  const q = StoredPolicy.fromObject(JSON.parse(JSON.stringify(p.toObject())) as object);
  now = T0 + 20_000;
  assert.equal(q.evaluate(req()), 'revalidate');
  assert.equal(q.staleIfError(), true);
  assert.equal(q.storedHeaders()['etag'], '"a"');
});

test('RFC 9111 §4.4: unsafe methods invalidate the target, Location and Content-Location on the same host', () => {
  assert.deepEqual(invalidatedTargets('POST', 201, '/a', { location: '/b', 'content-location': 'http://a.example/c?x=1' }, 'a.example'), ['/a', '/b', '/c?x=1']);
  assert.deepEqual(invalidatedTargets('PUT', 200, '/a', { location: 'http://other.example/b' }, 'a.example'), ['/a']);
  assert.deepEqual(invalidatedTargets('DELETE', 500, '/a', {}, 'a.example'), []);
  assert.deepEqual(invalidatedTargets('GET', 200, '/a', {}, 'a.example'), []);
});
