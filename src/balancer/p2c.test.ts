import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SeededRng, type Rng } from '../core/rng.js';
import type { ServerId } from '../core/server.js';
import { powerOfTwoChoices } from './p2c.js';
import { makeDeps, makeServers, makeSet } from './testing.js';

/** An Rng that remembers its draws, to reconstruct the two candidates of each pick. */
class RecordingRng implements Rng {
  readonly draws: number[] = [];
  constructor(private readonly inner: SeededRng) {}
  next(): number {
    const v = this.inner.next();
    this.draws.push(v);
    return v;
  }
  nextInt(n: number): number {
    return Math.floor(this.next() * n);
  }
}

test('never picks the busier of its two candidates (equal weights, candidates reconstructed)', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 2, maxLength: 10 }), fc.integer(), (loads, seed) => {
      const servers = makeServers(loads.length);
      const rng = new RecordingRng(new SeededRng(seed));
      const deps = makeDeps({ rng });
      servers.forEach((s, i) => deps.counts.set(s.id, loads[i]!));
      const b = powerOfTwoChoices.build(makeSet(servers), undefined, deps);
      const n = loads.length;
      for (let k = 0; k < 50; k++) {
        rng.draws.length = 0;
        const got = servers.indexOf(b.pick({})!);
        assert.equal(rng.draws.length, 2);
        const i = Math.floor(rng.draws[0]! * n);
        let j = Math.floor(rng.draws[1]! * (n - 1));
        if (j >= i) j++;
        assert.ok(got === i || got === j, 'picked one of its two candidates');
        assert.ok(loads[got]! <= Math.min(loads[i]!, loads[j]!), `picked load ${loads[got]} of ${loads[i]}/${loads[j]}`);
      }
    }),
  );
});

test('weighted: of two servers the lighter by active/weight always wins; the unique busiest is never picked', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ w: fc.integer({ min: 1, max: 8 }), a: fc.integer({ min: 0, max: 30 }) }), { minLength: 2, maxLength: 8 }),
      fc.integer(),
      (specs, seed) => {
        const servers = makeServers(specs.length, (i) => specs[i]!.w);
        const deps = makeDeps({ seed });
        servers.forEach((s, i) => deps.counts.set(s.id, specs[i]!.a));
        const b = powerOfTwoChoices.build(makeSet(servers), undefined, deps);
        const load = (i: number) => specs[i]!.a / specs[i]!.w;
        const max = Math.max(...specs.map((_, i) => load(i)));
        const busiest = specs.map((_, i) => i).filter((i) => load(i) === max);
        for (let k = 0; k < 40; k++) {
          const got = servers.indexOf(b.pick({})!);
          if (specs.length === 2 && load(0) !== load(1)) assert.equal(got, load(0) < load(1) ? 0 : 1);
          if (busiest.length === 1) assert.notEqual(got, busiest[0]);
        }
      },
    ),
  );
});

test('idle servers are picked in proportion to weight', () => {
  const servers = makeServers(2, (i) => (i === 0 ? 3 : 1));
  const b = powerOfTwoChoices.build(makeSet(servers), undefined, makeDeps({ seed: 7 }));
  let first = 0;
  for (let k = 0; k < 40_000; k++) if (b.pick({}) === servers[0]) first++;
  assert.ok(Math.abs(first / 40_000 - 0.75) < 0.01, `share ${first / 40_000}`);
});

test('avoid-set: an avoided candidate loses; both avoided falls back to least connections', () => {
  const servers = makeServers(3);
  const deps = makeDeps({ seed: 3 });
  deps.counts.set(servers[2]!.id, 5);
  const b = powerOfTwoChoices.build(makeSet(servers), undefined, deps);
  const avoid = new Set<ServerId>([servers[0]!.id, servers[1]!.id]);
  for (let k = 0; k < 50; k++) assert.equal(b.pick({ avoid }), servers[2]);
});
