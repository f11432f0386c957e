import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import '../app/listener-kinds.js';
import '../balancer/index.js';
import { ConfigError } from './errors.js';
import { validateConfig } from './load.js';

const poolWith = (extra: Record<string, unknown>) => ({ pools: [{ name: 'p', servers: [{ name: 'a', address: '127.0.0.1:9101' }], ...extra }] });

test('every hash and lard option set the schema accepts, the algorithms accept too', () => {
  const hash = fc.record(
    {
      key: fc.constantFrom('source-ip', 'uri', 'header:X-User', 'cookie:sid', 'query:u'),
      method: fc.constantFrom('maglev', 'ring', 'jump'),
      boundedLoad: fc.double({ min: 1.01, max: 100, noNaN: true }),
    },
    { requiredKeys: [] },
  ).chain((h) =>
    fc.record(
      {
        tableSize: h.method === 'maglev' || h.method === undefined ? fc.constantFrom(7, 65537, 655373, 5000011) : fc.constant(undefined),
        vnodes: h.method === 'ring' ? fc.integer({ min: 1, max: 10_000 }) : fc.constant(undefined),
      },
      { requiredKeys: [] },
    ).map((extra) => ({ ...h, ...Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined)) })),
  );
  fc.assert(
    fc.property(hash, (h) => {
      validateConfig(poolWith({ balance: 'hash', hash: h }), { runnable: false });
    }),
  );
  const lard = fc
    .record({ low: fc.integer({ min: 1, max: 999_999 }), gap: fc.integer({ min: 1, max: 1000 }), replicate: fc.boolean(), shrinkAfter: fc.integer({ min: 0, max: 86_400_000 }), maxTargets: fc.integer({ min: 1, max: 10_000_000 }) })
    .map(({ low, gap, ...rest }) => ({ low, high: Math.min(low + gap, 1_000_000), ...rest }));
  fc.assert(
    fc.property(lard, (l) => {
      validateConfig(poolWith({ balance: 'lard', lard: l }), { runnable: false });
    }),
  );
});

test('hash options that belong to another method are refused', () => {
  const lines = (extra: Record<string, unknown>): string[] => {
    try {
      validateConfig(poolWith(extra), { runnable: false });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.lines();
    }
  };
  assert.deepEqual(lines({ balance: 'hash', hash: { method: 'ring', tableSize: 65537 } }), [
    '<object> pools.0.hash.tableSize: applies only to method maglev (method is ring)',
  ]);
  assert.deepEqual(lines({ balance: 'hash', hash: { vnodes: 100 } }), ['<object> pools.0.hash.vnodes: applies only to method ring (method is maglev)']);
  assert.deepEqual(lines({ balance: 'hash', hash: { tableSize: 65536 } }), [
    '<object> pools.0.hash.tableSize: expected a prime number 7-5000011 (e.g. 65537), got 65536',
  ]);
  assert.deepEqual(lines({ balance: 'hash', hash: { boundedLoad: 1 } }), ['<object> pools.0.hash.boundedLoad: expected a load factor above 1 such as 1.25, got 1']);
});
