import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { RuntimeChange } from '../admin/journal.js';
import { deepEqual } from '../core/deep-equal.js';
import { applyDelta, diffChanges, parseDelta } from './runtime-delta.js';

const at = '2026-01-01T00:00:00.000Z';
const s = (server: string, rest: Record<string, unknown>): RuntimeChange => ({ kind: 'server', pool: 'web', server, at, ...rest }) as RuntimeChange;
const h = (health: Record<string, unknown>): RuntimeChange => ({ kind: 'health', pool: 'web', health, at });

/** Lists the admin API can produce, in turn. */
const lists: RuntimeChange[][] = [
  [],
  [s('a', { set: { state: 'drain' } })],
  [s('a', { set: { state: 'drain', weight: 3 } }), s('b', { removed: true })],
  [s('a', { set: { weight: 3 } }), s('b', { spec: { name: 'b', address: '127.0.0.1:1' } }), h({ type: 'tcp' })],
  [s('b', { spec: { name: 'b', address: '127.0.0.1:2' }, set: { maxConnections: 9 } }), h({ type: 'http', path: '/h' })],
  [],
];

describe('runtime deltas', () => {
  // The entries of a list, in a fixed order (a delta keeps the place of the entries it does not add).
  const sorted = (l: readonly RuntimeChange[]): RuntimeChange[] => [...l].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));

  it('the delta from one list to the next, applied to the first, gives the next (the same entries)', () => {
    for (const before of lists) {
      for (const after of lists) {
        const d = diffChanges(before, after);
        assert.ok(deepEqual(sorted(applyDelta(before, d)), sorted(after)), `${JSON.stringify(before)} -> ${JSON.stringify(after)}: ${JSON.stringify(applyDelta(before, d))}`);
        assert.deepEqual(parseDelta(JSON.parse(JSON.stringify(d))), JSON.parse(JSON.stringify(d)), 'a delta survives the store');
        if (deepEqual(before, after)) assert.deepEqual(d, []);
      }
    }
  });

  it('two deltas made from the same list touch only their own parts: applied in either order, both are in force', () => {
    const base = [s('a', { set: { state: 'drain' } })];
    const one = diffChanges(base, [s('a', { set: { state: 'drain', weight: 5 } })]);
    const two = diffChanges(base, [s('a', { set: { state: 'maint' } }), s('c', { removed: true })]);
    const want = [s('a', { set: { state: 'maint', weight: 5 } }), s('c', { removed: true })];
    assert.ok(deepEqual(applyDelta(applyDelta(base, one), two), want));
    assert.ok(deepEqual(applyDelta(applyDelta(base, two), one), want));
  });

  it('refuses deltas whose values the journal would refuse', () => {
    assert.equal(parseDelta('x'), undefined);
    assert.equal(parseDelta([{ kind: 'server', pool: 'web', server: 'a', at, set: { weight: 999 } }]), undefined);
    assert.equal(parseDelta([{ kind: 'server', pool: 'web', server: 'a', at, set: { colour: null } }]), undefined);
    assert.equal(parseDelta([{ kind: 'server', pool: 'web', server: 'a', at, removed: false }]), undefined);
    assert.equal(parseDelta([{ kind: 'health', pool: 'web', at, health: 'tcp' }]), undefined);
    assert.deepEqual(parseDelta([{ kind: 'server', pool: 'web', server: 'a', at, set: { weight: null, state: 'drain' } }]), [{ kind: 'server', pool: 'web', server: 'a', at, set: { weight: null, state: 'drain' } }]);
  });
});
