import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SeededRng } from '../core/rng.js';
import { LiveSet, liveSlot, type LiveMember } from './live-set.js';

class Item implements LiveMember {
  [liveSlot] = -1;
  constructor(readonly id: number) {}
}

const ids = (s: LiveSet<Item>): number[] => [...s].map((x) => x.id).sort((a, b) => a - b);

describe('LiveSet', () => {
  it('adds, deletes, counts and tells membership; adding twice or deleting a stranger changes nothing', () => {
    const s = new LiveSet<Item>();
    const a = new Item(1);
    const b = new Item(2);
    const c = new Item(3);
    s.add(a);
    s.add(b);
    s.add(c);
    s.add(b);
    assert.equal(s.size, 3);
    assert.ok(s.delete(a));
    assert.ok(!s.delete(a));
    assert.ok(!s.has(a));
    assert.ok(s.has(b) && s.has(c));
    assert.deepEqual(ids(s), [2, 3]);
    const other = new LiveSet<Item>();
    other.add(new Item(9));
    assert.ok(!other.delete(b), 'a member of another set is not deleted here');
    assert.equal(s.size, 2);
  });

  it('forEach visits each member once, and not one added during the walk; deletes during the walk are safe', () => {
    const s = new LiveSet<Item>();
    const items = Array.from({ length: 10 }, (_, i) => new Item(i));
    for (const x of items) s.add(x);
    const seen: number[] = [];
    s.forEach((x) => {
      seen.push(x.id);
      // Deleting the member visited, one not yet visited and one already visited; adding one.
      if (x.id === 2) {
        s.delete(x);
        s.delete(items[7]!);
        s.delete(items[0]!);
        s.add(new Item(100));
      }
    });
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 8, 9]);
    assert.deepEqual(ids(s), [1, 3, 4, 5, 6, 8, 9, 100]);
    assert.equal(s.size, 8);
    // The slots are right again after the walk: every member can be deleted.
    for (const x of [...s]) assert.ok(s.delete(x));
    assert.equal(s.size, 0);
  });

  it('an object may be a member of two sets that use symbols of their own', () => {
    const a = new LiveSet<object>(Symbol('a'));
    const b = new LiveSet<object>(Symbol('b'));
    const xs = Array.from({ length: 5 }, () => ({}));
    for (const x of xs) a.add(x);
    for (const x of xs.slice(2)) b.add(x);
    assert.ok(a.delete(xs[0]!));
    assert.ok(b.delete(xs[4]!));
    assert.deepEqual([a.size, b.size], [4, 2]);
    assert.ok(a.has(xs[4]!) && !b.has(xs[4]!) && b.has(xs[2]!) && !a.has(xs[0]!));
    assert.ok(!b.delete(xs[0]!), 'never a member of b');
  });

  it('behaves as a Set under random adds, deletes and walks (property)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rng = new SeededRng(seed);
      const s = new LiveSet<Item>();
      const model = new Set<Item>();
      const pool = Array.from({ length: 40 }, (_, i) => new Item(i));
      for (let step = 0; step < 400; step++) {
        const x = pool[Math.floor(rng.next() * pool.length)]!;
        const r = rng.next();
        if (r < 0.45) {
          s.add(x);
          model.add(x);
        } else if (r < 0.9) {
          assert.equal(s.delete(x), model.delete(x), `seed ${seed} step ${step}`);
        } else {
          // A walk that deletes some of what it visits and some it has not visited yet.
          const before = new Set(model);
          const visited = new Set<Item>();
          s.forEach((y) => {
            assert.ok(!visited.has(y), 'visited twice');
            assert.ok(model.has(y), 'visited after its delete');
            visited.add(y);
            if (rng.next() < 0.3) {
              s.delete(y);
              model.delete(y);
            }
            const z = pool[Math.floor(rng.next() * pool.length)]!;
            if (rng.next() < 0.2) {
              s.delete(z);
              model.delete(z);
            }
          });
          for (const y of before) if (model.has(y)) assert.ok(visited.has(y), 'a member there all along was not visited');
        }
        assert.equal(s.size, model.size);
        for (const y of pool) assert.equal(s.has(y), model.has(y));
      }
    }
  });

  it('a deleted member is not kept for the young-generation collector', () => {
    // What survives two minor collections is promoted: measured as the old space's growth. (A Set
    // used the same way, one add and one delete per member, grows it by about the members' size:
    // 5 MB here on Node 20.)
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (o?: { type: 'minor' | 'major' }) => void;
    const old = (): number => getHeapSpaceStatistics().find((sp) => sp.space_name === 'old_space')!.space_used_size;
    type Member = LiveMember & { readonly pad: number[] };
    const live = new LiveSet<Member>();
    const inFlight: Member[] = [];
    // The set itself in the old generation, as a listener's is.
    gc();
    gc();
    const before = old();
    for (let i = 0; i < 20_000; i++) {
      const x: Member = { [liveSlot]: -1, pad: new Array<number>(16).fill(i) };
      live.add(x);
      inFlight.push(x);
      if (inFlight.length > 16) live.delete(inFlight.shift()!);
    }
    for (const x of inFlight) live.delete(x);
    inFlight.length = 0;
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    const grew = old() - before;
    assert.equal(live.size, 0);
    assert.ok(grew < 1_000_000, `old space grew by ${grew} bytes for 20,000 members of about 200 bytes deleted`);
  });
});
