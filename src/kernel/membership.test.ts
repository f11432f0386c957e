import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MemoryStore } from '../store/memory-store.js';
import type { StateStore } from '../store/state-store.js';
import { waitFor } from '../test-helpers/origins.js';
import { heartbeatKey, Membership, membershipChannel } from './membership.js';

const NODES = ['lb1', 'lb2', 'lb3'];

/** A store that can be made to fail every operation (a node cut off, or a crashed process's writes stopping). */
class CutStore implements StateStore {
  cut = false;
  constructor(private readonly s: StateStore) {}
  private check(): void {
    if (this.cut) throw new Error('connection refused');
  }
  async get(k: string) {
    this.check();
    return this.s.get(k);
  }
  async set(k: string, v: string, ttl?: number) {
    this.check();
    return this.s.set(k, v, ttl);
  }
  async delete(k: string) {
    this.check();
    return this.s.delete(k);
  }
  async incr(k: string, by: number, ttl?: number) {
    this.check();
    return this.s.incr(k, by, ttl);
  }
  async subscribe(c: string, f: (m: string) => void, sig: AbortSignal) {
    return this.s.subscribe(c, f, sig);
  }
  async publish(c: string, m: string) {
    this.check();
    return this.s.publish(c, m);
  }
  async close() {}
}

function cluster(store: StateStore, heartbeatMs: number, deadAfterMs: number) {
  const seen = new Map<string, readonly string[]>();
  const stores = new Map<string, CutStore>();
  const members = NODES.map((node) => {
    const cs = new CutStore(store);
    stores.set(node, cs);
    return new Membership({ store: cs, listener: 'vip', node, nodes: NODES, heartbeatMs, deadAfterMs, onLive: (live) => seen.set(node, live) });
  });
  return { members, seen, stores };
}

describe('distributed membership through the shared store', () => {
  it('every node sees the same live set; a node that stops is gone for the others at once (published)', async () => {
    const store = new MemoryStore();
    // A long heartbeat: the leave must be seen through the publication, not the next round.
    const { members, seen } = cluster(store, 60_000, 120_000);
    try {
      await Promise.all(members.map((m) => m.start()));
      await Promise.all(members.map((m) => m.setWilling(true)));
      await waitFor(() => NODES.every((n) => seen.get(n)?.join() === 'lb1,lb2,lb3'), 5000, 'all three live everywhere');
      await members[2]!.stop();
      await waitFor(() => ['lb1', 'lb2'].every((n) => seen.get(n)?.join() === 'lb1,lb2'), 5000, 'lb3 gone for lb1 and lb2');
    } finally {
      for (const m of members) await m.stop();
    }
  });

  it('a node whose server fails gives its place up and takes it back when the server is back', async () => {
    const store = new MemoryStore();
    const { members, seen } = cluster(store, 60_000, 120_000);
    try {
      await Promise.all(members.map((m) => m.start()));
      await waitFor(() => NODES.every((n) => seen.get(n)?.length === 3), 5000, 'all three live');
      await members[0]!.setWilling(false);
      await waitFor(() => NODES.every((n) => seen.get(n)?.join() === 'lb2,lb3'), 5000, 'lb1 out everywhere, itself included');
      await members[0]!.setWilling(true);
      await waitFor(() => NODES.every((n) => seen.get(n)?.join() === 'lb1,lb2,lb3'), 5000, 'lb1 back everywhere');
    } finally {
      for (const m of members) await m.stop();
    }
  });

  it('a node that dies without a word is gone once its heartbeat expires', async () => {
    const store = new MemoryStore();
    const { members, seen, stores } = cluster(store, 50, 400);
    try {
      await Promise.all(members.map((m) => m.start()));
      await waitFor(() => NODES.every((n) => seen.get(n)?.length === 3), 5000, 'all three live');
      stores.get('lb2')!.cut = true; // its writes stop, as when the process is killed
      const t0 = Date.now();
      await waitFor(() => ['lb1', 'lb3'].every((n) => seen.get(n)?.join() === 'lb1,lb3'), 5000, 'lb2 expired');
      assert.ok(Date.now() - t0 >= 300, 'not before its heartbeat expired');
      // lb2 itself, cut off, keeps the last set it read (and so its own buckets): the documented partition case
      assert.equal(seen.get('lb2')?.join(), 'lb1,lb2,lb3');
    } finally {
      for (const m of members) await m.stop().catch(() => undefined);
    }
  });

  it('a store that never answered: every configured node is assumed, so no node takes every bucket', async () => {
    const cs = new CutStore(new MemoryStore());
    cs.cut = true;
    let live: readonly string[] = [];
    const errors: unknown[] = [];
    const m = new Membership({ store: cs, listener: 'vip', node: 'lb1', nodes: NODES, heartbeatMs: 60_000, deadAfterMs: 120_000, onLive: (l) => (live = l), onStoreError: (e) => errors.push(e) });
    try {
      await m.start();
      assert.deepEqual(live, NODES);
      assert.ok(errors.length > 0);
    } finally {
      await m.stop();
    }
    assert.throws(() => new Membership({ store: cs, listener: 'vip', node: 'lb9', nodes: NODES, heartbeatMs: 1, deadAfterMs: 2, onLive: () => undefined }), /'lb9' is not one of kernel\.distributed\.nodes/);
  });
  it("a node's lease: one heartbeat short of its last heartbeat's time to live; kept while the store fails, extended once the store is lost", async () => {
    const inner = new MemoryStore();
    const cs = new CutStore(inner);
    const leases: { at: number; heldUntil: number; ok: boolean }[] = [];
    const m = new Membership({
      store: cs,
      listener: 'vip',
      node: 'lb1',
      nodes: NODES,
      heartbeatMs: 50,
      deadAfterMs: 300,
      onLive: (_live, _changed, heldUntil) => leases.push({ at: Date.now(), heldUntil, ok: !cs.cut }),
      onStoreError: () => undefined,
    });
    try {
      const t0 = Date.now();
      await m.start();
      const first = leases[0]!;
      assert.ok(first.heldUntil >= t0 + 250 && first.heldUntil <= first.at + 250, `lease ${first.heldUntil - t0} ms after the start`);
      // Counted from when the heartbeat was sent (its value): the round that wrote it reports it.
      const written = Number(await inner.get(heartbeatKey('vip', 'lb1')));
      await waitFor(() => leases.some((l) => l.heldUntil === written + 250), 5000, 'the lease of the heartbeat in the store');
      const cutAt = Date.now();
      cs.cut = true;
      const n = leases.length;
      // Failing rounds keep the last lease, until the store has failed for deadAfter on end.
      await waitFor(() => leases.slice(n).some((l) => l.heldUntil > leases[n - 1]!.heldUntil), 10_000, 'the store taken as lost');
      const lost = leases.slice(n).findIndex((l) => l.heldUntil > leases[n - 1]!.heldUntil) + n;
      assert.ok(lost > n, 'at least one failing round kept the last lease');
      for (const l of leases.slice(n, lost)) assert.equal(l.heldUntil, leases[n - 1]!.heldUntil);
      assert.ok(leases[lost]!.at - cutAt >= 300, `lost after ${leases[lost]!.at - cutAt} ms of failures, not before deadAfter`);
      cs.cut = false;
      await inner.publish(membershipChannel('vip'), 'poke');
      await waitFor(() => leases.at(-1)!.ok && leases.at(-1)!.heldUntil > 0, 10_000, 'the store back');
      await m.setWilling(false);
      assert.equal(leases.at(-1)!.heldUntil, 0, 'no lease while not willing');
    } finally {
      await m.stop();
    }
  });
});
