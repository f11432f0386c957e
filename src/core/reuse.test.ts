import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { Reuse } from './reuse.js';

it('keeps a value while its spec is unchanged and builds anew when it changes', () => {
  const r = Reuse.byName<{ n: number }>();
  let built = 0;
  const make = () => ({ n: ++built });
  const a = r.get('p', { ttl: 5, size: [1, 2] }, make);
  assert.equal(r.get('p', { ttl: 5, size: [1, 2] }, make), a);
  assert.equal(built, 1);
  const b = r.get('p', { ttl: 6, size: [1, 2] }, make);
  assert.notEqual(b, a);
  assert.equal(built, 2);
  assert.equal(r.get('q', { ttl: 6, size: [1, 2] }, make).n, 3, 'each key has its own value');
  r.delete('p');
  assert.equal(r.get('p', { ttl: 6, size: [1, 2] }, make).n, 4, 'a deleted key builds anew');
});

it('holds answers whether a key was built from a spec; byObject keys by identity', () => {
  const r = Reuse.byObject<object, true>();
  const k1 = {};
  const k2 = {};
  r.set(k1, { cert: 'a' }, true);
  assert.ok(r.holds(k1, { cert: 'a' }));
  assert.ok(!r.holds(k1, { cert: 'b' }));
  assert.ok(!r.holds(k2, { cert: 'a' }));
  assert.ok(!r.holds(k1, false));
});
