import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hash } from './hash.js';
import { lard } from './lard.js';
import { makeDeps, makeServers, makeSet } from './testing.js';

/** Slow start reaches jump hashing and LARD too (maglev and ring use effective weights directly). */

const servers = makeServers(4, () => 10);
const set = makeSet(servers);
const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);

function jumpOwners(effective: number): Map<string, string> {
  const deps = makeDeps({ weightOf: (s) => (s.name === 's0' ? effective : s.weight) });
  const b = hash.build(set, hash.parseOptions({ key: 'header:x-user', method: 'jump' }), deps);
  const out = new Map<string, string>();
  for (const k of keys) out.set(k, b.pick({ hashKey: k })!.name);
  return out;
}

test('jump: a ramping server takes a share of its keys proportional to its ramp, and keeps them as it grows', () => {
  const full = jumpOwners(10);
  const tenth = jumpOwners(1);
  const half = jumpOwners(5);
  const ownedFull = keys.filter((k) => full.get(k) === 's0');
  const share = (m: Map<string, string>): number => ownedFull.filter((k) => m.get(k) === 's0').length / ownedFull.length;
  assert.ok(Math.abs(ownedFull.length / keys.length - 0.25) < 0.02);
  assert.ok(Math.abs(share(tenth) - 0.1) < 0.02, `at 10% it kept ${share(tenth)}`);
  assert.ok(Math.abs(share(half) - 0.5) < 0.03, `at 50% it kept ${share(half)}`);
  // monotone: every key s0 holds at 10% it still holds at 50% and at 100%
  for (const k of keys) if (tenth.get(k) === 's0') assert.equal(half.get(k), 's0');
  // it never takes a key it would not own at full weight; other keys do not move
  for (const k of keys) {
    if (tenth.get(k) === 's0') assert.equal(full.get(k), 's0');
    if (full.get(k) !== 's0') assert.equal(tenth.get(k), full.get(k));
  }
});

test('lard: a ramping server counts its load scaled up, so it takes fewer new targets', () => {
  const pickCounts = (effective: number): number => {
    const deps = makeDeps({ weightOf: (s) => (s.name === 's0' ? effective : s.weight) });
    const b = lard.build(set, lard.parseOptions({}), deps);
    let n = 0;
    // every target stays in flight: load grows, so least-loaded choices spread the targets
    for (let i = 0; i < 200; i++) {
      const s = b.pick({ path: `/t${i}` })!;
      deps.counts.map.set(s.id, (deps.counts.map.get(s.id) ?? 0) + 1);
      if (s.name === 's0') n++;
    }
    return n;
  };
  const full = pickCounts(10);
  const ramping = pickCounts(1);
  assert.ok(Math.abs(full - 50) <= 2, `full weight: ${full} of 200`);
  assert.ok(ramping < full / 4, `ramping at 10%: ${ramping} of 200 (full ${full})`);
  assert.ok(ramping > 0, 'a ramping server still takes some targets');
});
