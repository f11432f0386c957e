import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { MemoryStore } from './memory-store.js';
import { stateStoreSuite } from './state-store.suite.js';

stateStoreSuite('MemoryStore', async () => new MemoryStore());

describe('MemoryStore', () => {
  it('keeps at most maxKeys keys, evicting the least recently used', async () => {
    const s = new MemoryStore({ maxKeys: 3 });
    await s.set('a', '1');
    await s.set('b', '2');
    await s.set('c', '3');
    assert.equal(await s.get('a'), '1'); // a is now the most recently used
    await s.set('d', '4'); // evicts b
    assert.equal(s.size, 3);
    assert.equal(await s.get('b'), undefined);
    assert.equal(await s.get('a'), '1');
    assert.equal(await s.get('c'), '3');
    assert.equal(await s.get('d'), '4');
    await s.incr('e', 1); // a counter is a key too: evicts a (least recently used after the reads above)
    assert.equal(s.size, 3);
    assert.equal(await s.get('a'), undefined);
  });

  it('expires keys by its clock, to the millisecond', async () => {
    const clock = new ManualClock(1000);
    const s = new MemoryStore({ clock });
    await s.set('k', 'v', 500);
    clock.advance(499);
    assert.equal(await s.get('k'), 'v');
    clock.advance(1);
    assert.equal(await s.get('k'), undefined);
    assert.equal(s.size, 0, 'an expired key read is dropped');
  });

  it('an expired counter starts again from zero with its new TTL', async () => {
    const clock = new ManualClock(0);
    const s = new MemoryStore({ clock });
    assert.equal(await s.incr('c', 2, 100), 2);
    clock.advance(100);
    assert.equal(await s.incr('c', 2, 100), 2);
    clock.advance(99);
    assert.equal(await s.get('c'), '2');
  });

  it('refuses every operation once closed', async () => {
    const s = new MemoryStore();
    await s.set('k', 'v');
    await s.close();
    await assert.rejects(s.get('k'), /closed/);
    await assert.rejects(s.set('k', 'v'), /closed/);
    await assert.rejects(s.incr('k', 1), /closed/);
    await assert.rejects(s.publish('c', 'm'), /closed/);
  });

  it('refuses a maxKeys below 1 and an incr by a non-integer', async () => {
    assert.throws(() => new MemoryStore({ maxKeys: 0 }), RangeError);
    await assert.rejects(new MemoryStore().incr('k', 1.5), RangeError);
  });
});
