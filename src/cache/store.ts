/**
 * The memory store of a cache: objects found by primary key and variant key, evicted least
 * recently used first when the bytes they hold pass `maxBytes`, purged by URL (every variant),
 * by path prefix or by tag (`Surrogate-Key`). Pure: no I/O, no timers; time comes from the
 * policies (wall clock, since HTTP dates are) and the caller's monotonic clock for `keep`.
 */
import { keyPath, parseVary, variantKey } from './key.js';
import type { Fields, StoredPolicy } from './policy.js';

/**
 * The head a plain hit was last answered with (the cache phase's, kept so that hits within one
 * second do not serialise it again): valid for one policy, one route, one `Age` and one second of
 * `Date`. `text` is the status line and header lines; `status` the Cache-Status parameters.
 */
export interface HitHead {
  readonly policy: StoredPolicy;
  readonly route: object;
  readonly age: number;
  readonly second: number;
  readonly text: string;
  readonly status: string;
}

/** A whole response (head, blank line and body) as one buffer, and the head text it was made from. */
export interface Wire {
  readonly head: string;
  readonly buf: Buffer;
}

/** A stored response: its policy (head, freshness), its body as received, its tags. */
export class CacheObject {
  /** Position in the LRU order is the store's Map order; `size` counts body and head. */
  size = 0;
  /** Monotonic ms when the object was seen stale first (for `keep`); 0 while fresh. */
  private staleAt = 0;
  /** The body in other forms, by name (compressed variants: `gzip/5`), counted in `size`. */
  variants: Map<string, Buffer> | undefined = undefined;
  /** The last plain hit's head (see HitHead). */
  hitHead: HitHead | undefined = undefined;
  /** The last hit sent as one buffer; the body is then a view of it (see `adoptWire`). */
  wire: Wire | undefined = undefined;
  /** The body: one buffer as the cache phase stores it (a hit is one write), or the chunks given. */
  private chunks: readonly Buffer[];
  constructor(
    readonly key: string,
    readonly variant: string,
    public policy: StoredPolicy,
    body: readonly Buffer[],
    readonly bodyLength: number,
    readonly tags: readonly string[],
  ) {
    this.chunks = body;
    let head = 64;
    const h = policy.storedHeaders();
    for (const n in h) head += n.length + h[n]!.length + 4;
    this.size = bodyLength + head;
  }

  get body(): readonly Buffer[] {
    return this.chunks;
  }

  /**
   * Keep `buf`, a whole response whose last `bodyLength` bytes are this body, as the object's
   * wire; the body becomes a view of it, so the object holds its bytes once (the buffer the body
   * was in before is released once what is sending it is done).
   */
  adoptWire(head: string, buf: Buffer): void {
    this.wire = { head, buf };
    this.chunks = [buf.subarray(buf.length - this.bodyLength)];
  }

  /** How long (ms) the object has been stale, as first noticed at `nowMs`. */
  staleSince(nowMs: number): number {
    if (!this.policy.isStale()) {
      this.staleAt = 0;
      return 0;
    }
    if (this.staleAt === 0) this.staleAt = nowMs;
    return nowMs - this.staleAt;
  }
}

/** Every variant stored for one primary key, and the `Vary` names the newest response gave. */
interface Group {
  vary: string[];
  variants: Map<string, CacheObject>;
}

export interface CacheCounters {
  hits: number;
  misses: number;
  stale: number;
  evictions: number;
}

export interface MemoryStoreOptions {
  maxBytes: number;
  maxObjectSize: number;
}

export class MemoryStore {
  private readonly groups = new Map<string, Group>();
  /** Every object, least recently used first. */
  private readonly lru = new Map<CacheObject, true>();
  private readonly tags = new Map<string, Set<CacheObject>>();
  /** The object last put at the end of `lru` (the most recently used), while it is there. */
  private newest: CacheObject | undefined = undefined;
  private bytesHeld = 0;
  readonly counters: CacheCounters = { hits: 0, misses: 0, stale: 0, evictions: 0 };

  constructor(private readonly opts: MemoryStoreOptions) {}

  get entries(): number {
    return this.lru.size;
  }
  get bytes(): number {
    return this.bytesHeld;
  }
  get maxObjectSize(): number {
    return this.opts.maxObjectSize;
  }

  /** The variant of `key` that a request with these header fields selects, and marks it used. */
  lookup(key: string, reqHeaders: Readonly<Record<string, string | undefined>>): CacheObject | undefined {
    const g = this.groups.get(key);
    if (g === undefined) return undefined;
    const o = g.variants.get(variantKey(g.vary, reqHeaders));
    if (o !== undefined) this.touch(o);
    return o;
  }

  /**
   * Store an object (replacing the variant it selects); false when it is larger than
   * `maxObjectSize` or than the whole store. Evicts least recently used objects to make room.
   */
  insert(key: string, reqHeaders: Readonly<Record<string, string | undefined>>, policy: StoredPolicy, body: readonly Buffer[], bodyLength: number): CacheObject | undefined {
    if (bodyLength > this.opts.maxObjectSize) return undefined;
    const res = policy.storedHeaders();
    const vary = parseVary(res['vary']);
    const o = new CacheObject(key, variantKey(vary, reqHeaders), policy, body, bodyLength, surrogateKeys(res));
    if (o.size > this.opts.maxBytes) return undefined;
    const old = this.groups.get(key);
    if (old !== undefined) {
      if (!sameList(old.vary, vary)) {
        // The server now varies on other fields: the variants stored under the old ones cannot be selected.
        for (const v of [...old.variants.values()]) this.remove(v);
      } else {
        const prev = old.variants.get(o.variant);
        if (prev !== undefined) this.remove(prev);
      }
    }
    // Removing the last variant removed the group: take it as it is now.
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { vary, variants: new Map() };
      this.groups.set(key, g);
    }
    g.variants.set(o.variant, o);
    this.lru.set(o, true);
    this.newest = o;
    this.bytesHeld += o.size;
    for (const t of o.tags) {
      let s = this.tags.get(t);
      if (s === undefined) this.tags.set(t, (s = new Set()));
      s.add(o);
    }
    this.evict();
    return this.lru.has(o) ? o : undefined;
  }

  /** Replace an object's policy after a revalidation (its body stays). */
  refresh(o: CacheObject, policy: StoredPolicy): void {
    if (!this.lru.has(o)) return;
    o.policy = policy;
    this.touch(o);
  }

  /** Mark `o` (stored) most recently used: to the end of the LRU order, unless it is there already (a hot object's hits move nothing). */
  private touch(o: CacheObject): void {
    if (o === this.newest) return;
    this.lru.delete(o);
    this.lru.set(o, true);
    this.newest = o;
  }

  /**
   * Keep the body of a stored object in another form (a compressed variant, by coding and
   * level), counted in the object's size and the store's bytes; false when it is not kept (the
   * object is no longer stored, has it already, or the variant is larger than `maxObjectSize`).
   */
  addVariant(o: CacheObject, name: string, body: Buffer): boolean {
    if (!this.lru.has(o) || body.length > this.opts.maxObjectSize || o.variants?.has(name) === true) return false;
    (o.variants ??= new Map()).set(name, body);
    const n = body.length + name.length + 32;
    o.size += n;
    this.bytesHeld += n;
    this.evict();
    return this.lru.has(o);
  }

  remove(o: CacheObject): boolean {
    if (!this.lru.delete(o)) return false;
    if (this.newest === o) this.newest = undefined;
    this.bytesHeld -= o.size;
    const g = this.groups.get(o.key);
    if (g !== undefined && g.variants.get(o.variant) === o) {
      g.variants.delete(o.variant);
      if (g.variants.size === 0) this.groups.delete(o.key);
    }
    for (const t of o.tags) {
      const s = this.tags.get(t);
      if (s === undefined) continue;
      s.delete(o);
      if (s.size === 0) this.tags.delete(t);
    }
    return true;
  }

  /** Every variant of one primary key. */
  purgeKey(key: string): number {
    const g = this.groups.get(key);
    if (g === undefined) return 0;
    let n = 0;
    for (const o of [...g.variants.values()]) if (this.remove(o)) n++;
    return n;
  }

  /**
   * Purge by URL: `/path?q` removes that target on every host, `http://host/path` (or
   * `host/path`) that host's only. Every variant goes.
   */
  purgeUrl(url: string): number {
    if (!url.startsWith('/')) return this.purgeKey(urlKey(url));
    let n = 0;
    for (const key of [...this.groups.keys()]) if (keyPath(key) === url) n += this.purgeKey(key);
    return n;
  }

  /** Every object whose target starts with `prefix` (a path), on every host. */
  purgePrefix(prefix: string): number {
    let n = 0;
    for (const key of [...this.groups.keys()]) if (keyPath(key).startsWith(prefix)) n += this.purgeKey(key);
    return n;
  }

  /** Every object whose `Surrogate-Key` lists `tag`. */
  purgeTag(tag: string): number {
    const s = this.tags.get(tag);
    if (s === undefined) return 0;
    let n = 0;
    for (const o of [...s]) if (this.remove(o)) n++;
    return n;
  }

  /** Remove every object for which `expired(o)` holds (a periodic sweep of what `keep` no longer allows). */
  prune(expired: (o: CacheObject) => boolean): number {
    let n = 0;
    for (const o of [...this.lru.keys()]) if (expired(o) && this.remove(o)) n++;
    return n;
  }

  clear(): void {
    for (const o of [...this.lru.keys()]) this.remove(o);
  }

  private evict(): void {
    while (this.bytesHeld > this.opts.maxBytes) {
      const oldest = this.lru.keys().next();
      if (oldest.done) return;
      this.remove(oldest.value);
      this.counters.evictions++;
    }
  }
}

/** The primary key of a purge's `http://host/path` or `host/path` (the host lower-cased, `/` when there is no path). */
export function urlKey(url: string): string {
  const k = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = k.indexOf('/');
  return slash < 0 ? k.toLowerCase() + '/' : k.slice(0, slash).toLowerCase() + k.slice(slash);
}

/** `Surrogate-Key: a b c` (space-separated tags). */
export function surrogateKeys(h: Fields): string[] {
  const v = h['surrogate-key'];
  if (v === undefined) return [];
  return [...new Set(v.split(/[\s,]+/).filter((t) => t !== ''))];
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
