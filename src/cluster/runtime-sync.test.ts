import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { RuntimeChange } from '../admin/journal.js';
import type { Logger } from '../observability/logger.js';
import { MemoryStore } from '../store/memory-store.js';
import type { StateStore } from '../store/state-store.js';
import { RUNTIME_CHANNEL, RUNTIME_KEY, RuntimeSync, type RuntimeTarget } from './runtime-sync.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

class FakeRuntime implements RuntimeTarget {
  onChange: ((changes: readonly RuntimeChange[]) => void) | undefined;
  journal: { current: readonly RuntimeChange[] } = { current: [] };
  readonly adopted: (readonly RuntimeChange[])[] = [];
  async adopt(changes: readonly RuntimeChange[]): Promise<boolean> {
    this.adopted.push(changes);
    this.journal.current = changes;
    return true;
  }
  /** What the admin API does: change the journal, then tell the sync. */
  change(changes: readonly RuntimeChange[]): void {
    this.journal.current = changes;
    this.onChange?.(changes);
  }
}

/** A MemoryStore that can be made to fail every operation, as a Redis that is down. */
class SwitchableStore implements StateStore {
  down = false;
  constructor(private readonly inner: MemoryStore) {}
  private check(): void {
    if (this.down) throw new Error('store down');
  }
  async get(k: string) {
    this.check();
    return this.inner.get(k);
  }
  async set(k: string, v: string, ttl?: number) {
    this.check();
    return this.inner.set(k, v, ttl);
  }
  async delete(k: string) {
    this.check();
    return this.inner.delete(k);
  }
  async incr(k: string, by: number, ttl?: number) {
    this.check();
    return this.inner.incr(k, by, ttl);
  }
  async subscribe(ch: string, fn: (m: string) => void, signal: AbortSignal) {
    return this.inner.subscribe(ch, (m) => {
      if (!this.down) fn(m);
    }, signal);
  }
  async publish(ch: string, m: string) {
    this.check();
    return this.inner.publish(ch, m);
  }
  async close() {}
}

const drain = (pool: string, server: string): RuntimeChange => ({ kind: 'server', pool, server, set: { state: 'drain' }, at: '2026-01-01T00:00:00.000Z' });

async function eventually(fn: () => boolean, ms = 1000): Promise<boolean> {
  const until = Date.now() + ms;
  for (let i = 0; i < 500 && Date.now() < until; i++) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return fn();
}

describe('RuntimeSync', () => {
  it('a change on one node is adopted by the other, and not by its own node', async () => {
    const store = new MemoryStore();
    const ra = new FakeRuntime();
    const rb = new FakeRuntime();
    const a = new RuntimeSync({ store, runtime: ra, node: 'a', log: quiet });
    const b = new RuntimeSync({ store, runtime: rb, node: 'b', log: quiet });
    await a.start();
    await b.start();
    ra.change([drain('web', 'w1')]);
    assert.ok(await eventually(() => rb.adopted.length === 1), 'node b did not adopt the change');
    assert.deepEqual(rb.adopted[0], [drain('web', 'w1')]);
    assert.deepEqual(ra.adopted, []);
    assert.ok((await store.get(RUNTIME_KEY))?.includes('"w1"'));
    await a.stop();
    await b.stop();
    assert.equal(ra.onChange, undefined);
  });

  it('at start, takes the store list; with none, writes its own journal there', async () => {
    const store = new MemoryStore();
    const first = new FakeRuntime();
    first.journal.current = [drain('web', 'local')];
    const s1 = new RuntimeSync({ store, runtime: first, node: 'a', log: quiet });
    await s1.start();
    assert.deepEqual(first.adopted, []);
    let written: string | undefined;
    for (let i = 0; i < 100 && written === undefined; i++) {
      written = await store.get(RUNTIME_KEY);
      if (written === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(written?.includes('"local"'), 'the local journal was not written to an empty store');

    const later = new FakeRuntime();
    later.journal.current = [drain('web', 'stale')];
    const s2 = new RuntimeSync({ store, runtime: later, node: 'b', log: quiet });
    await s2.start();
    assert.deepEqual(later.adopted, [[drain('web', 'local')]], 'the store list wins over the local journal');
    await s1.stop();
    await s2.stop();
  });

  it('a change made while the store is down is written and announced when it is back', async () => {
    const inner = new MemoryStore();
    const sa = new SwitchableStore(inner);
    const ra = new FakeRuntime();
    const rb = new FakeRuntime();
    const a = new RuntimeSync({ store: sa, runtime: ra, node: 'a', log: quiet });
    const b = new RuntimeSync({ store: inner, runtime: rb, node: 'b', log: quiet });
    await a.start();
    await b.start();
    sa.down = true;
    ra.change([drain('web', 'w2')]);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(rb.adopted, [], 'nothing can reach b while the store is down');
    sa.down = false;
    a.resync(0);
    assert.ok(await eventually(() => rb.adopted.length === 1), 'the change was not shared after the store came back');
    assert.deepEqual(rb.adopted[0], [drain('web', 'w2')]);
    await a.stop();
    await b.stop();
  });

  it('a node that made no change reads the store list on resync', async () => {
    const inner = new MemoryStore();
    const sb = new SwitchableStore(inner);
    const ra = new FakeRuntime();
    const rb = new FakeRuntime();
    const a = new RuntimeSync({ store: inner, runtime: ra, node: 'a', log: quiet });
    const b = new RuntimeSync({ store: sb, runtime: rb, node: 'b', log: quiet });
    await a.start();
    await b.start();
    sb.down = true; // b misses the announcement
    ra.change([drain('web', 'w3')]);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(rb.adopted, []);
    sb.down = false;
    b.resync(0);
    assert.ok(await eventually(() => rb.adopted.length === 1), 'b did not read the list on resync');
    assert.deepEqual(rb.adopted[0], [drain('web', 'w3')]);
    await a.stop();
    await b.stop();
  });

  it('ignores unreadable messages and lists that are not valid changes', async () => {
    const store = new MemoryStore();
    const rb = new FakeRuntime();
    const b = new RuntimeSync({ store, runtime: rb, node: 'b', log: quiet });
    await b.start();
    await store.publish(RUNTIME_CHANNEL, 'not json');
    await store.publish(RUNTIME_CHANNEL, JSON.stringify({ from: 'x', node: 'a', at: 'now', changes: [{ kind: 'nonsense', pool: 'p', at: 'now' }] }));
    await store.publish(RUNTIME_CHANNEL, JSON.stringify({ from: 'x', node: 'a', at: 'now', changes: [drain('web', 'ok')] }));
    assert.ok(await eventually(() => rb.adopted.length === 1));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(rb.adopted, [[drain('web', 'ok')]]);
    await b.stop();
  });
});
