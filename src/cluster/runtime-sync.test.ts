import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { withServerChange, type RuntimeChange, type ServerChange } from '../admin/journal.js';
import type { Logger } from '../observability/logger.js';
import { MemoryStore } from '../store/memory-store.js';
import { RedisStore } from '../store/redis-store.js';
import type { StateStore } from '../store/state-store.js';
import { redisSkip, startRedis, type RedisServer } from '../test-helpers/redis.js';
import { RUNTIME_CHANNEL, RUNTIME_KEY, RUNTIME_SEQ_KEY, runtimeOpKey, RuntimeSync, type RuntimeTarget } from './runtime-sync.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** The configuration runtime as RuntimeSync sees it: adopt and change serialised, as ConfigRuntime's are. */
class FakeRuntime implements RuntimeTarget {
  onChange: ((changes: readonly RuntimeChange[], before: readonly RuntimeChange[]) => void) | undefined;
  journal: { current: readonly RuntimeChange[] } = { current: [] };
  readonly adopted: (readonly RuntimeChange[])[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  adopt(next: readonly RuntimeChange[] | ((current: readonly RuntimeChange[]) => readonly RuntimeChange[])): Promise<boolean> {
    return this.exclusive(async () => {
      const changes = typeof next === 'function' ? next(this.journal.current) : next;
      if (JSON.stringify(changes) === JSON.stringify(this.journal.current)) return false;
      this.adopted.push(changes);
      this.journal.current = changes;
      return true;
    });
  }
  /** What the admin API does: change the journal, then tell the sync. */
  change(changes: readonly RuntimeChange[]): void {
    const before = this.journal.current;
    this.journal.current = changes;
    this.onChange?.(changes, before);
  }
  /** One admin API change, serialised with adopt: `edit` sees the list in force. */
  edit(fn: (current: readonly RuntimeChange[]) => readonly RuntimeChange[]): Promise<void> {
    return this.exclusive(async () => {
      await new Promise((r) => setImmediate(r));
      this.change(fn(this.journal.current));
    });
  }
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/**
 * A MemoryStore (several of these may share one) that can be made to fail every operation, as a
 * Redis that is down, and be restarted empty (as a Redis without persistence); subscriptions are
 * made again on the new one, as RedisStore does.
 */
class FlakyStore implements StateStore {
  down = false;
  constructor(private inner: MemoryStore = new MemoryStore()) {}
  private readonly subs = new Map<(m: string) => void, { channel: string; ac: AbortController }>();
  private check(): void {
    if (this.down) throw new Error('store down');
  }
  restartEmpty(): void {
    this.inner = new MemoryStore();
    for (const [fn, s] of this.subs) {
      s.ac.abort();
      s.ac = new AbortController();
      void this.inner.subscribe(s.channel, (m) => !this.down && fn(m), s.ac.signal);
    }
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
  async subscribe(channel: string, fn: (m: string) => void, signal: AbortSignal) {
    const ac = new AbortController();
    this.subs.set(fn, { channel, ac });
    signal.addEventListener('abort', () => {
      this.subs.get(fn)?.ac.abort();
      this.subs.delete(fn);
    });
    return this.inner.subscribe(channel, (m) => !this.down && fn(m), ac.signal);
  }
  async publish(ch: string, m: string) {
    this.check();
    return this.inner.publish(ch, m);
  }
  async close() {}
}

const drain = (pool: string, server: string): ServerChange => ({ kind: 'server', pool, server, set: { state: 'drain' }, at: '2026-01-01T00:00:00.000Z' });

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
    assert.ok(await eventuallyAsync(async () => (await store.get(RUNTIME_KEY))?.includes('"w1"') === true), 'the list as of the change was not written');
    assert.equal(await store.get(RUNTIME_SEQ_KEY), '1');
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
    const sa = new FlakyStore(inner);
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
    const sb = new FlakyStore(inner);
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

  it('ignores unreadable messages and changes that are not valid, and passes over a number never written', async () => {
    const store = new MemoryStore();
    const rb = new FakeRuntime();
    const b = new RuntimeSync({ store, runtime: rb, node: 'b', log: quiet, gapMs: 100 });
    await b.start();
    await store.publish(RUNTIME_CHANNEL, 'not json');
    await store.publish(RUNTIME_CHANNEL, JSON.stringify({ seq: 'one' }));
    // 1: not a valid change; 2: taken, never written; 3: a drain
    await store.set(runtimeOpKey(1), JSON.stringify({ from: 'x', node: 'a', at: 'now', delta: [{ kind: 'nonsense', pool: 'p', at: 'now' }] }));
    await store.set(runtimeOpKey(3), JSON.stringify({ from: 'x', node: 'a', at: 'now', delta: [{ kind: 'server', pool: 'web', server: 'ok', at: drain('web', 'ok').at, set: { state: 'drain' } }] }));
    await store.set(RUNTIME_SEQ_KEY, '3');
    await store.publish(RUNTIME_CHANNEL, JSON.stringify({ seq: 3 }));
    assert.ok(await eventually(() => rb.adopted.length === 1, 2000), 'the change after the gap was not applied');
    assert.deepEqual(rb.adopted, [[drain('web', 'ok')]]);
    assert.equal(b.sequence, 3);
    await b.stop();
  });

  it('two nodes changing the same server at the same instant keep both fields', async () => {
    const store = new MemoryStore();
    const ra = new FakeRuntime();
    const rb = new FakeRuntime();
    const a = new RuntimeSync({ store, runtime: ra, node: 'a', log: quiet });
    const b = new RuntimeSync({ store, runtime: rb, node: 'b', log: quiet });
    await a.start();
    await b.start();
    const at = '2026-01-01T00:00:00.000Z';
    await Promise.all([
      ra.edit((c) => withServerChange(c, 'web', 's1', { kind: 'server', pool: 'web', server: 's1', set: { weight: 7 }, at })),
      rb.edit((c) => withServerChange(c, 'web', 's1', { kind: 'server', pool: 'web', server: 's1', set: { state: 'drain' }, at })),
    ]);
    const both = (r: FakeRuntime): boolean => JSON.stringify(r.journal.current) === JSON.stringify([{ kind: 'server', pool: 'web', server: 's1', at, set: { weight: 7, state: 'drain' } }]) || JSON.stringify(r.journal.current) === JSON.stringify([{ kind: 'server', pool: 'web', server: 's1', at, set: { state: 'drain', weight: 7 } }]);
    assert.ok(await eventually(() => both(ra) && both(rb)), `a: ${JSON.stringify(ra.journal.current)}; b: ${JSON.stringify(rb.journal.current)}`);
    await a.stop();
    await b.stop();
  });
});

describe('RuntimeSync when the store restarts empty', () => {
  for (const first of ['a', 'b'] as const) {
    it(`a change made during the outage reaches the other node; ${first === 'a' ? 'the node that made it' : 'the other node'} resynchronises first`, async () => {
      const store = new FlakyStore();
      const ra = new FakeRuntime();
      const rb = new FakeRuntime();
      const a = new RuntimeSync({ store, runtime: ra, node: 'a', log: quiet });
      const b = new RuntimeSync({ store, runtime: rb, node: 'b', log: quiet });
      await a.start();
      await b.start();
      await ra.edit((c) => withServerChange(c, 'web', 'w1', drain('web', 'w1')));
      assert.ok(await eventually(() => rb.journal.current.length === 1));
      store.down = true;
      await ra.edit((c) => withServerChange(c, 'web', 'w2', drain('web', 'w2')));
      await new Promise((r) => setTimeout(r, 20));
      store.restartEmpty();
      store.down = false;
      const [x, y] = first === 'a' ? [a, b] : [b, a];
      x.resync(0);
      await new Promise((r) => setTimeout(r, 50));
      y.resync(0);
      const names = (r: FakeRuntime): string => r.journal.current.map((c) => (c.kind === 'server' ? c.server : '')).sort().join(',');
      assert.ok(await eventually(() => names(ra) === 'w1,w2' && names(rb) === 'w1,w2', 3000), `a: ${names(ra)}; b: ${names(rb)}`);
      assert.ok(((await store.get(RUNTIME_KEY)) ?? '').includes('"w2"'), 'the list is in the store again');
      await a.stop();
      await b.stop();
    });
  }
});

/** Two nodes on one store, each making `n` changes to servers of its own, interleaved: every node ends with all 2n, none lost. */
async function concurrentChanges(open: () => Promise<StateStore[]>, n: number): Promise<void> {
  const [sa, sb] = await open();
  const ra = new FakeRuntime();
  const rb = new FakeRuntime();
  const a = new RuntimeSync({ store: sa!, runtime: ra, node: 'a', log: quiet });
  const b = new RuntimeSync({ store: sb!, runtime: rb, node: 'b', log: quiet });
  try {
    await a.start();
    await b.start();
    const edits: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      edits.push(ra.edit((c) => withServerChange(c, 'web', `a${i}`, drain('web', `a${i}`))));
      edits.push(rb.edit((c) => withServerChange(c, 'web', `b${i}`, drain('web', `b${i}`))));
    }
    await Promise.all(edits);
    const names = (r: FakeRuntime): string => r.journal.current.map((c) => (c.kind === 'server' ? c.server : '')).sort().join(',');
    const want = [...Array.from({ length: n }, (_, i) => `a${i}`), ...Array.from({ length: n }, (_, i) => `b${i}`)].sort().join(',');
    assert.ok(await eventually(() => names(ra) === want && names(rb) === want, 5000), `a has ${ra.journal.current.length}, b has ${rb.journal.current.length} of ${2 * n}`);
    assert.equal(a.sequence, 2 * n);
    assert.equal(b.sequence, 2 * n);
    // The list in the store, for a node that starts now, has all of them too.
    const rc = new FakeRuntime();
    const c = new RuntimeSync({ store: sa!, runtime: rc, node: 'c', log: quiet });
    await c.start();
    assert.equal(names(rc), want);
    await c.stop();
  } finally {
    await a.stop();
    await b.stop();
  }
}

describe('RuntimeSync under concurrency', () => {
  it('memory store: 20 changes on each of two nodes, interleaved; both end with all 40', async () => {
    const store = new MemoryStore();
    await concurrentChanges(async () => [store, store], 20);
  });

  const skip = redisSkip();
  let redis: RedisServer | undefined;
  const stores: RedisStore[] = [];
  before(async () => {
    if (skip === undefined) redis = await startRedis();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await redis?.stop();
  });
  it('redis-server: 20 changes on each of two nodes (each its own connection), interleaved; both end with all 40', { skip: skip ?? false }, async () => {
    await concurrentChanges(async () => {
      const prefix = `rs${Date.now()}:`;
      const a = new RedisStore({ url: `${redis!.url}?prefix=${prefix}` });
      const b = new RedisStore({ url: `${redis!.url}?prefix=${prefix}` });
      stores.push(a, b);
      await Promise.all([a.connect(), b.connect()]);
      return [a, b];
    }, 20);
  });
});

async function eventuallyAsync(fn: () => Promise<boolean>, ms = 1000): Promise<boolean> {
  const until = Date.now() + ms;
  for (let i = 0; i < 500 && Date.now() < until; i++) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return fn();
}
