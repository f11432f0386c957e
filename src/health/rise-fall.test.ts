import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import fc from 'fast-check';
import { DOWN, STARTING, UP, isChanging, observe, type Health } from './rise-fall.js';

const thresholds = fc.record({ rise: fc.integer({ min: 1, max: 10 }), fall: fc.integer({ min: 1, max: 10 }) });
const start = fc.constantFrom<Health>(UP, DOWN, STARTING);

function run(h: Health, results: readonly boolean[], t: { rise: number; fall: number }): { h: Health; flips: number[] } {
  const flips: number[] = [];
  results.forEach((ok, i) => {
    const o = observe(h, ok, t);
    if (o.flipped) flips.push(i);
    assert.equal(o.flipped, o.next.state !== h.state);
    h = o.next;
  });
  return { h, flips };
}

it('an up server goes down exactly at the fall-th consecutive failure, not before', () => {
  fc.assert(
    fc.property(thresholds, ({ rise, fall }) => {
      const { h, flips } = run(UP, Array<boolean>(fall).fill(false), { rise, fall });
      assert.deepEqual(flips, [fall - 1]);
      assert.equal(h.state, 'down');
    }),
  );
});

it('a down server comes up exactly at the rise-th consecutive success, not before', () => {
  fc.assert(
    fc.property(thresholds, ({ rise, fall }) => {
      const { h, flips } = run(DOWN, Array<boolean>(rise).fill(true), { rise, fall });
      assert.deepEqual(flips, [rise - 1]);
      assert.equal(h.state, 'up');
    }),
  );
});

it('a flip happens only after `threshold` consecutive disagreeing results; agreeing results reset the streak', () => {
  fc.assert(
    fc.property(thresholds, start, fc.array(fc.boolean(), { maxLength: 60 }), (t, h0, results) => {
      let h = h0;
      let run = 0; // consecutive results disagreeing with the state
      for (const ok of results) {
        const before = h.state;
        const o = observe(h, ok, t);
        if (before === 'starting') {
          assert.ok(o.flipped);
          assert.equal(o.next.state, ok ? 'up' : 'down');
          run = 0;
        } else if (ok === (before === 'up')) {
          assert.ok(!o.flipped);
          assert.equal(o.next.streak, 0);
          run = 0;
        } else {
          run++;
          const need = ok ? t.rise : t.fall;
          assert.equal(o.flipped, run === need, `run ${run}, need ${need}`);
          if (o.flipped) run = 0;
          else assert.equal(o.next.streak, run);
        }
        h = o.next;
      }
    }),
  );
});

it('a starting server is decided by its first probe; a state with a streak is changing', () => {
  assert.equal(observe(STARTING, true, { rise: 5, fall: 5 }).next.state, 'up');
  assert.equal(observe(STARTING, false, { rise: 5, fall: 5 }).next.state, 'down');
  assert.ok(isChanging(STARTING));
  assert.ok(!isChanging(UP));
  assert.ok(isChanging(observe(UP, false, { rise: 2, fall: 3 }).next));
});
