import type { Clock } from '../core/clock.js';
import type { StateStore } from '../store/state-store.js';

export interface StickTableOptions {
  /** Prefix of this table's keys in the store, e.g. `stick:web:source-ip:`. */
  readonly namespace: string;
  /** An entry not used for this long is forgotten (idle expiry). */
  readonly ttlMs: number;
  /** Most entries kept; the least recently used one goes first. */
  readonly size: number;
  readonly clock: Clock;
  /** Where entries are written through to; none: this node only. */
  readonly store?: StateStore | undefined;
  /**
   * The store is shared with other nodes: a local miss asks it (asynchronously, up to
   * `storeTimeoutMs`). Without it the local table is complete and a miss is answered at once.
   */
  readonly readThrough?: boolean | undefined;
  /** Longest wait for the store on a miss; then the key counts as absent. Default 100 ms. */
  readonly storeTimeoutMs?: number | undefined;
  /** Told of every store failure (logged by the owner); the table carries on without the store. */
  readonly onStoreError?: ((err: unknown) => void) | undefined;
}

interface Entry {
  value: string;
  expiresAt: number;
  /** When the store last got this entry (its TTL was refreshed). */
  syncedAt: number;
  /** The store's generation when it got this entry: a store that reconnected since gets it again. */
  syncedGen: number | undefined;
}

/**
 * A stick table: key → value with an idle TTL and a size bound (least recently used evicted),
 * read synchronously on the request path. The local map is a write-through cache in front of
 * a StateStore: every new or changed entry is written to the store (in the background), a
 * live entry refreshes its store TTL at most twice per TTL, an evicted entry is deleted from
 * the store. A store failure never fails a lookup: the key is "not pinned".
 */
export class StickTable {
  private readonly map = new Map<string, Entry>();
  private readonly o: StickTableOptions;
  private readonly ttlMs: number;
  private readonly refreshMs: number;
  private storeErrors = 0;

  constructor(options: StickTableOptions) {
    this.o = options;
    this.ttlMs = options.ttlMs;
    this.refreshMs = options.ttlMs / 2;
  }

  /** Entries held locally (some may have expired and not yet been dropped). */
  get size(): number {
    return this.map.size;
  }

  /** Store operations that failed or timed out so far. */
  get errors(): number {
    return this.storeErrors;
  }

  /**
   * The value of `key`, refreshing its idle time; undefined when absent or expired. A Promise only
   * on a local miss with a shared store; it settles within the store timeout and never rejects.
   */
  get(key: string): string | undefined | Promise<string | undefined> {
    const v = this.peek(key);
    if (v !== undefined || this.o.readThrough !== true || this.o.store === undefined) return v;
    return this.fetch(key);
  }

  /** The local value of `key`, refreshing its idle time; never asks the store. */
  peek(key: string): string | undefined {
    const map = this.map;
    const e = map.get(key);
    if (e === undefined) return undefined;
    const now = this.o.clock.now();
    if (e.expiresAt <= now) {
      map.delete(key);
      return undefined;
    }
    map.delete(key);
    map.set(key, e);
    e.expiresAt = now + this.ttlMs;
    if (now - e.syncedAt >= this.refreshMs || e.syncedGen !== this.o.store?.generation) this.write(key, e, now);
    return e.value;
  }

  /** Pin `key` to `value` (or refresh it when it already is). */
  set(key: string, value: string): void {
    const map = this.map;
    const now = this.o.clock.now();
    const e = map.get(key);
    if (e !== undefined) {
      map.delete(key);
      map.set(key, e);
      e.expiresAt = now + this.ttlMs;
      if (e.value === value) {
        if (now - e.syncedAt >= this.refreshMs || e.syncedGen !== this.o.store?.generation) this.write(key, e, now);
        return;
      }
      e.value = value;
      this.write(key, e, now);
      return;
    }
    const ne: Entry = { value, expiresAt: now + this.ttlMs, syncedAt: now, syncedGen: this.o.store?.generation };
    map.set(key, ne);
    this.evictOver(now);
    this.write(key, ne, now);
  }

  delete(key: string): void {
    if (!this.map.delete(key)) return;
    this.storeDelete(key);
  }

  private evictOver(now: number): void {
    const map = this.map;
    while (map.size > this.o.size) {
      const oldest = map.keys().next();
      if (oldest.done === true) return;
      const k = oldest.value;
      const e = map.get(k)!;
      map.delete(k);
      if (e.expiresAt > now) this.storeDelete(k); // an expired one expires in the store by itself
    }
  }

  private write(key: string, e: Entry, now: number): void {
    e.syncedAt = now;
    const store = this.o.store;
    e.syncedGen = store?.generation;
    if (store === undefined) return;
    // A failed write is made again on the entry's next use (so a store back after an outage
    // gets the entries in use, spread over their clients' next requests, not all at once).
    const unsynced = (err: unknown): void => {
      if (e.syncedAt === now) e.syncedAt = -Infinity;
      this.failed(err);
    };
    try {
      store.set(this.o.namespace + key, e.value, this.ttlMs).catch(unsynced);
    } catch (err) {
      unsynced(err);
    }
  }

  private storeDelete(key: string): void {
    const store = this.o.store;
    if (store === undefined) return;
    try {
      store.delete(this.o.namespace + key).catch(this.failed);
    } catch (err) {
      this.failed(err);
    }
  }

  private readonly failed = (err: unknown): void => {
    this.storeErrors++;
    try {
      this.o.onStoreError?.(err);
    } catch {
      // an observer's fault is not the table's
    }
  };

  private fetch(key: string): Promise<string | undefined> {
    const store = this.o.store!;
    const timeoutMs = this.o.storeTimeoutMs ?? 100;
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.failed(new Error(`store did not answer within ${timeoutMs} ms`));
        resolve(undefined);
      }, timeoutMs);
      const done = (v: string | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (v !== undefined && !this.map.has(key)) {
          const now = this.o.clock.now();
          this.map.set(key, { value: v, expiresAt: now + this.ttlMs, syncedAt: now, syncedGen: this.o.store?.generation });
          this.evictOver(now);
        }
        resolve(v);
      };
      try {
        store.get(this.o.namespace + key).then(done, (err: unknown) => {
          this.failed(err);
          done(undefined);
        });
      } catch (err) {
        this.failed(err);
        done(undefined);
      }
    });
  }
}
