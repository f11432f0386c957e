/**
 * A listener's rate limit (`rateLimit: { key, rate, burst }`): a token bucket per key, kept in a
 * bounded LRU map. A request takes one token or is refused; the caller answers 429 with the
 * Retry-After this returns.
 *
 * Several nodes sharing a StateStore limit together. The request path never waits on the store:
 * it decides from the local bucket, and the requests admitted here are added asynchronously (one
 * batch at a time, every `syncMs`) to a counter per key and time window (`incr` with a TTL). What
 * `incr` returns is the count of every node in that window; the part that other nodes admitted
 * since the last look is taken out of the local bucket. Every node's bucket thus drains with
 * every admission in the cluster and refills at the configured rate, so the cluster together
 * admits about `rate`, with these approximations:
 *
 * - during one sync interval each node admits from its own tokens without knowing the others'
 *   (N nodes may admit up to N × burst at first, and a little over the rate in steady state, paid
 *   back as a debt on the next sync; the debt is capped at one burst);
 * - a node learns of the others' admissions only for keys it serves itself, from the windows it
 *   counts in (the current one and the tail of the previous one);
 * - windows are numbered from the wall clock, so nodes' clocks should agree within a window;
 * - a key evicted from the LRU map starts again with a full bucket.
 *
 * A store error leaves the limiting local only: the counts of that round are dropped and
 * `onStoreError` is told.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { StateStore } from '../../store/state-store.js';
import type { RequestView } from './router.js';

export interface RateLimitSettings {
  /** Part of the store keys: limits of different listeners are counted apart. */
  readonly listener: string;
  /** `count` requests per `perMs` milliseconds. */
  readonly count: number;
  readonly perMs: number;
  /** Requests allowed at once (the bucket's size). */
  readonly burst: number;
  /** The key of a request; requests without one share the bucket of the empty key. */
  readonly key: (req: RequestView) => string | undefined;
  /** Monotonic time for the buckets. */
  readonly clock: Clock;
  /** A store shared with other nodes; undefined: limits are per node. */
  readonly store?: StateStore | undefined;
  /** Wall-clock milliseconds, which number the windows the same way on every node. */
  readonly wallMs?: (() => number) | undefined;
  /** Most keys held in memory (default 100,000); the least recently used is dropped. */
  readonly maxKeys?: number | undefined;
  /** How often admitted requests are sent to the store (default 100 ms). */
  readonly syncMs?: number | undefined;
  /** Length of a store counter's window (default 1 s). */
  readonly windowMs?: number | undefined;
  readonly onStoreError?: ((err: unknown) => void) | undefined;
}

/** A key longer than this is replaced by its hash in memory and in the store. */
const MAX_KEY_CHARS = 128;
/** Most keys sent to the store in one round; the rest wait for the next. */
const MAX_SYNC_BATCH = 10_000;

class Bucket {
  tokens: number;
  at: number;
  /** Admitted here and not yet sent to the store. */
  pending = 0;
  /** The window `mine` and `others` count in (-1: none yet). */
  win = -1;
  /** Sent by this node into window `win`. */
  mine = 0;
  /** Admitted by the other nodes in window `win`, as last seen. */
  others = 0;
  constructor(
    readonly key: string,
    tokens: number,
    at: number,
  ) {
    this.tokens = tokens;
    this.at = at;
  }
}

export class RateLimiter {
  private readonly perMsRate: number;
  private readonly burst: number;
  private readonly keyOf: (req: RequestView) => string | undefined;
  private readonly clock: Clock;
  private readonly store: StateStore | undefined;
  private readonly wallMs: () => number;
  private readonly maxKeys: number;
  private readonly syncMs: number;
  private readonly windowMs: number;
  private readonly prefix: string;
  private readonly onStoreError: ((err: unknown) => void) | undefined;
  /** Buckets in least- to most-recently used order. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly toSync = new Set<Bucket>();
  private timer: NodeJS.Timeout | undefined;
  private syncing = false;
  /** Requests refused so far. */
  refused = 0;

  constructor(s: RateLimitSettings) {
    this.perMsRate = s.count / s.perMs;
    this.burst = s.burst;
    this.keyOf = s.key;
    this.clock = s.clock;
    this.store = s.store;
    this.wallMs = s.wallMs ?? Date.now;
    this.maxKeys = s.maxKeys ?? 100_000;
    this.syncMs = s.syncMs ?? 100;
    this.windowMs = s.windowMs ?? 1000;
    this.prefix = `rate:${s.listener}:`;
    this.onStoreError = s.onStoreError;
  }

  /** Keys held in memory. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Take a token for `req`: 0 when it is admitted, else the whole seconds (at least 1) until its
   * key has a token again, for Retry-After.
   */
  take(req: RequestView): number {
    let key = this.keyOf(req) ?? '';
    if (key.length > MAX_KEY_CHARS) key = createHash('sha256').update(key).digest('base64url');
    const now = this.clock.now();
    const buckets = this.buckets;
    let b = buckets.get(key);
    if (b === undefined) {
      b = new Bucket(key, this.burst, now);
      if (buckets.size >= this.maxKeys) buckets.delete(buckets.keys().next().value!);
    } else {
      buckets.delete(key); // to the most recently used end
      const t = b.tokens + (now - b.at) * this.perMsRate;
      b.tokens = t > this.burst ? this.burst : t;
      b.at = now;
    }
    buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      if (this.store !== undefined) {
        b.pending++;
        this.toSync.add(b);
        if (this.timer === undefined && !this.syncing) this.arm();
      }
      return 0;
    }
    this.refused++;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMsRate / 1000));
  }

  private arm(): void {
    this.timer = setTimeout(this.sync, this.syncMs);
    this.timer.unref();
  }

  /** One round: the admitted counts of every bucket that has some, to the store. */
  private readonly sync = (): void => {
    this.timer = undefined;
    this.syncing = true;
    const batch: Bucket[] = [];
    for (const b of this.toSync) {
      batch.push(b);
      this.toSync.delete(b);
      if (batch.length >= MAX_SYNC_BATCH) break;
    }
    const win = Math.floor(this.wallMs() / this.windowMs);
    const done = (): void => {
      this.syncing = false;
      if (this.toSync.size > 0 && this.timer === undefined) this.arm();
    };
    Promise.all(batch.map((b) => this.syncOne(b, win))).then(done, done);
  };

  private async syncOne(b: Bucket, win: number): Promise<void> {
    const store = this.store!;
    const by = b.pending;
    b.pending = 0;
    const ttlMs = 3 * this.windowMs;
    try {
      if (b.win !== win) {
        if (b.win === win - 1) {
          // What the others added to the previous window after our last look at it.
          const total = await store.incr(this.prefix + b.win + ':' + b.key, 0, ttlMs);
          this.learn(b, total - b.mine);
        }
        b.win = win;
        b.mine = 0;
        b.others = 0;
      }
      const total = await store.incr(this.prefix + win + ':' + b.key, by, ttlMs);
      b.mine += by;
      this.learn(b, total - b.mine);
    } catch (err) {
      this.onStoreError?.(err);
    }
  }

  /** The other nodes have admitted `others` in the bucket's window: take what is new out of the bucket. */
  private learn(b: Bucket, others: number): void {
    const delta = others - b.others;
    if (delta <= 0) return;
    b.others = others;
    const t = b.tokens - delta;
    b.tokens = t < -this.burst ? -this.burst : t;
  }

  /** Stop sending counts to the store (the limiter was replaced or the listener stopped). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.toSync.clear();
  }
}
