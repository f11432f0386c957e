import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import fc from 'fast-check';
import { FINE_BUCKETS, PROM_BUCKETS_SEC, fineBucket, fineLowerMs, fineQuantile, fineUpperMs, promBucket } from './latency.js';

it('a value falls in the fine bucket whose bounds hold it', () => {
  fc.assert(
    fc.property(fc.double({ min: 0.07, max: 60_000, noNaN: true }), (ms) => {
      const i = fineBucket(ms);
      assert.ok(fineLowerMs(i) < ms && ms <= fineUpperMs(i), `${ms} in bucket ${i} (${fineLowerMs(i)}, ${fineUpperMs(i)}]`);
    }),
  );
  assert.equal(fineBucket(0), 0);
  assert.equal(fineBucket(1), 16);
  assert.equal(fineUpperMs(16), 1);
  assert.equal(fineBucket(1e9), FINE_BUCKETS - 1);
});

it('a quantile of a fine histogram is within one bucket (19%) of the exact one', () => {
  const values = Array.from({ length: 1000 }, (_, i) => 0.5 + i * 0.37); // 0.5 .. 370 ms
  const counts = new Float64Array(FINE_BUCKETS);
  for (const v of values) counts[fineBucket(v)]!++;
  for (const q of [0.5, 0.9, 0.99]) {
    const exact = values[Math.ceil(q * values.length) - 1]!;
    const got = fineQuantile(counts, q);
    assert.ok(Math.abs(got - exact) / exact < 0.19, `q${q}: ${got} vs ${exact}`);
  }
  assert.ok(Number.isNaN(fineQuantile(new Float64Array(FINE_BUCKETS), 0.5)));
});

it('Prometheus buckets: le is inclusive and the last index is +Inf', () => {
  assert.equal(promBucket(0.3), 0);
  assert.equal(promBucket(0.5), 0);
  assert.equal(promBucket(0.6), 1);
  assert.equal(promBucket(1000), PROM_BUCKETS_SEC.indexOf(1));
  assert.equal(promBucket(40_000), PROM_BUCKETS_SEC.length);
});
