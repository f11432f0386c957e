import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EventQueue } from './event-queue.js';

const drain = (q: EventQueue): [number, number, number][] => {
  const out: [number, number, number][] = [];
  while (q.pop()) out.push([q.t, q.kind, q.arg]);
  return out;
};

test('events come out by time, and in scheduling order at equal times', () => {
  const q = new EventQueue(4);
  q.push(5, 1, 10);
  q.push(1, 2, 20);
  q.push(5, 3, 30);
  q.push(0.5, 4, 40);
  q.push(5, 5, 50);
  q.push(1, 6, 60);
  assert.equal(q.size, 6);
  assert.deepEqual(drain(q), [
    [0.5, 4, 40],
    [1, 2, 20],
    [1, 6, 60],
    [5, 1, 10],
    [5, 3, 30],
    [5, 5, 50],
  ]);
  assert.equal(q.pop(), false);
});

test('matches a stable sort for any interleaving of pushes and pops (grows past its capacity)', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
      const q = new EventQueue(1);
      let ref: { t: number; seq: number; arg: number }[] = [];
      let seq = 0;
      let now = 0;
      for (const op of ops) {
        if (op < 0) {
          const ok = q.pop();
          assert.equal(ok, ref.length > 0);
          if (!ok) continue;
          ref.sort((a, b) => a.t - b.t || a.seq - b.seq);
          const e = ref.shift()!;
          assert.equal(q.t, e.t);
          assert.equal(q.arg, e.arg);
          now = e.t;
        } else {
          // events are never scheduled in the past, as in the simulator
          const t = now + op;
          ref.push({ t, seq, arg: seq });
          q.push(t, 0, seq++);
        }
      }
      ref = ref.sort((a, b) => a.t - b.t || a.seq - b.seq);
      assert.deepEqual(
        drain(q).map(([t, , a]) => [t, a]),
        ref.map((e) => [e.t, e.arg]),
      );
    }),
    { numRuns: 200 },
  );
});

test('a NaN time is refused', () => {
  assert.throws(() => new EventQueue().push(NaN, 0, 0), RangeError);
});
