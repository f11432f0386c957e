import type { Server, ServerId } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import type { ActiveCounts, Balancer, BalancerDeps, BalancerFactory, PickContext } from './balancer.js';
import { fmix32, jumpHash, murmur3, SEED_KEY, SEED_KEY_HI } from './hash-fn.js';
import { kernelSourceBucket } from './jhash.js';
import { buildMaglevTable, isPrime, MAX_MAGLEV_TABLE } from './maglev.js';
import { BalancerOptionsError, enumOption, numberOption, optionsObject } from './options.js';
import { buildRing, ringLookup } from './ring-hash.js';
import { SmoothWeightedRoundRobin, type RoundRobinCursor } from './round-robin.js';
import { byName, weightedAvailable, type WeightedServers } from './weights.js';

export type HashMethod = 'maglev' | 'ring' | 'jump';

/** Where the pool takes the key from (`hash.key`); the balancer itself only sees `ctx.hashKey`. */
export type HashKeySpec =
  | { readonly kind: 'source-ip' }
  | { readonly kind: 'uri' }
  | { readonly kind: 'header' | 'cookie' | 'query'; readonly name: string };

export interface HashOptions {
  /** As configured: `source-ip | uri | header:NAME | cookie:NAME | query:NAME`. */
  readonly key: string;
  /** `key` parsed; header names in lower case. */
  readonly keySpec: HashKeySpec;
  readonly method: HashMethod;
  /** Bounded loads: c > 1 (1.25 = at most 25 % over the weighted average in-flight). Off when undefined. */
  readonly boundedLoad: number | undefined;
  /** Maglev table size, a prime (default 65537). */
  readonly tableSize: number;
  /** Ring points per server of average weight (default 160). */
  readonly vnodes: number;
}

const KEY = /^(source-ip|uri|(header|cookie|query):(.+))$/;

export function parseHashOptions(raw: unknown): HashOptions {
  const o = optionsObject('hash', raw, ['key', 'method', 'boundedLoad', 'tableSize', 'vnodes']);
  const key = o['key'];
  if (key === undefined) throw new BalancerOptionsError('hash', 'key', 'is required (source-ip | uri | header:NAME | cookie:NAME | query:NAME)');
  const m = typeof key === 'string' ? KEY.exec(key) : null;
  if (m === null) {
    throw new BalancerOptionsError('hash', 'key', `must be source-ip, uri, header:NAME, cookie:NAME or query:NAME (got ${JSON.stringify(key)})`);
  }
  let keySpec: HashKeySpec;
  if (m[2] === undefined) keySpec = { kind: m[1] as 'source-ip' | 'uri' };
  else keySpec = { kind: m[2] as 'header' | 'cookie' | 'query', name: m[2] === 'header' ? m[3]!.toLowerCase() : m[3]! };
  const method = enumOption<HashMethod>('hash', o, 'method', ['maglev', 'ring', 'jump'], 'maglev');
  const boundedLoad = o['boundedLoad'] === undefined ? undefined : numberOption('hash', o, 'boundedLoad', { default: 0, min: 1, max: 100, minExclusive: true });
  if (o['tableSize'] !== undefined && method !== 'maglev') throw new BalancerOptionsError('hash', 'tableSize', 'applies only to method maglev');
  if (o['vnodes'] !== undefined && method !== 'ring') throw new BalancerOptionsError('hash', 'vnodes', 'applies only to method ring');
  const tableSize = numberOption('hash', o, 'tableSize', { default: 65_537, min: 7, max: MAX_MAGLEV_TABLE, integer: true });
  if (!isPrime(tableSize)) throw new BalancerOptionsError('hash', 'tableSize', `must be a prime (got ${tableSize}; 65537, 655373 and 5000011 are)`);
  const vnodes = numberOption('hash', o, 'vnodes', { default: 160, min: 1, max: 10_000, integer: true });
  return { key: key as string, keySpec, method, boundedLoad, tableSize, vnodes };
}

/**
 * The cap of bounded-load hashing for a server of weight `w` out of `totalWeight` when `inFlight`
 * requests are in flight: ceil(c × (inFlight + 1) × w / totalWeight); with equal weights
 * ceil(c × (m + 1) / n) (Mirrokni et al.; HAProxy's hash-balance-factor). A server already at its cap
 * is passed over, so no server goes above it.
 */
export function boundedLoadCap(c: number, inFlight: number, w: number, totalWeight: number): number {
  return Math.ceil((c * (inFlight + 1) * w) / totalWeight);
}

/** Rehashes tried by jump before a scan, when the key's servers are unavailable, avoided or full. */
const JUMP_ATTEMPTS = 32;

/**
 * What the three methods share: the missing-key fallback (smooth weighted round-robin), and the walk
 * in the method's own order with avoid-set and bounded loads. `seen` (stamped with `epoch`) lets the
 * walk count distinct servers without allocating; it stops once every server was considered.
 */
abstract class HashBalancer implements Balancer {
  readonly name = 'hash';
  protected readonly servers: readonly Server[];
  protected readonly n: number;
  private readonly weights: Float64Array;
  private readonly totalWeight: number;
  private readonly counts: ActiveCounts;
  private readonly c: number;
  private readonly rr: SmoothWeightedRoundRobin;
  private readonly seen: Uint32Array;
  private epoch = 0;
  private distinct = 0;
  private fallback = -1;
  private inFlight = 0;
  private avoid: ReadonlySet<ServerId> | undefined = undefined;

  constructor(ws: WeightedServers, deps: BalancerDeps, options: HashOptions) {
    this.servers = ws.servers;
    this.n = ws.servers.length;
    this.weights = ws.weights;
    this.totalWeight = ws.total;
    this.counts = deps.counts;
    this.c = options.boundedLoad ?? 0;
    this.seen = new Uint32Array(this.n);
    let cursor = deps.carry.get('hash:roundrobin') as RoundRobinCursor | undefined;
    if (cursor === undefined) deps.carry.set('hash:roundrobin', (cursor = { cursor: 0 }));
    this.rr = new SmoothWeightedRoundRobin(ws.servers, ws.weights, cursor);
  }

  pick(ctx: PickContext): Server | undefined {
    const key = ctx.hashKey;
    if (key === undefined || key === '') return this.rr.pick(ctx.avoid);
    if (this.n === 0) return undefined;
    const avoid = ctx.avoid;
    if (this.c === 0 && (avoid === undefined || avoid.size === 0)) {
      const i = this.direct(key);
      if (i >= 0) return this.servers[i];
    }
    // the slow path: walk the candidates in hash order
    if (++this.epoch === 0xffffffff) {
      this.seen.fill(0);
      this.epoch = 1;
    }
    this.distinct = 0;
    this.fallback = -1;
    this.avoid = avoid !== undefined && avoid.size > 0 ? avoid : undefined;
    if (this.c > 0) this.inFlight = this.totalInFlight();
    let found = this.walk(key);
    if (found < 0) {
      for (let i = 0; i < this.n && this.distinct < this.n; i++) {
        if (this.consider(i)) {
          found = i;
          break;
        }
      }
    }
    this.avoid = undefined;
    if (found < 0) found = this.fallback; // every server over its cap or avoided: the first not avoided
    return found < 0 ? undefined : this.servers[found];
  }

  /** The key's first candidate, or -1 when it is not available (jump). */
  protected abstract direct(key: string): number;
  /** Walk candidates in hash order, calling consider(); the accepted index, or -1. */
  protected abstract walk(key: string): number;

  /** True when every server has been considered. */
  protected get exhausted(): boolean {
    return this.distinct >= this.n;
  }

  /** Whether server `i` takes the request; the first one not avoided is remembered as last resort. */
  protected consider(i: number): boolean {
    if (this.seen[i] === this.epoch) return false;
    this.seen[i] = this.epoch;
    this.distinct++;
    const s = this.servers[i]!;
    if (this.avoid !== undefined && this.avoid.has(s.id)) return false;
    if (this.fallback < 0) this.fallback = i;
    if (this.c > 0 && this.counts.active(s.id) >= boundedLoadCap(this.c, this.inFlight, this.weights[i]!, this.totalWeight)) return false;
    return true;
  }

  private totalInFlight(): number {
    const counts = this.counts;
    if (counts.total !== undefined) return counts.total();
    let m = 0;
    for (let i = 0; i < this.n; i++) m += counts.active(this.servers[i]!.id);
    return m;
  }
}

/**
 * Maglev. A client address (key source-ip, IPv4) takes the bucket the kernel data plane gives it
 * (`jhash ip saddr mod M seed ...`, src/balancer/jhash.ts), so that a kernel listener and a
 * userspace listener over the same table send a client to the same server; other keys (IPv6
 * addresses, URIs, headers ...) are hashed with MurmurHash3.
 */
class MaglevBalancer extends HashBalancer {
  private readonly table: Int32Array;
  private readonly M: number;
  private readonly bySource: boolean;
  constructor(ws: WeightedServers, deps: BalancerDeps, options: HashOptions) {
    super(ws, deps, options);
    this.M = options.tableSize;
    this.bySource = options.keySpec.kind === 'source-ip';
    this.table = buildMaglevTable(ws.servers.map((s) => s.name), ws.weights, this.M);
  }
  private slot(key: string): number {
    if (this.bySource) {
      const b = kernelSourceBucket(key, this.M);
      if (b >= 0) return b;
    }
    return murmur3(key, SEED_KEY) % this.M;
  }
  protected direct(key: string): number {
    return this.table[this.slot(key)]!;
  }
  protected walk(key: string): number {
    const M = this.M;
    let slot = this.slot(key);
    for (let probe = 0; probe < M && !this.exhausted; probe++) {
      const i = this.table[slot]!;
      if (i >= 0 && this.consider(i)) return i;
      slot = slot + 1 === M ? 0 : slot + 1;
    }
    return -1;
  }
}

class RingBalancer extends HashBalancer {
  private readonly positions: Uint32Array;
  private readonly owners: Uint32Array;
  constructor(ws: WeightedServers, deps: BalancerDeps, options: HashOptions) {
    super(ws, deps, options);
    const ring = buildRing(ws.servers.map((s) => s.name), ws.weights, options.vnodes);
    this.positions = ring.positions;
    this.owners = ring.owners;
  }
  protected direct(key: string): number {
    return this.owners[ringLookup(this.positions, murmur3(key, SEED_KEY))]!;
  }
  protected walk(key: string): number {
    const P = this.positions.length;
    let p = ringLookup(this.positions, murmur3(key, SEED_KEY));
    for (let step = 0; step < P && !this.exhausted; step++) {
      const i = this.owners[p]!;
      if (this.consider(i)) return i;
      p = p + 1 === P ? 0 : p + 1;
    }
    return -1;
  }
}

/**
 * Jump hash numbers its buckets over the pool's configured servers (primaries, or backups while the
 * pool runs on backups), sorted by name, each replicated `weight` times (configured weight, so slow
 * start does not renumber). A server that is unavailable keeps its buckets; its keys are rehashed
 * to the others, so only its keys move. Adding or removing a server from the configuration renumbers
 * the buckets after it (jump hash supports only growth at the end): prefer maglev or ring there.
 */
class JumpBalancer extends HashBalancer {
  private readonly buckets: Uint32Array;
  /** Configured server → index in `servers`, or -1 when it is not available now. */
  private readonly availableIndex: Int32Array;
  /**
   * Slow start, per index in `servers`: effective/configured weight (1 when not ramping), as a
   * threshold over 2^32. A key whose own hash fraction is above it is passed to the next rehash,
   * so a ramping server keeps a growing, stable share of its keys.
   */
  private readonly admit: Float64Array;
  private readonly ramping: boolean;
  constructor(set: ServerSet, ws: WeightedServers, deps: BalancerDeps, options: HashOptions) {
    super(ws, deps, options);
    this.admit = Float64Array.from(ws.servers, (s, i) => {
      const e = ws.weights[i]!;
      return e > 0 && e < s.weight ? (e / s.weight) * 4294967296 : 4294967296;
    });
    this.ramping = this.admit.some((a) => a < 4294967296);
    const stable = set.all.filter((s) => s.backup === set.usingBackups && s.weight > 0).sort(byName);
    const index = new Map<ServerId, number>();
    ws.servers.forEach((s, i) => index.set(s.id, i));
    this.availableIndex = Int32Array.from(stable, (s) => index.get(s.id) ?? -1);
    const replicas = stable.map((s) => Math.max(1, Math.round(s.weight)));
    this.buckets = new Uint32Array(replicas.reduce((a, b) => a + b, 0));
    let b = 0;
    replicas.forEach((r, si) => {
      for (let k = 0; k < r; k++) this.buckets[b++] = si;
    });
  }
  protected direct(key: string): number {
    if (this.buckets.length === 0) return -1;
    const lo = murmur3(key, SEED_KEY);
    const b = jumpHash(murmur3(key, SEED_KEY_HI), lo, this.buckets.length);
    const i = this.availableIndex[this.buckets[b]!]!;
    return i >= 0 && this.ramping && fmix32(lo) >= this.admit[i]! ? -1 : i;
  }
  protected walk(key: string): number {
    const B = this.buckets.length;
    if (B === 0) return -1;
    const hi = murmur3(key, SEED_KEY_HI);
    const lo = murmur3(key, SEED_KEY);
    for (let attempt = 0; attempt < JUMP_ATTEMPTS && !this.exhausted; attempt++) {
      const h1 = attempt === 0 ? hi : fmix32(hi ^ Math.imul(attempt, 0x9e3779b9));
      const h0 = attempt === 0 ? lo : fmix32(lo + Math.imul(attempt, 0x85ebca6b));
      const i = this.availableIndex[this.buckets[jumpHash(h1, h0, B)]!]!;
      if (i >= 0 && this.ramping && fmix32(lo) >= this.admit[i]!) continue; // not yet this key's turn
      if (i >= 0 && this.consider(i)) return i;
    }
    return -1;
  }
}

/**
 * `hash`: consistent hashing of `ctx.hashKey` by Maglev, a ketama-style ring or jump hash, with
 * optional bounded loads. Servers are ordered and hashed by name, so every Portico node with the
 * same server list maps a key to the same server. A missing (or empty) key falls back to smooth
 * weighted round-robin; an avoided or full server passes the request to the next candidate in the
 * method's own order (next table slot, next ring point, next rehash).
 *
 * Maglev and ring use effective weights (`deps.weightOf`, slow start); jump keeps its buckets on
 * configured weights and admits a stable, growing fraction of a ramping server's keys. Nodes whose
 * slow-start ramps are at different points may disagree until the ramps end.
 */
export const hash: BalancerFactory<HashOptions> = {
  name: 'hash',
  parseOptions: parseHashOptions,
  requestKey: (options) => options.key,
  build(set, options, deps) {
    const ws = weightedAvailable(set, deps, byName);
    switch (options.method) {
      case 'maglev':
        return new MaglevBalancer(ws, deps, options);
      case 'ring':
        return new RingBalancer(ws, deps, options);
      case 'jump':
        return new JumpBalancer(set, ws, deps, options);
    }
  },
};
