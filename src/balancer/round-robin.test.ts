import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ServerId } from '../core/server.js';
import { MAX_PRECOMPUTED_PERIOD, roundRobin, smoothWrrSequence } from './round-robin.js';
import { makeDeps, makeServers, makeSet } from './testing.js';

const letters = (weights: number[], picks: number): string => {
  const servers = makeServers(weights.length, (i) => weights[i]!);
  const b = roundRobin.build(makeSet(servers), undefined, makeDeps());
  let out = '';
  for (let k = 0; k < picks; k++) out += 'abcdefgh'[servers.indexOf(b.pick({})!)];
  return out;
};

test('nginx interleaving: 5,1,1 gives a a b a c a a (and the other published vectors)', () => {
  assert.equal(letters([5, 1, 1], 7), 'aabacaa');
  assert.equal(letters([5, 1, 1], 14), 'aabacaaaabacaa');
  assert.equal(letters([3, 2, 1], 6), 'abacba');
  assert.equal(letters([4, 2, 1], 7), 'abacaba');
  assert.equal(letters([2, 1], 3), 'aba');
  assert.equal(letters([1, 1, 1], 6), 'abcabc');
});

/**
 * How far server i is from its share after L picks: count_i(L) - L*w_i/W = -cw_i/W, with cw_i its
 * current weight after the pick. The current weights sum to 0 after every pick, and a server's is
 * at least W/n - W just after it is picked (it was the largest of n values summing to W) and only
 * grows until its next pick. Hence no server is ever ahead of its share by more than (n-1)/n, and
 * none is behind by more than (n-1)^2/n (the others' deficits bound its surplus). Behind by at most
 * 1 is NOT a property of nginx's algorithm: see the next test.
 */
test('exact proportions per period; every prefix at most (n-1)/n ahead of its share and (n-1)^2/n behind', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 2, maxLength: 8 }), fc.integer({ min: 1, max: 3 }), (w, periods) => {
      const n = w.length;
      const W = w.reduce((a, b) => a + b, 0);
      const servers = makeServers(n, (i) => w[i]!);
      const b = roundRobin.build(makeSet(servers), undefined, makeDeps());
      const counts = new Array<number>(n).fill(0);
      const ahead = (n - 1) / n + 1e-9;
      const behind = ((n - 1) * (n - 1)) / n + 1e-9;
      for (let L = 1; L <= periods * W; L++) {
        counts[servers.indexOf(b.pick({})!)]!++;
        for (let i = 0; i < n; i++) {
          const d = counts[i]! - (L * w[i]!) / W;
          assert.ok(d <= ahead && -d <= behind, `prefix ${L}, server ${i}: ${d}`);
        }
      }
      assert.deepEqual(counts, w.map((x) => x * periods));
    }),
    { numRuns: 200 },
  );
});

test('nginx\'s sequence can fall more than one pick behind a share: weights 19,1,19,1,1', () => {
  // Worked out with the nginx loop (as smoothWrrSequence): at pick 26 the third server has 11 picks, its share is 26*19/41 = 12.05.
  const w = [19, 1, 19, 1, 1];
  const servers = makeServers(w.length, (i) => w[i]!);
  const b = roundRobin.build(makeSet(servers), undefined, makeDeps());
  let third = 0;
  for (let L = 1; L <= 26; L++) if (servers.indexOf(b.pick({})!) === 2) third++;
  assert.equal(third, 11);
  assert.ok((26 * 19) / 41 - third > 1);
  assert.deepEqual(Array.from(smoothWrrSequence(w, 26)).filter((x) => x === 2).length, 11);
});

test('weights beyond the precomputed period run the same sequence through the loop', () => {
  const w = [MAX_PRECOMPUTED_PERIOD, 3, 1]; // period 65540 > the limit
  const servers = makeServers(3, (i) => w[i]!);
  const b = roundRobin.build(makeSet(servers), undefined, makeDeps());
  const want = smoothWrrSequence(w, 70_000);
  for (let k = 0; k < want.length; k++) assert.equal(servers.indexOf(b.pick({})!), want[k], `pick ${k}`);
});

test('effective weights (deps.weightOf) are used, fractional ones too', () => {
  const servers = makeServers(2, () => 4);
  const b = roundRobin.build(makeSet(servers), undefined, makeDeps({ weightOf: (s) => (s.name === 's0' ? 1.5 : 0.5) }));
  const counts = [0, 0];
  for (let k = 0; k < 400; k++) counts[servers.indexOf(b.pick({})!)]!++;
  assert.deepEqual(counts, [300, 100]);
});

test('avoid-set: avoided servers are skipped, the others keep their order', () => {
  const servers = makeServers(3);
  const b = roundRobin.build(makeSet(servers), undefined, makeDeps());
  const avoid = new Set<ServerId>([servers[1]!.id]);
  const got = Array.from({ length: 6 }, () => b.pick({ avoid })!.name);
  assert.deepEqual(got, ['s0', 's2', 's0', 's2', 's0', 's2']);
  assert.equal(b.pick({ avoid: new Set(servers.map((s) => s.id)) }), undefined);
});

test('the position survives a rebuild through deps.carry', () => {
  const servers = makeServers(3);
  const deps = makeDeps();
  const b1 = roundRobin.build(makeSet(servers), undefined, deps);
  assert.deepEqual([b1.pick({})!.name, b1.pick({})!.name], ['s0', 's1']);
  const b2 = roundRobin.build(makeSet(servers), undefined, deps);
  assert.deepEqual([b2.pick({})!.name, b2.pick({})!.name], ['s2', 's0']);
});
