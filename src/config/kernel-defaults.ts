/**
 * Defaults that depend on the kernel data plane (SPEC §10), applied once to a parsed configuration
 * before it is frozen.
 *
 * A pool with `balance: hash` (Maglev) that a kernel listener uses takes `hash.tableSize:
 * KERNEL_HASH_TABLE` when it sets none: the kernel's bucket map is written whole in one nft
 * transaction (65537 buckets take about a second there, 4093 a few milliseconds), and a userspace
 * listener over the same pool must use the same table to send a client where the kernel does.
 */
import type { Config } from './types.js';

/** Buckets of the Maglev table of a pool a kernel listener uses, when `hash.tableSize` is not set (a prime). */
export const KERNEL_HASH_TABLE = 4093;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function applyKernelDefaults(config: Config): void {
  const kernelPools = new Set<string>();
  for (const l of config.listeners) if ('dataPlane' in l && l.dataPlane === 'kernel') kernelPools.add(l.pool);
  for (const p of config.pools) {
    if (!kernelPools.has(p.name) || p.balance !== 'hash') continue;
    const h = p.hash as Mutable<typeof p.hash>;
    if (h.method === 'maglev' && h.tableSize === undefined) h.tableSize = KERNEL_HASH_TABLE;
  }
}
