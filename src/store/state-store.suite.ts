/**
 * The conformance suite of StateStore: every store (memory now, Redis later) runs these
 * cases with `stateStoreSuite(name, open)`. Keys are prefixed per run, so a shared server
 * can host the suite. Waits are real time, short and bounded (a network store cannot be
 * given a fake clock).
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { StateStore } from './state-store.js';

export interface StateStoreSuiteOptions {
  /** Set when the store cannot run here (e.g. no REDIS_URL); every case is skipped with this reason. */
  readonly skip?: string | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` every 10 ms until it holds or `ms` pass; returns whether it held. */
async function eventually(fn: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (let i = 0; i < 1000 && Date.now() < until; i++) {
    if (await fn()) return true;
    await sleep(10);
  }
  return fn();
}

export function stateStoreSuite(name: string, open: () => Promise<StateStore>, options: StateStoreSuiteOptions = {}): void {
  describe(`StateStore conformance: ${name}`, { skip: options.skip ?? false }, () => {
    let store: StateStore;
    const prefix = `portico-suite:${randomBytes(6).toString('hex')}:`;
    let n = 0;
    const key = (what: string): string => `${prefix}${what}:${n++}`;

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
    });

    it('get of a missing key is undefined', async () => {
      assert.equal(await store.get(key('missing')), undefined);
    });

    it('set then get returns the value; set again replaces it', async () => {
      const k = key('set');
      await store.set(k, 'one');
      assert.equal(await store.get(k), 'one');
      await store.set(k, 'two');
      assert.equal(await store.get(k), 'two');
    });

    it('keys and values keep any characters, and the empty value is a value', async () => {
      const k = key('odd chars: spaces/colons/ünïcödé/😀');
      await store.set(k, 'v:1 ünï\n😀');
      assert.equal(await store.get(k), 'v:1 ünï\n😀');
      const e = key('empty');
      await store.set(e, '');
      assert.equal(await store.get(e), '');
    });

    it('delete removes a key; deleting a missing key succeeds', async () => {
      const k = key('del');
      await store.set(k, 'x');
      await store.delete(k);
      assert.equal(await store.get(k), undefined);
      await store.delete(key('never-set'));
    });

    it('a key set with a TTL is there at once and gone after it', async () => {
      const k = key('ttl');
      // Long enough that the read right after the write is within it on a loaded machine.
      await store.set(k, 'x', 500);
      assert.equal(await store.get(k), 'x');
      assert.ok(await eventually(async () => (await store.get(k)) === undefined, 10_000), 'the key did not expire');
    });

    it('set without a TTL after one with a TTL keeps the key', async () => {
      const k = key('ttl-cleared');
      await store.set(k, 'x', 40);
      await store.set(k, 'y');
      await sleep(100);
      assert.equal(await store.get(k), 'y');
    });

    it('set with a new TTL replaces the old one', async () => {
      const k = key('ttl-extended');
      await store.set(k, 'x', 40);
      await store.set(k, 'x', 5000);
      await sleep(100);
      assert.equal(await store.get(k), 'x');
    });

    it('a TTL that is not a positive number is refused', async () => {
      await assert.rejects(store.set(key('bad-ttl'), 'x', 0));
      await assert.rejects(store.set(key('bad-ttl'), 'x', -5));
      await assert.rejects(store.set(key('bad-ttl'), 'x', Number.NaN));
    });

    it('incr creates the counter at 0, adds, subtracts and returns the new value', async () => {
      const k = key('incr');
      assert.equal(await store.incr(k, 1), 1);
      assert.equal(await store.incr(k, 5), 6);
      assert.equal(await store.incr(k, -10), -4);
      assert.equal(await store.get(k), '-4');
    });

    it('incr on a value set as an integer string continues from it', async () => {
      const k = key('incr-from-set');
      await store.set(k, '41');
      assert.equal(await store.incr(k, 1), 42);
    });

    it('incr on a value that is not an integer is refused and leaves the value', async () => {
      const k = key('incr-text');
      await store.set(k, 'abc');
      await assert.rejects(store.incr(k, 1));
      assert.equal(await store.get(k), 'abc');
    });

    it('incr with a TTL sets it when the counter is created, and only then', async () => {
      const k = key('incr-ttl');
      assert.equal(await store.incr(k, 1, 500), 1);
      assert.equal(await store.incr(k, 1, 60_000), 2);
      assert.ok(await eventually(async () => (await store.get(k)) === undefined, 10_000), 'the counter did not expire');
      assert.equal(await store.incr(k, 1, 60_000), 1);
    });

    it('concurrent incr calls lose no update', async () => {
      const k = key('incr-many');
      const got = await Promise.all(Array.from({ length: 100 }, () => store.incr(k, 1)));
      assert.equal(await store.get(k), '100');
      assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
    });

    it('publish reaches every subscriber of the channel, in order, and no other channel', async () => {
      const ch = key('chan');
      const a: string[] = [];
      const b: string[] = [];
      const other: string[] = [];
      const ac = new AbortController();
      await store.subscribe(ch, (m) => a.push(m), ac.signal);
      await store.subscribe(ch, (m) => b.push(m), ac.signal);
      await store.subscribe(key('other'), (m) => other.push(m), ac.signal);
      for (let i = 0; i < 5; i++) await store.publish(ch, `m${i}`);
      const want = ['m0', 'm1', 'm2', 'm3', 'm4'];
      assert.ok(await eventually(() => a.length === 5 && b.length === 5, 10_000), `got ${a.length} and ${b.length} messages`);
      assert.deepEqual(a, want);
      assert.deepEqual(b, want);
      assert.deepEqual(other, []);
      ac.abort();
    });

    it('a subscription ends when its signal aborts; others on the channel go on', async () => {
      const ch = key('chan-abort');
      const kept: string[] = [];
      const ended: string[] = [];
      const keep = new AbortController();
      const end = new AbortController();
      await store.subscribe(ch, (m) => kept.push(m), keep.signal);
      await store.subscribe(ch, (m) => ended.push(m), end.signal);
      await store.publish(ch, 'before');
      assert.ok(await eventually(() => kept.length === 1 && ended.length === 1, 10_000), 'first message not delivered');
      end.abort();
      await sleep(20);
      await store.publish(ch, 'after');
      assert.ok(await eventually(() => kept.length === 2, 10_000), 'second message not delivered');
      await sleep(50);
      assert.deepEqual(ended, ['before']);
      keep.abort();
    });

    it('a subscriber that throws does not stop delivery to the others', async () => {
      const ch = key('chan-throw');
      const got: string[] = [];
      const ac = new AbortController();
      await store.subscribe(
        ch,
        () => {
          throw new Error('subscriber fault');
        },
        ac.signal,
      );
      await store.subscribe(ch, (m) => got.push(m), ac.signal);
      await store.publish(ch, 'x');
      assert.ok(await eventually(() => got.length === 1, 10_000), 'message not delivered');
      ac.abort();
    });

    it('publish with no subscriber succeeds', async () => {
      await store.publish(key('nobody'), 'x');
    });
  });
}
