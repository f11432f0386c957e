/**
 * One configured cache (`caches[]`): its memory store, the fetches in progress (coalescing), the
 * background refreshes (stale-while-revalidate) and its counters. Shared by every route that names
 * it; kept across a reload while its spec is unchanged.
 */
import { FillTable } from './fill.js';
import { primaryKey } from './key.js';
import type { StoredPolicy } from './policy.js';
import { SharedTier, type PurgeKind, type SharedBackend } from './shared.js';
import { MemoryStore, urlKey, type CacheObject } from './store.js';

export interface CacheSpec {
  readonly name: string;
  readonly memory: number;
  readonly maxObjectSize: number;
  /** ms an expired object with a validator is kept for revalidation. */
  readonly keep: number;
  /** ms a key found uncacheable goes straight to the server. */
  readonly hitForMiss: number;
  readonly shared: boolean;
  readonly sharedMaxObjectSize: number;
}

/** The result labels of `portico_cache_requests_total` (SPEC §6). */
export type CacheResult = 'hit' | 'miss' | 'stale' | 'revalidated' | 'bypass' | 'uncacheable';

export const CACHE_RESULTS: readonly CacheResult[] = ['hit', 'miss', 'stale', 'revalidated', 'bypass', 'uncacheable'];

/** One cache in `GET /api/v1/caches`. */
export interface CacheView {
  readonly name: string;
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly stale: number;
  readonly revalidated: number;
  /** Answers from the cache (fresh, stale or revalidated) over every request counted; null before any. */
  readonly hitRatio: number | null;
  readonly evictions: number;
  /**
   * The shared tier's figures (`shared: true` with a Redis cluster.store; absent otherwise), as
   * `portico_cache_shared_requests_total` and `portico_cache_shared_errors_total` count them:
   * lookups after a memory miss that found the object (`hits`) or not (`misses`), objects
   * written (`writes`), operations that failed (`errors`: the request went on with memory).
   */
  readonly shared?: SharedView;
}

/** The shared tier's part of a CacheView. */
export interface SharedView {
  readonly hits: number;
  readonly misses: number;
  readonly writes: number;
  readonly errors: number;
}

/**
 * The share of requests answered from the cache: fresh hits, stale answers and revalidations
 * (the server said 304 and the stored body went out) over all of them, as
 * `portico_cache_requests_total` counts them; null before any.
 */
export function cacheHitRatio(hits: number, misses: number, stale: number, revalidated: number): number | null {
  const total = hits + misses + stale + revalidated;
  return total === 0 ? null : (hits + stale + revalidated) / total;
}

export class Cache {
  readonly store: MemoryStore;
  readonly fills = new FillTable();
  /** Keys with a background refresh under way (one at a time per key). */
  readonly refreshing = new Set<string>();
  readonly requests: Record<CacheResult, number> = { hit: 0, miss: 0, stale: 0, revalidated: 0, bypass: 0, uncacheable: 0 };

  /** The shared tier (`shared: true` with a Redis `cluster.store`), undefined otherwise. */
  readonly shared: SharedTier | undefined;

  constructor(
    readonly spec: CacheSpec,
    backend?: SharedBackend,
  ) {
    this.store = new MemoryStore({ maxBytes: spec.memory, maxObjectSize: spec.maxObjectSize });
    if (spec.shared && backend !== undefined) {
      this.shared = new SharedTier(backend, {
        cache: spec.name,
        maxObjectSize: Math.min(spec.sharedMaxObjectSize, spec.maxObjectSize),
        keepMs: spec.keep,
        onRemotePurge: (kind, value) => void this.purgeMemory(kind, value),
      });
      this.shared.listen();
    }
  }

  /** Store a response in memory (and in the shared tier); the object, or undefined when it was not kept. */
  insert(key: string, reqHeaders: Readonly<Record<string, string | undefined>>, policy: StoredPolicy, body: readonly Buffer[], bodyLength: number): CacheObject | undefined {
    const o = this.store.insert(key, reqHeaders, policy, body, bodyLength);
    if (o !== undefined) this.shared?.save(o);
    return o;
  }

  /** A revalidated object's new policy (memory, and the shared tier). */
  refresh(o: CacheObject, policy: StoredPolicy): void {
    this.store.refresh(o, policy);
    this.shared?.save(o);
  }

  /**
   * Purge in memory and in the shared tier (whose other processes purge their memory too).
   * `purged`: objects removed from this process's memory; `shared`: from the shared tier
   * (undefined without one, or when it failed: see `sharedFailed`).
   */
  async purge(kind: PurgeKind, value: string): Promise<{ purged: number; shared?: number; sharedFailed?: true }> {
    const purged = this.purgeMemory(kind, value);
    if (this.shared === undefined) return { purged };
    const n = await this.shared.purge(kind === 'url' && !value.startsWith('/') ? 'key' : kind, kind === 'url' && !value.startsWith('/') ? urlKey(value) : value);
    return n === undefined ? { purged, sharedFailed: true } : { purged, shared: n };
  }

  /** RFC 9111 §4.4: an unsafe method's success removes the stored responses for a target of its host. */
  invalidate(host: string, target: string): void {
    const key = primaryKey(host, target);
    this.store.purgeKey(key);
    if (this.shared !== undefined) void this.shared.purge('key', key);
  }

  private purgeMemory(kind: PurgeKind, value: string): number {
    if (kind === 'key') return this.store.purgeKey(value);
    if (kind === 'url') return this.store.purgeUrl(value);
    if (kind === 'prefix') return this.store.purgePrefix(value);
    return this.store.purgeTag(value);
  }

  /** Release what the cache holds outside memory (the shared tier's subscription). */
  close(): void {
    this.shared?.close();
  }

  get name(): string {
    return this.spec.name;
  }

  count(r: CacheResult): void {
    this.requests[r]++;
  }

  /**
   * Drop what may no longer be served: objects past their freshness, their stale allowances and,
   * for those with a validator, `keep`. Run now and then (not per request).
   */
  prune(nowMs: number): number {
    return this.store.prune((o: CacheObject) => {
      if (!o.policy.isStale()) return false;
      if (o.policy.staleIfError() || o.policy.evaluate({ method: 'GET', url: '', headers: {} }) === 'stale-while-revalidate') return false;
      if (!o.policy.hasValidator()) return true;
      return o.staleSince(nowMs) > this.spec.keep;
    });
  }

  /**
   * The view of `GET /api/v1/caches`: every request `portico_cache_requests_total` counts is in
   * one of hits (`hit`), misses (`miss`, `uncacheable`, `bypass`: the server answered), stale and
   * revalidated (the server said 304, the stored body was sent), so the hit ratio (cacheHitRatio)
   * is the one the metric gives.
   */
  view(): CacheView {
    const r = this.requests;
    const hits = r.hit;
    const misses = r.miss + r.uncacheable + r.bypass;
    return {
      name: this.name,
      entries: this.store.entries,
      bytes: this.store.bytes,
      hits,
      misses,
      stale: r.stale,
      revalidated: r.revalidated,
      hitRatio: cacheHitRatio(hits, misses, r.stale, r.revalidated),
      evictions: this.store.counters.evictions,
      ...(this.shared === undefined ? {} : { shared: { ...this.shared.counters } }),
    };
  }
}

/** The caches of a configuration, by name; a reload keeps each one whose spec is unchanged. */
export class CacheSet {
  private caches = new Map<string, Cache>();
  /** Where `shared: true` caches keep their shared tier (a Redis cluster.store); none: memory only. */
  private backend: SharedBackend | undefined;

  /** Give the shared tier's store; caches made after this use it. */
  useShared(backend: SharedBackend | undefined): void {
    this.backend = backend;
  }

  get(name: string): Cache | undefined {
    return this.caches.get(name);
  }

  all(): Cache[] {
    return [...this.caches.values()];
  }

  close(): void {
    for (const c of this.caches.values()) c.close();
  }

  /** Apply the `caches:` of a (re)loaded configuration. */
  update(specs: readonly CacheSpec[]): void {
    const next = new Map<string, Cache>();
    for (const s of specs) {
      const old = this.caches.get(s.name);
      next.set(s.name, old !== undefined && sameSpec(old.spec, s) ? old : new Cache(s, this.backend));
    }
    for (const [name, c] of this.caches) if (next.get(name) !== c) c.close();
    this.caches = next;
  }
}

function sameSpec(a: CacheSpec, b: CacheSpec): boolean {
  return (
    a.memory === b.memory &&
    a.maxObjectSize === b.maxObjectSize &&
    a.keep === b.keep &&
    a.hitForMiss === b.hitForMiss &&
    a.shared === b.shared &&
    a.sharedMaxObjectSize === b.sharedMaxObjectSize
  );
}
