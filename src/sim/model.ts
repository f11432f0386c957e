import type { CachePolicy } from './cache.js';

/**
 * The back-end model of the LARD paper's simulations (Pai et al., ASPLOS 1998, as recalled in
 * docs/algorithms.md): each node has one CPU and one disk, each a FIFO queue, and a main-memory
 * cache of whole files. A request costs, in order:
 *   CPU  connection set-up                                   connectMs
 *   disk on a cache miss: diskFirstMs + diskPer4KMs per 4 KB of the file
 *        + diskPer44KMs for each further 44 KB                (then the file enters the cache)
 *   CPU  transmission, per 512 bytes sent, and teardown      transmitPer512Ms, teardownMs
 * Times in milliseconds; a node's `slow` factor multiplies all of them.
 */
export interface ModelParams {
  readonly connectMs: number;
  readonly teardownMs: number;
  readonly transmitPer512Ms: number;
  readonly diskFirstMs: number;
  readonly diskPer4KMs: number;
  readonly diskPer44KMs: number;
  readonly cacheBytes: number;
  readonly cachePolicy: CachePolicy;
}

export const LARD_PAPER_MODEL: ModelParams = Object.freeze({
  connectMs: 0.145,
  teardownMs: 0.145,
  transmitPer512Ms: 0.04,
  diskFirstMs: 28,
  diskPer4KMs: 0.41,
  diskPer44KMs: 14,
  cacheBytes: 32 * 1024 * 1024,
  cachePolicy: 'gds',
});

/** CPU time of transmitting `bytes` and tearing the connection down. */
export function transmitMs(m: ModelParams, bytes: number): number {
  return Math.ceil(bytes / 512) * m.transmitPer512Ms + m.teardownMs;
}

/** Disk time of reading a whole file of `size` bytes. */
export function diskMs(m: ModelParams, size: number): number {
  const extra = Math.max(0, Math.ceil(size / 45_056) - 1);
  return m.diskFirstMs + Math.ceil(size / 4096) * m.diskPer4KMs + extra * m.diskPer44KMs;
}

/** The names accepted by `--model KEY=VALUE,…` (times in ms). */
export const MODEL_KEYS = ['connectMs', 'teardownMs', 'transmitPer512Ms', 'diskFirstMs', 'diskPer4KMs', 'diskPer44KMs'] as const;

/** Overrides such as `diskFirstMs=10,transmitPer512Ms=0.02` on top of `base`. */
export function parseModelOverrides(text: string, base: ModelParams): ModelParams {
  const out: Record<string, unknown> = { ...base };
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = Number(eq < 0 ? '' : item.slice(eq + 1));
    if (!(MODEL_KEYS as readonly string[]).includes(key)) throw new Error(`--model: unknown key ${JSON.stringify(key)} (known: ${MODEL_KEYS.join(', ')})`);
    if (eq < 0 || !(value >= 0) || !Number.isFinite(value)) throw new Error(`--model: ${key} needs a number of ms ≥ 0 (got ${JSON.stringify(item)})`);
    out[key] = value;
  }
  return Object.freeze(out as unknown as ModelParams);
}

/** `32m`, `512k`, `1g`, `1048576`: bytes. */
export function parseByteSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(text.trim());
  if (m === null) throw new Error(`not a size: ${JSON.stringify(text)} (examples: 32m, 512k, 1g, 1048576)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}
