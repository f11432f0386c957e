/**
 * The live connections (or sessions, or handshakes) of a listener: one add as each opens and one
 * delete as it closes, walked by the deadline sweep, counted against `maxConnections`.
 *
 * Not a `Set`. A `Set` (or `Map`) that lives in the old generation keeps the members deleted from
 * it reachable for the young-generation collector until the next full collection: with one add
 * and one delete per connection, every connection that went through it survived the scavenges
 * after it closed and was promoted (its sockets, their stream state and all their listeners
 * hold), to die in the old generation. 20,000 objects of about 200 bytes, each deleted soon after
 * it was added, grew the old space by 5 MB through a `Set` and by nothing through this
 * (live-set.test.ts). On a tcp listener under `Connection: close` the promoted bytes per
 * connection went from 2.8 KB to 1.4 KB and the collector's time per connection from 15 µs to
 * 9 µs (docs/benchmarks.md).
 *
 * A member keeps its own index in the array (its slot), so a delete moves the last member into
 * the freed place: O(1), nothing allocated, nothing left referenced.
 */

/** The property each member keeps its index in (-1 or absent while it is in no set). */
export const liveSlot: unique symbol = Symbol('liveSlot');

/**
 * The shape of a member that declares its slot (initialised to -1), so that every member has it
 * from its construction on. Any object can be a member: one that does not declare it gets it on
 * its first add (a socket, for instance), under the set's own symbol when it may be a member of
 * two sets at once.
 */
export interface LiveMember {
  [liveSlot]: number;
}

type Slotted = Record<symbol, number | undefined>;

export class LiveSet<T extends object> implements Iterable<T> {
  private items: (T | undefined)[] = [];
  /** > 0 while forEach walks: deletes leave a hole instead of moving a member. */
  private walking = 0;
  private holes = 0;
  private readonly slot: symbol;

  /** `slot`: the property members keep their index in; a set of its own needs a symbol of its own. */
  constructor(slot: symbol = liveSlot) {
    this.slot = slot;
  }

  /** Members now. */
  get size(): number {
    return this.items.length - this.holes;
  }

  /** Adds `x`; nothing when it is a member already. */
  add(x: T): void {
    const m = x as Slotted;
    const i = m[this.slot];
    if (i !== undefined && i >= 0 && this.items[i] === x) return;
    m[this.slot] = this.items.length;
    this.items.push(x);
  }

  /** True when `x` was a member. */
  delete(x: T): boolean {
    const m = x as Slotted;
    const i = m[this.slot];
    const items = this.items;
    if (i === undefined || i < 0 || items[i] !== x) return false;
    m[this.slot] = -1;
    if (this.walking > 0) {
      // The walk goes by index: moving a member now could make it skip one or see one twice.
      items[i] = undefined;
      this.holes++;
      return true;
    }
    const last = items.pop()!;
    if (last !== x) {
      items[i] = last;
      (last as Slotted)[this.slot] = i;
    }
    return true;
  }

  has(x: T): boolean {
    const i = (x as Slotted)[this.slot];
    return i !== undefined && i >= 0 && this.items[i] === x;
  }

  /**
   * Calls `fn` once for each member there when the walk starts and still there when its turn
   * comes; members added meanwhile are not visited. `fn` may add and delete members.
   */
  forEach(fn: (x: T) => void): void {
    const items = this.items;
    const n = items.length;
    this.walking++;
    try {
      for (let i = 0; i < n; i++) {
        const x = items[i];
        if (x !== undefined) fn(x);
      }
    } finally {
      if (--this.walking === 0 && this.holes > 0) this.compact();
    }
  }

  /** A copy of the members now: adding or deleting while iterating it changes nothing in it. */
  [Symbol.iterator](): Iterator<T> {
    const out: T[] = [];
    const items = this.items;
    for (let i = 0; i < items.length; i++) {
      const x = items[i];
      if (x !== undefined) out.push(x);
    }
    return out[Symbol.iterator]();
  }

  /** Close the holes a walk left, keeping every member's slot right. */
  private compact(): void {
    const items = this.items;
    let w = 0;
    for (let r = 0; r < items.length; r++) {
      const x = items[r];
      if (x === undefined) continue;
      (x as Slotted)[this.slot] = w;
      items[w++] = x;
    }
    items.length = w;
    this.holes = 0;
  }
}
