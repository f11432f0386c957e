import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Server, ServerId } from '../core/server.js';
import { lard, lardAdmissionLimit, LardTable } from './lard.js';
import { BalancerOptionsError } from './options.js';
import { makeDeps, makeServers, makeSet } from './testing.js';

test('admission limit S = (n − 1)·T_high + T_low − 1', () => {
  assert.equal(lardAdmissionLimit(4, 25, 65), 3 * 65 + 24);
  assert.equal(lardAdmissionLimit(1, 25, 65), 24);
  assert.equal(lardAdmissionLimit(0, 25, 65), 0);
});

for (const replicate of [false, true]) {
  const mode = replicate ? 'LARD/R' : 'LARD';

  test(`${mode}: no server ever holds more than 2·T_high while the admission limit holds`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.record({ target: fc.nat(6), completions: fc.nat(3), advanceMs: fc.nat(50) }), { minLength: 50, maxLength: 600 }),
        fc.boolean(),
        (n, steps, defaults) => {
          const [low, high] = defaults ? [25, 65] : [2, 5];
          const servers = makeServers(n);
          const deps = makeDeps();
          const b = lard.build(makeSet(servers), lard.parseOptions({ low, high, replicate, shrinkAfter: 100 }), deps);
          const S = lardAdmissionLimit(n, low, high);
          const inFlight: Server[] = [];
          for (const step of steps) {
            // the front end admits while fewer than S are in flight; hot targets come most often
            for (let burst = 0; burst < 8 && inFlight.length < S; burst++) {
              const s = b.pick({ path: `/t${step.target === 0 || burst % 2 === 0 ? 0 : step.target}` })!;
              deps.counts.inc(s.id);
              inFlight.push(s);
              assert.ok(deps.counts.active(s.id) <= 2 * high, `${s.name} at ${deps.counts.active(s.id)} > 2·${high}`);
            }
            for (let c = 0; c < step.completions && inFlight.length > 0; c++) {
              const k = (step.target * 7 + c) % inFlight.length;
              deps.counts.dec(inFlight[k]!.id);
              inFlight.splice(k, 1);
            }
            deps.clock.advance(step.advanceMs);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test(`${mode}: a target sticks to its server while that server is not overloaded`, () => {
    const servers = makeServers(4);
    const deps = makeDeps();
    const b = lard.build(makeSet(servers), lard.parseOptions({ replicate }), deps);
    const first = b.pick({ path: '/a' })!;
    for (let k = 0; k < 50; k++) {
      deps.counts.inc(first.id); // its load grows, still ≤ T_high = 65
      assert.equal(b.pick({ path: '/a' }), first);
    }
    const other = b.pick({ path: '/b' })!;
    assert.notEqual(other, first, 'a new target goes to the least loaded server');
  });
}

test('LARD: a target moves when its server is above T_high and another is below T_low, or at 2·T_high', () => {
  const servers = makeServers(2);
  const deps = makeDeps();
  const b = lard.build(makeSet(servers), lard.parseOptions({ low: 2, high: 4 }), deps);
  const a = b.pick({ path: '/x' })!;
  const other = servers.find((s) => s !== a)!;
  deps.counts.set(a.id, 5); // > high
  deps.counts.set(other.id, 2); // not < low
  assert.equal(b.pick({ path: '/x' }), a);
  deps.counts.set(other.id, 1); // < low
  assert.equal(b.pick({ path: '/x' }), other);
  assert.equal(b.pick({ path: '/x' }), other, 'the table now names the new server');
  deps.counts.set(other.id, 8); // 2·high
  deps.counts.set(a.id, 7);
  assert.equal(b.pick({ path: '/x' }), a);
});

test('LARD/R: the set grows under load and loses its most loaded member after shrinkAfter', () => {
  const servers = makeServers(3);
  const deps = makeDeps();
  const b = lard.build(makeSet(servers), lard.parseOptions({ low: 2, high: 4, replicate: true, shrinkAfter: '1s' }), deps);
  const first = b.pick({ path: '/x' })!;
  deps.counts.set(first.id, 5);
  const second = b.pick({ path: '/x' })!; // first > high and others < low: a second server joins
  assert.notEqual(second, first);
  deps.counts.set(second.id, 1);
  assert.equal(b.pick({ path: '/x' }), second, 'least loaded member of the set');
  deps.counts.set(second.id, 6);
  deps.counts.set(first.id, 3);
  assert.equal(b.pick({ path: '/x' }), first, 'both members are in the set');
  deps.clock.advance(1001);
  assert.equal(b.pick({ path: '/x' }), first); // the most loaded member (second) is dropped now
  deps.counts.set(first.id, 4);
  deps.counts.set(second.id, 0);
  assert.equal(b.pick({ path: '/x' }), first, 'second is no longer in the set');
});

test('the target table is an LRU bounded by maxTargets and survives rebuilds', () => {
  const t = new LardTable(false, 3);
  for (const k of ['a', 'b', 'c']) t.add(k).server = 'p/s0' as ServerId;
  t.get('a'); // b is now least recently used
  t.add('d');
  assert.equal(t.size, 3);
  assert.equal(t.get('b'), undefined);
  assert.notEqual(t.get('a'), undefined);

  const servers = makeServers(3);
  const deps = makeDeps();
  const opts = lard.parseOptions({ maxTargets: 100 });
  const b1 = lard.build(makeSet(servers), opts, deps);
  const where = b1.pick({ path: '/kept' })!;
  deps.counts.inc(where.id);
  const b2 = lard.build(makeSet(servers), opts, deps);
  assert.equal(b2.pick({ path: '/kept' }), where);
  for (let k = 0; k < 500; k++) b2.pick({ path: `/p${k}` });
  assert.equal((deps.carry.get('lard') as LardTable).size, 100);
});

test('lard options: clear errors', () => {
  assert.throws(() => lard.parseOptions({ low: 70, high: 65 }), (e: unknown) => e instanceof BalancerOptionsError && /low: must be below high/.test(e.message));
  assert.throws(() => lard.parseOptions({ shrinkAfter: 'soon' }), /shrinkAfter: must be a duration/);
  assert.throws(() => lard.parseOptions({ replicate: 'yes' }), /replicate: must be true or false/);
  assert.equal(lard.parseOptions({ shrinkAfter: '20s' }).shrinkAfterMs, 20_000);
});
