import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSizes, parseZipfSpec, zipfTrace } from './workload.js';

test('zipf and size specs: defaults, and every bad form refused with the expected shape', () => {
  assert.deepEqual(parseZipfSpec('zipf:0.8:1000:5000'), { alpha: 0.8, files: 1000, requests: 5000 });
  assert.deepEqual(parseZipfSpec('zipf:1'), { alpha: 1, files: 40_000, requests: 1_000_000 });
  for (const bad of ['zipf', 'zipf:', 'zipf:x', 'zipf:-1', 'zipf:1:0', 'zipf:1:10:1.5', 'uniform:1', 'zipf:1:2:3:4']) {
    assert.throws(() => parseZipfSpec(bad), /zipf/, bad);
  }
  assert.deepEqual(parseSizes('fixed:8192'), { kind: 'fixed', bytes: 8192 });
  assert.deepEqual(parseSizes('lognormal:6000:1.2'), { kind: 'lognormal', median: 6000, sigma: 1.2 });
  for (const bad of ['fixed', 'fixed:-1', 'lognormal:0:1', 'lognormal:100', 'pareto:1:2']) assert.throws(() => parseSizes(bad), /--sizes/, bad);
});

test('deterministic for a seed; different seeds differ', () => {
  const a = zipfTrace({ alpha: 0.9, files: 500, requests: 3000 }, { kind: 'lognormal', median: 5000, sigma: 1 }, 7);
  const b = zipfTrace({ alpha: 0.9, files: 500, requests: 3000 }, { kind: 'lognormal', median: 5000, sigma: 1 }, 7);
  const c = zipfTrace({ alpha: 0.9, files: 500, requests: 3000 }, { kind: 'lognormal', median: 5000, sigma: 1 }, 8);
  assert.deepEqual([...a.files], [...b.files]);
  assert.deepEqual([...a.fileSizes], [...b.fileSizes]);
  assert.notDeepEqual([...a.files], [...c.files]);
});

test('popularity follows 1/rank^alpha; each request sends its file', () => {
  const files = 100;
  const requests = 200_000;
  const t = zipfTrace({ alpha: 1, files, requests }, { kind: 'fixed', bytes: 1000 }, 1);
  const counts = new Array<number>(files).fill(0);
  for (const f of t.files) counts[f]!++;
  let h = 0;
  for (let r = 1; r <= files; r++) h += 1 / r;
  for (const rank of [1, 2, 10]) {
    const expected = requests / rank / h;
    const sd = Math.sqrt(expected);
    assert.ok(Math.abs(counts[rank - 1]! - expected) < 5 * sd, `rank ${rank}: ${counts[rank - 1]} vs ${expected.toFixed(0)}`);
  }
  assert.equal(t.paths[0], '/zipf/1');
  assert.ok(t.bytes.every((b) => b === 1000));
  assert.ok(t.fileSizes.every((b) => b === 1000));
});
