/**
 * One configured cache (`caches[]`): its memory store, the fetches in progress (coalescing), the
 * background refreshes (stale-while-revalidate) and its counters. Shared by every route that names
 * it; kept across a reload while its spec is unchanged.
 */
import { FillTable } from './fill.js';
import { MemoryStore, type CacheObject } from './store.js';

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

  constructor(readonly spec: CacheSpec) {
    this.store = new MemoryStore({ maxBytes: spec.memory, maxObjectSize: spec.maxObjectSize });
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
    };
  }
}

/** The caches of a configuration, by name; a reload keeps each one whose spec is unchanged. */
export class CacheSet {
  private caches = new Map<string, Cache>();

  get(name: string): Cache | undefined {
    return this.caches.get(name);
  }

  all(): Cache[] {
    return [...this.caches.values()];
  }

  /** Apply the `caches:` of a (re)loaded configuration. */
  update(specs: readonly CacheSpec[]): void {
    const next = new Map<string, Cache>();
    for (const s of specs) {
      const old = this.caches.get(s.name);
      next.set(s.name, old !== undefined && sameSpec(old.spec, s) ? old : new Cache(s));
    }
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
