import { buildMaglevTable } from '../balancer/maglev.js';
import { byName } from '../balancer/weights.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import type { Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import type { AlgorithmSpec } from './algorithms.js';
import { simServers } from './simulate.js';
import { maxOverMean } from './stats.js';

/**
 * How hashing algorithms place keys, and how many keys move when the pool changes: the keys are
 * placed one after another through a real Pool, each one acquired and never released, so a key is a
 * long-lived connection and "load" is the number of keys on a server (the balls-into-bins setting
 * of consistent hashing with bounded loads, where the cap is ceil(c·(m+1)/n) for the m keys already
 * placed). A server change is replayed from scratch: a fresh pool of the same servers with one
 * marked down (a failure), or with one more server, places the same keys in the same order.
 */
export interface RemapConfig {
  readonly servers: number;
  readonly keys: number;
  /** Servers taken down one at a time (evenly spaced over the pool); each gives one sample. */
  readonly removals: number;
  readonly seed: number;
}

export interface RemapResult {
  readonly algorithm: string;
  readonly servers: number;
  readonly keys: number;
  /** max / mean and min / mean of keys per server with every server up. */
  readonly keysMaxAvg: number;
  readonly keysMinAvg: number;
  /** Mean share of keys that changed server when one server went down. */
  readonly removeMoved: number;
  /** Mean share of keys that were on the server that went down: the least that must move. */
  readonly removeNecessary: number;
  /** 1 / N. */
  readonly removeIdeal: number;
  /** Share of keys that moved when one server was added, and the ideal 1 / (N + 1). */
  readonly addMoved: number;
  readonly addIdeal: number;
  /** max / mean of keys per server after a server went down (mean over the samples). */
  readonly keysMaxAvgAfterRemoval: number;
}

function keyName(seed: number, i: number): string {
  return `key-${seed}-${i}`;
}

/** Place every key; returns the index (in `servers`) of each key's server. */
export function placeKeys(alg: AlgorithmSpec, servers: readonly Server[], down: ReadonlySet<string>, cfg: RemapConfig): Int32Array {
  const clock = new ManualClock(0);
  const pool = new Pool(
    { name: 'remap', factory: alg.factory, balancerOptions: alg.options, rng: new SeededRng(cfg.seed), clock },
    servers.map((server) => ({ server, op: down.has(server.name) ? ('down' as const) : ('up' as const) })),
  );
  const index = new Map(servers.map((s, i) => [s.id, i]));
  const out = new Int32Array(cfg.keys);
  const ctx = { hashKey: '', path: '' };
  for (let i = 0; i < cfg.keys; i++) {
    const key = keyName(cfg.seed, i);
    ctx.hashKey = key;
    ctx.path = key;
    const s = pool.pick(ctx);
    if (s === undefined) throw new Error(`${alg.label} placed no key`);
    pool.acquire(s);
    out[i] = index.get(s.id)!;
  }
  return out;
}

function loads(placement: Int32Array, servers: number, skip = -1): number[] {
  const c = new Array<number>(servers).fill(0);
  for (let i = 0; i < placement.length; i++) c[placement[i]!]!++;
  return skip >= 0 ? c.filter((_, i) => i !== skip) : c;
}

export function remap(alg: AlgorithmSpec, cfg: RemapConfig): RemapResult {
  const n = cfg.servers;
  if (!(Number.isInteger(n) && n >= 2)) throw new Error('remap needs at least 2 servers');
  const servers = simServers(n);
  const base = placeKeys(alg, servers, new Set(), cfg);
  const baseLoads = loads(base, n);
  const mean = cfg.keys / n;

  const samples = Math.max(1, Math.min(n, cfg.removals));
  let moved = 0;
  let necessary = 0;
  let maxAvgAfter = 0;
  for (let s = 0; s < samples; s++) {
    const victim = Math.floor((s * n) / samples);
    const after = placeKeys(alg, servers, new Set([servers[victim]!.name]), cfg);
    let m = 0;
    let need = 0;
    for (let i = 0; i < cfg.keys; i++) {
      if (base[i] === victim) need++;
      if (after[i] !== base[i]) m++;
    }
    moved += m / cfg.keys;
    necessary += need / cfg.keys;
    maxAvgAfter += maxOverMean(loads(after, n, victim));
  }

  const more = simServers(n + 1);
  const grown = placeKeys(alg, more, new Set(), cfg);
  let addMoved = 0;
  for (let i = 0; i < cfg.keys; i++) if (grown[i] !== base[i]) addMoved++;

  return {
    algorithm: alg.label,
    servers: n,
    keys: cfg.keys,
    keysMaxAvg: Math.max(...baseLoads) / mean,
    keysMinAvg: Math.min(...baseLoads) / mean,
    removeMoved: moved / samples,
    removeNecessary: necessary / samples,
    removeIdeal: 1 / n,
    addMoved: addMoved / cfg.keys,
    addIdeal: 1 / (n + 1),
    keysMaxAvgAfterRemoval: maxAvgAfter / samples,
  };
}

export interface MaglevTableStats {
  readonly servers: number;
  readonly tableSize: number;
  /** Entries per server: fewest, most, and max / mean. */
  readonly minEntries: number;
  readonly maxEntries: number;
  readonly maxAvg: number;
  /** Over every single-server removal: mean and max share of table entries that changed owner. */
  readonly removeChangedMean: number;
  readonly removeChangedMax: number;
  /** Of those, the share that belonged to the removed server (which must change): 1/N on average. */
  readonly removeNecessaryMean: number;
  /** Mean share of entries that changed owner though their server stayed. */
  readonly removeExcessMean: number;
}

/**
 * The Maglev lookup table itself, built by the same function the `hash` balancer uses, with servers
 * in the balancer's order (by name): its balance and the entries that change owner when each server
 * in turn is removed.
 */
export function maglevTableStats(servers: number, tableSize: number): MaglevTableStats {
  const names = simServers(servers).sort(byName).map((s) => s.name);
  const ones = new Float64Array(servers).fill(1);
  const table = buildMaglevTable(names, ones, tableSize);
  const counts = new Array<number>(servers).fill(0);
  for (let j = 0; j < tableSize; j++) counts[table[j]!]!++;
  let changedSum = 0;
  let changedMax = 0;
  let necessarySum = 0;
  for (let v = 0; v < servers; v++) {
    const rest = names.filter((_, i) => i !== v);
    const after = buildMaglevTable(rest, ones.subarray(0, servers - 1), tableSize);
    let changed = 0;
    let necessary = 0;
    for (let j = 0; j < tableSize; j++) {
      const before = table[j]!;
      if (before === v) {
        necessary++;
        changed++;
      } else if (rest[after[j]!] !== names[before]) changed++;
    }
    changedSum += changed / tableSize;
    changedMax = Math.max(changedMax, changed / tableSize);
    necessarySum += necessary / tableSize;
  }
  return {
    servers,
    tableSize,
    minEntries: Math.min(...counts),
    maxEntries: Math.max(...counts),
    maxAvg: Math.max(...counts) / (tableSize / servers),
    removeChangedMean: changedSum / servers,
    removeChangedMax: changedMax,
    removeNecessaryMean: necessarySum / servers,
    removeExcessMean: (changedSum - necessarySum) / servers,
  };
}
