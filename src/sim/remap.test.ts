import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveAlgorithm } from './algorithms.js';
import { maglevTableStats, remap } from './remap.js';

const params = { low: 25, high: 65, bound: 1.25, table: 1009 };

test('ring and jump move only the failed server’s keys; maglev moves those and a few more', () => {
  const cfg = { servers: 10, keys: 5000, removals: 3, seed: 1 };
  for (const name of ['hash-ring', 'hash-jump']) {
    const r = remap(resolveAlgorithm(name, params), cfg);
    assert.equal(r.removeMoved, r.removeNecessary, name);
    assert.ok(r.removeNecessary > 0.05 && r.removeNecessary < 0.15, `${name}: ${r.removeNecessary}`);
  }
  const m = remap(resolveAlgorithm('hash-maglev', params), cfg);
  assert.ok(m.removeMoved >= m.removeNecessary);
  assert.ok(m.removeMoved < 2 * m.removeNecessary, `maglev moved ${m.removeMoved} for ${m.removeNecessary}`);
  assert.equal(m.removeIdeal, 0.1);
  assert.ok(m.addMoved >= 1 / 11 / 2 && m.addMoved < 0.3);
});

test('bounded loads: no server holds more than ceil(c · keys / n)', () => {
  const cfg = { servers: 10, keys: 3000, removals: 2, seed: 2 };
  const b = remap(resolveAlgorithm('hash-bounded', params), cfg);
  const cap = Math.ceil((1.25 * 3000) / 10);
  assert.ok(b.keysMaxAvg * 300 <= cap, `max ${b.keysMaxAvg * 300} > ${cap}`);
  assert.ok(b.keysMaxAvgAfterRemoval <= Math.ceil((1.25 * 3000) / 9) / (3000 / 9) + 1e-9);
  const plain = remap(resolveAlgorithm('hash-maglev', params), cfg);
  assert.ok(plain.keysMaxAvg > b.keysMaxAvg, 'plain hashing is less even than the bound');
});

test('maglev table: every server holds floor(M/N) or ceil(M/N) entries; removals change at least the removed share', () => {
  const t = maglevTableStats(7, 1009);
  assert.ok(t.minEntries >= Math.floor(1009 / 7) && t.maxEntries <= Math.ceil(1009 / 7), `${t.minEntries}..${t.maxEntries}`);
  assert.ok(Math.abs(t.removeNecessaryMean - 1 / 7) < 1e-9);
  assert.ok(t.removeChangedMean >= t.removeNecessaryMean);
  assert.ok(Math.abs(t.removeExcessMean - (t.removeChangedMean - t.removeNecessaryMean)) < 1e-12);
});
