/**
 * The shared tier of a cache (`shared: true`): objects up to `sharedMaxObjectSize` are also
 * written to `cluster.store` (Redis), so that every node and worker process can answer what one
 * of them fetched, and a process that starts finds them there. The memory tier stays first: the
 * shared tier is asked only on a memory miss, written after a store or a revalidation (without
 * waiting), and purged with the memory tier. A failure of the shared tier is counted and costs no
 * request: the lookup is a miss, the write is skipped.
 *
 * What is written per object: the policy's state (http-cache-semantics' `toObject`, with the
 * request fields cut down to those its Vary names: no cookie or credential of the request that
 * fetched it goes to the store), then the body. It expires in the store when the object is of no
 * more use (StoredPolicy.usableFor: the remaining freshness, then `keep` or its stale allowances).
 * The layout in Redis is src/store/redis-cache.ts's.
 */
import { randomBytes } from 'node:crypto';
import { parseVary, variantKey } from './key.js';
import { StoredPolicy } from './policy.js';
import type { CacheObject } from './store.js';

/** What the shared tier asks of the store (src/store/redis-cache.ts's RedisCacheBackend). */
export interface SharedBackend {
  readonly isUp: boolean;
  lookup(cache: string, pk: string): Promise<{ readonly vary: string; readonly blob: Buffer | undefined } | undefined>;
  variant(cache: string, pk: string, variant: string): Promise<Buffer | undefined>;
  put(cache: string, pk: string, variant: string, vary: string, tags: readonly string[], blob: Buffer, ttlMs: number): Promise<void>;
  purgeKey(cache: string, pk: string): Promise<number>;
  purgeTarget(cache: string, target: string): Promise<number>;
  purgePrefix(cache: string, prefix: string): Promise<number>;
  purgeTag(cache: string, tag: string): Promise<number>;
  publish(channel: string, msg: string): Promise<void>;
  subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void>;
}

/** A purge: every variant of a primary key, of a target on every host, of a path prefix, of a tag. */
export type PurgeKind = 'key' | 'url' | 'prefix' | 'tag';

/** An object read from the shared tier. */
export interface SharedObject {
  readonly policy: StoredPolicy;
  readonly body: Buffer;
}

export interface SharedTierOptions {
  readonly cache: string;
  readonly maxObjectSize: number;
  /** ms an expired object with a validator is kept (the cache's `keep`). */
  readonly keepMs: number;
  /** Another process purged: do the same in this one's memory tier. */
  readonly onRemotePurge: (kind: PurgeKind, value: string) => void;
}

/** Format of the stored value: this tag, a JSON line, the body. */
const FORMAT = 1;

export class SharedTier {
  /** Figures for the metrics: answers found, lookups that found nothing, writes, failed operations. */
  readonly counters = { hits: 0, misses: 0, writes: 0, errors: 0 };
  private readonly channel: string;
  private readonly self = randomBytes(8).toString('hex');
  private readonly ac = new AbortController();

  constructor(
    private readonly backend: SharedBackend,
    private readonly o: SharedTierOptions,
  ) {
    this.channel = 'cache:' + o.cache + ':purge';
  }

  /** Follow the purges of the other processes (until close). */
  listen(): void {
    this.backend
      .subscribe(
        this.channel,
        (msg) => {
          const m = parsePurge(msg);
          if (m !== undefined && m.from !== this.self) this.o.onRemotePurge(m.kind, m.value);
        },
        this.ac.signal,
      )
      .catch(() => this.counters.errors++);
  }

  close(): void {
    this.ac.abort();
  }

  /** The object a request selects, or undefined (not there, unreadable, or the store failed). Never rejects. */
  async find(pk: string, reqHeaders: Readonly<Record<string, string | undefined>>): Promise<SharedObject | undefined> {
    try {
      const l = await this.backend.lookup(this.o.cache, pk);
      let blob: Buffer | undefined;
      if (l !== undefined) {
        const vary = l.vary === '' ? [] : l.vary.split(',');
        blob = vary.length === 0 ? l.blob : await this.backend.variant(this.o.cache, pk, variantKey(vary, reqHeaders));
      }
      const obj = blob === undefined ? undefined : decode(blob);
      if (obj === undefined) this.counters.misses++;
      else this.counters.hits++;
      return obj;
    } catch {
      this.counters.errors++;
      return undefined;
    }
  }

  /** Write an object just stored or revalidated in memory (when it fits); not waited for. */
  save(o: CacheObject): void {
    if (o.bodyLength > this.o.maxObjectSize) return;
    const ttl = o.policy.usableFor(this.o.keepMs);
    if (ttl <= 0) return;
    const headers = o.policy.storedHeaders();
    const vary = parseVary(headers['vary']);
    let blob: Buffer;
    try {
      blob = encode(o.policy, vary, o.body, o.bodyLength);
    } catch {
      this.counters.errors++;
      return;
    }
    this.backend.put(this.o.cache, o.key, o.variant, vary.join(','), o.tags, blob, ttl).then(
      () => void this.counters.writes++,
      () => void this.counters.errors++,
    );
  }

  /**
   * Remove from the store and tell the other processes to purge their memory tier. The objects
   * removed from the store, or undefined when it failed (the memory purge stands either way).
   */
  async purge(kind: PurgeKind, value: string): Promise<number | undefined> {
    this.backend.publish(this.channel, JSON.stringify({ from: this.self, kind, value })).catch(() => void this.counters.errors++);
    try {
      const c = this.o.cache;
      if (kind === 'key') return await this.backend.purgeKey(c, value);
      if (kind === 'url') return await this.backend.purgeTarget(c, value);
      if (kind === 'prefix') return await this.backend.purgePrefix(c, value);
      return await this.backend.purgeTag(c, value);
    } catch {
      this.counters.errors++;
      return undefined;
    }
  }
}

function encode(policy: StoredPolicy, vary: readonly string[], body: readonly Buffer[], length: number): Buffer {
  const p = policy.toObject() as { reqh?: Record<string, string> };
  const reqh: Record<string, string> = {};
  const from = p.reqh ?? {};
  for (const n of vary) if (from[n] !== undefined) reqh[n] = from[n];
  if (from['host'] !== undefined) reqh['host'] = from['host'];
  const head = Buffer.from(JSON.stringify({ f: FORMAT, n: length, p: { ...p, reqh } }) + '\n', 'utf8');
  return Buffer.concat([head, ...body], head.length + length);
}

/** A stored value back to a policy and a body; undefined when it is not one this version wrote. */
export function decode(blob: Buffer): SharedObject | undefined {
  const nl = blob.indexOf(10);
  if (nl < 0) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(blob.toString('utf8', 0, nl));
  } catch {
    return undefined;
  }
  if (typeof meta !== 'object' || meta === null) return undefined;
  const m = meta as { f?: unknown; n?: unknown; p?: unknown };
  if (m.f !== FORMAT || typeof m.n !== 'number' || typeof m.p !== 'object' || m.p === null) return undefined;
  const body = blob.subarray(nl + 1);
  if (body.length !== m.n) return undefined;
  let policy: StoredPolicy;
  try {
    policy = StoredPolicy.fromObject(m.p);
  } catch {
    return undefined;
  }
  return { policy, body };
}

function parsePurge(msg: string): { from: string; kind: PurgeKind; value: string } | undefined {
  try {
    const m = JSON.parse(msg) as { from?: unknown; kind?: unknown; value?: unknown };
    if (typeof m.from !== 'string' || typeof m.value !== 'string') return undefined;
    if (m.kind !== 'key' && m.kind !== 'url' && m.kind !== 'prefix' && m.kind !== 'tag') return undefined;
    return { from: m.from, kind: m.kind, value: m.value };
  } catch {
    return undefined;
  }
}
