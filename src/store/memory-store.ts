import { systemClock, type Clock } from '../core/clock.js';
import type { StateStore } from './state-store.js';

export interface MemoryStoreOptions {
  /** Most keys kept; the least recently used goes first. Default 1,000,000. */
  readonly maxKeys?: number | undefined;
  readonly clock?: Clock | undefined;
}

interface Item {
  value: string;
  /** Clock ms when the key expires; 0 = never. */
  expiresAt: number;
}

const INTEGER = /^-?(0|[1-9][0-9]*)$/;

/**
 * The StateStore of one process: a Map with per-key TTL, a bound on the number of keys
 * (least recently used evicted) and in-process publish/subscribe. It is what `cluster.store:
 * memory` gives; every operation completes at once (the Promise is already settled).
 */
export class MemoryStore implements StateStore {
  private readonly items = new Map<string, Item>();
  private readonly channels = new Map<string, Set<(msg: string) => void>>();
  private readonly maxKeys: number;
  private readonly clock: Clock;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.maxKeys = options.maxKeys ?? 1_000_000;
    this.clock = options.clock ?? systemClock;
    if (!(this.maxKeys >= 1)) throw new RangeError('maxKeys must be at least 1');
  }

  /** Keys held (expired ones not yet dropped included). */
  get size(): number {
    return this.items.size;
  }

  async get(key: string): Promise<string | undefined> {
    this.open();
    return this.live(key)?.value;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.open();
    this.put(key, value, expiry(ttlMs, this.clock));
  }

  async delete(key: string): Promise<void> {
    this.open();
    this.items.delete(key);
  }

  async incr(key: string, by: number, ttlMs?: number): Promise<number> {
    this.open();
    if (!Number.isSafeInteger(by)) throw new RangeError(`incr by ${by}: not an integer`);
    const at = expiry(ttlMs, this.clock);
    const it = this.live(key);
    if (it === undefined) {
      this.put(key, String(by), at);
      return by;
    }
    if (!INTEGER.test(it.value)) throw new TypeError(`incr ${key}: the value is not an integer`);
    const n = Number(it.value) + by;
    if (!Number.isSafeInteger(n)) throw new RangeError(`incr ${key}: out of range`);
    it.value = String(n);
    return n;
  }

  async subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void> {
    this.open();
    if (signal.aborted) return;
    let subs = this.channels.get(channel);
    if (subs === undefined) {
      subs = new Set();
      this.channels.set(channel, subs);
    }
    // One wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const deliver = (msg: string): void => onMessage(msg);
    subs.add(deliver);
    signal.addEventListener(
      'abort',
      () => {
        subs.delete(deliver);
        if (subs.size === 0 && this.channels.get(channel) === subs) this.channels.delete(channel);
      },
      { once: true },
    );
  }

  async publish(channel: string, msg: string): Promise<void> {
    this.open();
    const subs = this.channels.get(channel);
    if (subs === undefined) return;
    // Delivered after publish returns, in publish order, as a network store would.
    for (const fn of [...subs]) {
      queueMicrotask(() => {
        if (!subs.has(fn)) return;
        try {
          fn(msg);
        } catch {
          // a subscriber's fault stays with the subscriber
        }
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.items.clear();
    this.channels.clear();
  }

  private open(): void {
    if (this.closed) throw new Error('the store is closed');
  }

  /** The item of `key` when present and not expired, marked as most recently used. */
  private live(key: string): Item | undefined {
    const items = this.items;
    const it = items.get(key);
    if (it === undefined) return undefined;
    items.delete(key);
    if (it.expiresAt !== 0 && it.expiresAt <= this.clock.now()) return undefined;
    items.set(key, it);
    return it;
  }

  private put(key: string, value: string, expiresAt: number): void {
    const items = this.items;
    items.delete(key);
    items.set(key, { value, expiresAt });
    while (items.size > this.maxKeys) {
      const oldest = items.keys().next();
      if (oldest.done === true) break;
      items.delete(oldest.value);
    }
  }
}

function expiry(ttlMs: number | undefined, clock: Clock): number {
  if (ttlMs === undefined) return 0;
  if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be a positive number of milliseconds, got ${ttlMs}`);
  return clock.now() + ttlMs;
}
