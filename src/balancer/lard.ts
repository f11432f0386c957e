import type { Server, ServerId } from '../core/server.js';
import type { BalancerFactory } from './balancer.js';
import { BalancerOptionsError, booleanOption, durationOption, numberOption, optionsObject } from './options.js';
import { weightedAvailable } from './weights.js';

export interface LardOptions {
  /** T_low: a server below this many active connections counts as under-loaded (default 25). */
  readonly low: number;
  /** T_high: above this a server counts as overloaded (default 65); at 2 × high it takes no more of a target. */
  readonly high: number;
  /** LARD/R: a target may be served by a set of servers that grows under load and shrinks after `shrinkAfterMs`. */
  readonly replicate: boolean;
  /** K of LARD/R: a target's set unchanged for this long loses its most loaded server (default 20 s). */
  readonly shrinkAfterMs: number;
  /** Cap on the number of targets remembered; the least recently used is forgotten first (default 65536). */
  readonly maxTargets: number;
}

export const DEFAULT_LARD_MAX_TARGETS = 65_536;

/**
 * LARD's front-end admission limit S = (n − 1) × T_high + T_low − 1: the pool's queue admits a
 * request only while fewer than S are in flight over the pool's n servers; the rest wait at the
 * front end. Under that limit no server ever holds more than 2 × T_high active connections.
 * (The formula is as recalled from Pai et al., ASPLOS 1998; the 2 × T_high bound holds for any
 * S < 2 × T_high × n.)
 */
export function lardAdmissionLimit(n: number, low: number, high: number): number {
  if (!(n > 0)) return 0;
  return Math.max(1, (n - 1) * high + low - 1);
}

export function parseLardOptions(raw: unknown): LardOptions {
  const o = optionsObject('lard', raw, ['low', 'high', 'replicate', 'shrinkAfter', 'maxTargets']);
  const low = numberOption('lard', o, 'low', { default: 25, min: 1, max: 1_000_000, integer: true });
  const high = numberOption('lard', o, 'high', { default: 65, min: 1, max: 1_000_000, integer: true });
  if (low >= high) throw new BalancerOptionsError('lard', 'low', `must be below high (got low ${low}, high ${high})`);
  return {
    low,
    high,
    replicate: booleanOption('lard', o, 'replicate', false),
    shrinkAfterMs: durationOption('lard', o, 'shrinkAfter', { default: 20_000, min: 0, max: 86_400_000 }),
    maxTargets: numberOption('lard', o, 'maxTargets', { default: DEFAULT_LARD_MAX_TARGETS, min: 1, max: 10_000_000, integer: true }),
  };
}

/** One target (path): its server (LARD) or server set (LARD/R), on an intrusive LRU list. */
class LardEntry {
  server: ServerId | undefined = undefined;
  readonly set: ServerId[] = [];
  lastMod = 0;
  prev: LardEntry | undefined = undefined;
  next: LardEntry | undefined = undefined;
  constructor(public key: string) {}
}

/**
 * The target table, kept in `deps.carry` so it survives rebuilds: a Map for lookup and a doubly
 * linked list for recency; at `cap` entries the least recently used entry is evicted and reused.
 */
export class LardTable {
  private readonly map = new Map<string, LardEntry>();
  private head: LardEntry | undefined = undefined; // most recently used
  private tail: LardEntry | undefined = undefined; // least recently used
  constructor(
    readonly replicate: boolean,
    public cap: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** The entry of `key`, made most recently used. */
  get(key: string): LardEntry | undefined {
    const e = this.map.get(key);
    if (e !== undefined && e !== this.head) {
      this.unlink(e);
      this.pushFront(e);
    }
    return e;
  }

  /** A new entry for `key` (not present), evicting the least recently used at the cap. */
  add(key: string): LardEntry {
    let e: LardEntry;
    if (this.map.size >= this.cap && this.tail !== undefined) {
      e = this.tail;
      this.unlink(e);
      this.map.delete(e.key);
      e.key = key;
      e.server = undefined;
      e.set.length = 0;
      e.lastMod = 0;
    } else {
      e = new LardEntry(key);
    }
    this.map.set(key, e);
    this.pushFront(e);
    return e;
  }

  /** Evict down to the cap (after the cap was lowered). */
  trim(): void {
    while (this.map.size > this.cap && this.tail !== undefined) {
      const e = this.tail;
      this.unlink(e);
      this.map.delete(e.key);
    }
  }

  private unlink(e: LardEntry): void {
    if (e.prev !== undefined) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== undefined) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = undefined;
  }

  private pushFront(e: LardEntry): void {
    e.next = this.head;
    e.prev = undefined;
    if (this.head !== undefined) this.head.prev = e;
    this.head = e;
    if (this.tail === undefined) this.tail = e;
  }
}

/**
 * `lard`: locality-aware request distribution (Pai et al., 1998), keyed by `ctx.path`, with
 * load = the pool's active count per server, exactly as ALGORITHMS.md §1.2: basic LARD, or LARD/R
 * with `replicate: true`. Weights only decide which servers take part, except during slow start,
 * when a ramping server's load counts scaled by configured/effective weight. A request without a path
 * goes to the least loaded server; a target whose server is avoided goes to the least loaded
 * server not avoided, without changing the table.
 */
export const lard: BalancerFactory<LardOptions> = {
  name: 'lard',
  parseOptions: parseLardOptions,
  build(set, options, deps) {
    const { servers, weights } = weightedAvailable(set, deps);
    const { counts, clock } = deps;
    const n = servers.length;
    // Slow start: a server whose effective weight is below its configured weight counts its
    // load scaled up by configured/effective, so it takes new targets gradually as it ramps.
    const scale = Float64Array.from(servers, (s, i) => (weights[i]! > 0 && weights[i]! < s.weight ? s.weight / weights[i]! : 1));
    const loadOf = (i: number): number => counts.active(servers[i]!.id) * scale[i]!;
    const { low, high, replicate, shrinkAfterMs } = options;
    const twiceHigh = 2 * high;
    let table = deps.carry.get('lard') as LardTable | undefined;
    if (!(table instanceof LardTable) || table.replicate !== replicate) {
      table = new LardTable(replicate, options.maxTargets);
      deps.carry.set('lard', table);
    }
    table.cap = options.maxTargets;
    table.trim();
    const index = new Map<ServerId, number>();
    servers.forEach((s, i) => index.set(s.id, i));

    let cursor = 0;
    let minLoad = 0;
    /** Least loaded server not avoided (ties take turns); sets minLoad. -1 when none. */
    const leastLoaded = (avoid: ReadonlySet<ServerId> | undefined): number => {
      let best = -1;
      let i = cursor;
      for (let k = 0; k < n; k++) {
        const s = servers[i]!;
        if (avoid === undefined || !avoid.has(s.id)) {
          const a = loadOf(i);
          if (best < 0 || a < minLoad) {
            best = i;
            minLoad = a;
          }
        }
        i = i + 1 === n ? 0 : i + 1;
      }
      if (best >= 0) cursor = best + 1 === n ? 0 : best + 1;
      return best;
    };

    const pickBasic = (path: string, avoid: ReadonlySet<ServerId> | undefined): Server | undefined => {
      let e = table.get(path);
      let si = -1;
      if (e !== undefined && e.server !== undefined) si = index.get(e.server) ?? -1;
      if (si >= 0 && avoid !== undefined && avoid.has(servers[si]!.id)) {
        const other = leastLoaded(avoid);
        return other < 0 ? undefined : servers[other];
      }
      if (si >= 0) {
        const load = loadOf(si);
        if (load <= high) return servers[si];
        if (load < twiceHigh) {
          const m = leastLoaded(avoid);
          if (!(m >= 0 && minLoad < low)) return servers[si];
          e!.server = servers[m]!.id;
          return servers[m];
        }
      }
      const m = leastLoaded(avoid);
      if (m < 0) return undefined;
      if (e === undefined) e = table.add(path);
      e.server = servers[m]!.id;
      return servers[m];
    };

    const pickReplicated = (path: string, avoid: ReadonlySet<ServerId> | undefined): Server | undefined => {
      const now = clock.now();
      let e = table.get(path);
      if (e === undefined) e = table.add(path);
      const members = e.set;
      // the least loaded member; members no longer available are dropped in place
      let best = -1;
      let bestLoad = 0;
      let kept = 0;
      for (let r = 0; r < members.length; r++) {
        const id = members[r]!;
        const si = index.get(id);
        if (si === undefined) continue;
        members[kept++] = id;
        if (avoid !== undefined && avoid.has(id)) continue;
        const a = loadOf(si);
        if (best < 0 || a < bestLoad) {
          best = si;
          bestLoad = a;
        }
      }
      members.length = kept;
      if (kept === 0) {
        const m = leastLoaded(avoid);
        if (m < 0) return undefined;
        members.push(servers[m]!.id);
        e.lastMod = now;
        return servers[m];
      }
      if (best < 0) {
        const other = leastLoaded(avoid); // every member avoided: elsewhere, table unchanged
        return other < 0 ? undefined : servers[other];
      }
      let chosen = best;
      let changed = false;
      if (bestLoad > high) {
        const m = leastLoaded(avoid);
        if (m >= 0 && (bestLoad >= twiceHigh || minLoad < low)) {
          const id = servers[m]!.id;
          if (!members.includes(id)) {
            members.push(id);
            changed = true;
          }
          chosen = m;
        }
      }
      if (members.length > 1 && now - e.lastMod > shrinkAfterMs) {
        // remove the most loaded member (not the one this request goes to)
        const chosenId = servers[chosen]!.id;
        let worst = -1;
        let worstLoad = -1;
        for (let r = 0; r < members.length; r++) {
          const id = members[r]!;
          if (id === chosenId) continue;
          const wi = index.get(id);
          const a = wi === undefined ? counts.active(id) : loadOf(wi);
          if (a > worstLoad) {
            worst = r;
            worstLoad = a;
          }
        }
        if (worst >= 0) {
          members[worst] = members[members.length - 1]!;
          members.length--;
          changed = true;
        }
      }
      if (changed) e.lastMod = now;
      return servers[chosen];
    };

    return {
      name: 'lard',
      pick(ctx) {
        if (n === 0) return undefined;
        const avoid = ctx.avoid !== undefined && ctx.avoid.size > 0 ? ctx.avoid : undefined;
        const path = ctx.path;
        if (path === undefined) {
          const m = leastLoaded(avoid);
          return m < 0 ? undefined : servers[m];
        }
        return replicate ? pickReplicated(path, avoid) : pickBasic(path, avoid);
      },
    };
  },
};
