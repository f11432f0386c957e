import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { primaryKey, variantKey, parseVary, normaliseFieldValue } from './key.js';
import { setPolicyClock, storeDecision, type Fields, type StoredPolicy } from './policy.js';
import { MemoryStore } from './store.js';

setPolicyClock(() => Date.parse('2026-12-01T00:00:00Z'));

function policy(headers: Fields = {}, reqH: Fields = {}): StoredPolicy {
  const d = storeDecision({ method: 'GET', url: '/', headers: { host: 'a', ...reqH } }, { status: 200, headers: { 'cache-control': 'max-age=60', ...headers } });
  assert.ok('policy' in d);
  return d.policy;
}
const body = (n: number) => [Buffer.alloc(n, 97)];

test('key: Vary names parsed, * wins; values normalised per field', () => {
  assert.deepEqual(parseVary('Accept-Encoding, accept-encoding ,User-Agent'), ['accept-encoding', 'user-agent']);
  assert.deepEqual(parseVary('a, *'), ['*']);
  assert.equal(normaliseFieldValue('accept-encoding', ' GZIP ,  br'), 'gzip,br');
  assert.equal(normaliseFieldValue('cookie', 'A=1;  B=2'), 'A=1; B=2');
  assert.equal(variantKey(['accept-encoding'], { 'accept-encoding': 'gzip, br' }), variantKey(['accept-encoding'], { 'accept-encoding': 'gzip,br' }));
  assert.notEqual(variantKey(['accept-encoding'], { 'accept-encoding': 'gzip' }), variantKey(['accept-encoding'], {}));
  assert.equal(primaryKey('A.Example', '/x?y'), 'a.example/x?y');
});

test('store: variants by Vary are found by their own request fields', () => {
  const s = new MemoryStore({ maxBytes: 1 << 20, maxObjectSize: 1 << 16 });
  const k = primaryKey('a', '/x');
  s.insert(k, { 'accept-language': 'en' }, policy({ vary: 'Accept-Language', 'content-language': 'en' }), body(10), 10);
  s.insert(k, { 'accept-language': 'fr' }, policy({ vary: 'Accept-Language', 'content-language': 'fr' }), body(10), 10);
  assert.equal(s.entries, 2);
  assert.equal(s.lookup(k, { 'accept-language': 'fr' })?.policy.storedHeaders()['content-language'], 'fr');
  assert.equal(s.lookup(k, { 'accept-language': 'EN' })?.policy.storedHeaders()['content-language'], 'en');
  assert.equal(s.lookup(k, { 'accept-language': 'de' }), undefined);
});

test('store: a response that varies on other fields drops the old variants', () => {
  const s = new MemoryStore({ maxBytes: 1 << 20, maxObjectSize: 1 << 16 });
  const k = primaryKey('a', '/x');
  s.insert(k, { 'accept-language': 'en' }, policy({ vary: 'Accept-Language' }), body(10), 10);
  s.insert(k, { 'accept-encoding': 'gzip' }, policy({ vary: 'Accept-Encoding' }), body(10), 10);
  assert.equal(s.entries, 1);
  assert.ok(s.lookup(k, { 'accept-encoding': 'gzip' }));
});

test('store: a response stored again for the same key and variant replaces the old one and is found (a refresh\'s 200)', () => {
  const s = new MemoryStore({ maxBytes: 1 << 20, maxObjectSize: 1 << 16 });
  const first = s.insert('a/x', {}, policy({ etag: '"1"' }), body(10), 10)!;
  const second = s.insert('a/x', {}, policy({ etag: '"2"' }), body(20), 20)!;
  assert.notEqual(first, second);
  assert.equal(s.entries, 1);
  assert.equal(s.lookup('a/x', {}), second);
  assert.equal(s.bytes, second.size);
  // One variant of several replaced: the others stay.
  s.insert('a/v', { 'accept-language': 'en' }, policy({ vary: 'Accept-Language', etag: '"en1"' }), body(10), 10);
  s.insert('a/v', { 'accept-language': 'fr' }, policy({ vary: 'Accept-Language', etag: '"fr"' }), body(10), 10);
  s.insert('a/v', { 'accept-language': 'en' }, policy({ vary: 'Accept-Language', etag: '"en2"' }), body(10), 10);
  assert.equal(s.lookup('a/v', { 'accept-language': 'en' })?.policy.storedHeaders()['etag'], '"en2"');
  assert.equal(s.lookup('a/v', { 'accept-language': 'fr' })?.policy.storedHeaders()['etag'], '"fr"');
  assert.equal(s.entries, 3);
});

test('store: maxObjectSize refuses larger objects; LRU by bytes evicts the least recently used', () => {
  const s = new MemoryStore({ maxBytes: 3000, maxObjectSize: 1000 });
  assert.equal(s.insert('a/big', {}, policy(), body(1001), 1001), undefined);
  s.insert('a/1', {}, policy(), body(900), 900);
  s.insert('a/2', {}, policy(), body(900), 900);
  s.insert('a/3', {}, policy(), body(900), 900);
  assert.ok(s.lookup('a/1', {})); // 1 is now the most recently used
  s.insert('a/4', {}, policy(), body(900), 900);
  assert.equal(s.lookup('a/2', {}), undefined);
  assert.ok(s.lookup('a/1', {}));
  assert.ok(s.bytes <= 3000);
  assert.equal(s.counters.evictions, 1);
});

test('store property: eviction follows the exact least-recently-used order whatever the lookups, inserts and removals (repeated hits of the newest included)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('lookup', 'lookup', 'insert', 'remove'), fc.integer({ min: 0, max: 5 })), { maxLength: 80 }),
      (ops) => {
        const s = new MemoryStore({ maxBytes: 1 << 20, maxObjectSize: 1000 });
        const order: string[] = []; // the model: least recently used first
        const use = (k: string) => {
          const i = order.indexOf(k);
          if (i >= 0) order.splice(i, 1);
          order.push(k);
        };
        for (const [op, n] of ops) {
          const k = 'a/' + n;
          if (op === 'insert') {
            s.insert(k, {}, policy(), body(10), 10);
            use(k);
          } else if (op === 'lookup') {
            if (s.lookup(k, {}) !== undefined) use(k);
          } else if (s.purgeKey(k) > 0) order.splice(order.indexOf(k), 1);
        }
        // prune() visits the objects in the store's LRU order, the order eviction takes them in.
        const lru: string[] = [];
        s.prune((o) => {
          lru.push(o.key);
          return false;
        });
        assert.deepEqual(lru, order);
      },
    ),
  );
});

test('store: purge by URL (every variant, every host), by host URL, by prefix, by tag', () => {
  const s = new MemoryStore({ maxBytes: 1 << 20, maxObjectSize: 1 << 16 });
  s.insert('a/x', { 'accept-encoding': 'gzip' }, policy({ vary: 'Accept-Encoding' }), body(1), 1);
  s.insert('a/x', { 'accept-encoding': 'br' }, policy({ vary: 'Accept-Encoding' }), body(1), 1);
  s.insert('b/x', {}, policy(), body(1), 1);
  s.insert('a/img/1', {}, policy({ 'surrogate-key': 'img  product-7' }), body(1), 1);
  s.insert('a/img/2', {}, policy({ 'surrogate-key': 'img' }), body(1), 1);
  s.insert('a/other', {}, policy({ 'surrogate-key': 'product-7' }), body(1), 1);
  assert.equal(s.purgeUrl('http://b/x'), 1);
  assert.equal(s.purgeUrl('/x'), 2);
  assert.equal(s.purgeTag('product-7'), 2);
  assert.equal(s.purgePrefix('/img/'), 1);
  assert.equal(s.entries, 0);
  assert.equal(s.bytes, 0);
});

test('store property: bytes always equal the sum of live objects and stay under maxBytes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ op: fc.constantFrom('insert', 'lookup', 'purge', 'tag'), k: fc.integer({ min: 0, max: 6 }), n: fc.integer({ min: 0, max: 700 }) }), { maxLength: 80 }),
      (ops) => {
        const s = new MemoryStore({ maxBytes: 2500, maxObjectSize: 600 });
        const p = policy({ 'surrogate-key': 't' });
        for (const o of ops) {
          const key = `h/${o.k}`;
          if (o.op === 'insert') s.insert(key, {}, p, body(o.n), o.n);
          else if (o.op === 'lookup') s.lookup(key, {});
          else if (o.op === 'purge') s.purgeUrl(`/${o.k}`);
          else s.purgeTag('t');
        }
        let sum = 0;
        s.prune((o) => {
          sum += o.size;
          return false;
        });
        assert.equal(s.bytes, sum);
        assert.ok(s.bytes <= 2500);
      },
    ),
  );
});

test('store: a compressed variant kept with an object counts in its bytes, is evicted with it, and is refused past maxObjectSize', () => {
  const s = new MemoryStore({ maxBytes: 4000, maxObjectSize: 1000 });
  const a = s.insert(primaryKey('a', '/a'), {}, policy(), body(500), 500)!;
  const before = s.bytes;
  assert.equal(s.addVariant(a, 'gzip/5', Buffer.alloc(100)), true);
  assert.ok(s.bytes >= before + 100);
  assert.equal(s.lookup(primaryKey('a', '/a'), {})?.variants?.get('gzip/5')?.length, 100);
  assert.equal(s.addVariant(a, 'gzip/5', Buffer.alloc(50)), false, 'kept once');
  assert.equal(s.addVariant(a, 'br/5', Buffer.alloc(1001)), false, 'larger than maxObjectSize');
  // Filling the store evicts the least recently used object, variants and all.
  const b = s.insert(primaryKey('a', '/b'), {}, policy(), body(900), 900)!;
  for (let i = 0; i < 3; i++) s.insert(primaryKey('a', '/c' + i), {}, policy(), body(900), 900);
  assert.equal(s.lookup(primaryKey('a', '/a'), {}), undefined);
  assert.ok(s.bytes <= 4000);
  assert.equal(s.addVariant(a, 'br/5', Buffer.alloc(10)), false, 'the object is gone');
  s.remove(b);
  let sum = 0;
  for (const k of ['/c0', '/c1', '/c2']) sum += s.lookup(primaryKey('a', k), {})?.size ?? 0;
  assert.equal(s.bytes, sum, 'bytes are the sizes of the objects held');
});
