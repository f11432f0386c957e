import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.js';
import { MemoryStore } from '../../store/memory-store.js';
import type { StateStore } from '../../store/state-store.js';
import type { RequestView } from './router.js';
import { RateLimiter, type RateLimitSettings } from './rate-limit.js';

const req = (clientAddress: string): RequestView => ({ method: 'GET', host: 'a', path: '/', query: '', lnames: [], values: [], clientAddress });
const byAddress = (r: RequestView): string | undefined => (r.clientAddress === '' ? undefined : r.clientAddress);
const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

function limiter(clock: ManualClock, more: Partial<RateLimitSettings> = {}): RateLimiter {
  return new RateLimiter({ listener: 'web', count: 10, perMs: 1000, burst: 5, key: byAddress, clock, ...more });
}

describe('RateLimiter (token bucket per key)', () => {
  it('admits the burst, then refuses with the seconds until the next token; refills at the rate', () => {
    const clock = new ManualClock(1000);
    const rl = limiter(clock);
    for (let i = 0; i < 5; i++) assert.equal(rl.take(req('a')), 0);
    assert.equal(rl.take(req('a')), 1); // 100 ms to the next token: at least 1 s
    clock.advance(100);
    assert.equal(rl.take(req('a')), 0);
    assert.equal(rl.take(req('a')), 1);
    clock.advance(10_000); // refills to the burst, not beyond
    let admitted = 0;
    for (let i = 0; i < 20; i++) if (rl.take(req('a')) === 0) admitted++;
    assert.equal(admitted, 5);
    assert.equal(rl.refused, 17);
  });

  it('a slow rate gives a longer Retry-After', () => {
    const clock = new ManualClock();
    const rl = limiter(clock, { count: 6, perMs: 60_000, burst: 1 });
    assert.equal(rl.take(req('a')), 0);
    assert.equal(rl.take(req('a')), 10);
    clock.advance(4000);
    assert.equal(rl.take(req('a')), 6);
  });

  it('keys are independent; requests without a key share one bucket', () => {
    const clock = new ManualClock();
    const rl = limiter(clock);
    for (let i = 0; i < 5; i++) assert.equal(rl.take(req('a')), 0);
    assert.ok(rl.take(req('a')) > 0);
    for (let i = 0; i < 5; i++) assert.equal(rl.take(req('b')), 0);
    assert.ok(rl.take(req('b')) > 0);
    for (let i = 0; i < 5; i++) assert.equal(rl.take(req('')), 0);
    assert.ok(rl.take(req('')) > 0);
  });

  it('holds at most maxKeys buckets and drops the least recently used', () => {
    const clock = new ManualClock();
    const rl = limiter(clock, { maxKeys: 2, burst: 1 });
    assert.equal(rl.take(req('a')), 0);
    assert.equal(rl.take(req('b')), 0);
    assert.ok(rl.take(req('a')) > 0); // a is now the most recently used
    assert.equal(rl.take(req('c')), 0); // b is dropped
    assert.equal(rl.size, 2);
    assert.ok(rl.take(req('a')) > 0); // a was kept, still empty
    assert.equal(rl.take(req('b')), 0); // b starts again with a full bucket
    assert.equal(rl.size, 2);
  });

  it('a long key is held as its hash (bounded memory), still counted per key', () => {
    const clock = new ManualClock();
    const rl = limiter(clock, { burst: 1 });
    const long = 'x'.repeat(10_000);
    assert.equal(rl.take(req(long)), 0);
    assert.ok(rl.take(req(long)) > 0);
    assert.equal(rl.take(req(long + 'y')), 0);
  });

  it('two nodes sharing a store together admit about the configured rate, not twice it', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore();
    const wallMs = (): number => 1_700_000_000_000 + clock.now();
    const common = { count: 10, perMs: 1000, burst: 10, syncMs: 1, store, wallMs };
    const a = limiter(clock, common);
    const b = limiter(clock, common);
    const alone = limiter(clock, { ...common, store: undefined });
    const alone2 = limiter(clock, { ...common, store: undefined });
    let shared = 0;
    let apart = 0;
    // 10 simulated seconds, a request to each node every 10 ms; the store is synced every 100 ms.
    for (let step = 0; step < 100; step++) {
      for (let i = 0; i < 10; i++) {
        if (a.take(req('k')) === 0) shared++;
        if (b.take(req('k')) === 0) shared++;
        if (alone.take(req('k')) === 0) apart++;
        if (alone2.take(req('k')) === 0) apart++;
        clock.advance(10);
      }
      await tick(3);
    }
    // Together: the two first bursts (20) plus 10/s for 10 s (100), give or take a sync interval.
    assert.ok(shared >= 100 && shared <= 140, `shared admitted ${shared}`);
    // Apart, each node admits its own burst plus its own rate.
    assert.ok(apart >= 210, `apart admitted ${apart}`);
    a.close();
    b.close();
  });

  it('a failing store leaves the limit local: still limited at the rate, the error reported', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const failing = { incr: () => Promise.reject(new Error('store down')) } as unknown as StateStore;
    const rl = limiter(clock, { store: failing, syncMs: 1, onStoreError: (e) => errors.push(e) });
    let admitted = 0;
    for (let i = 0; i < 200; i++) {
      if (rl.take(req('k')) === 0) admitted++;
      clock.advance(10); // 2 s at 100 requests/s
      if (i % 20 === 0) await tick(3);
    }
    assert.ok(admitted >= 24 && admitted <= 26, `admitted ${admitted}`); // 5 + 10/s × 2 s
    assert.ok(errors.length > 0);
    rl.close();
  });
});
