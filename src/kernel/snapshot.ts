/** A pool's state as the kernel data plane renders it (src/kernel/render.ts). */
import type { KernelListenerConfig, PoolConfig } from '../config/types.js';
import { KERNEL_HASH_TABLE } from '../config/kernel-defaults.js';
import { isIPv4 } from '../config/values/host.js';
import type { Pool } from '../pool/pool.js';
import type { KernelBalance, KernelListenerSpec, KernelSnapshot, KernelServer } from './render.js';

/** Slots of the balancing map: weights are shares of 1000 (0.1 % steps). */
export const SLOTS = 1000;
/**
 * Buckets of the kernel's Maglev table when the pool does not set `hash.tableSize` (a prime); the
 * configuration gives such a pool this size (src/config/kernel-defaults.ts), so userspace uses it too.
 */
export const DEFAULT_BUCKETS = KERNEL_HASH_TABLE;
/** The largest Maglev table the kernel map takes (elements are written in one transaction). */
export const MAX_BUCKETS = 65537;

/** The kernel's algorithm for a pool's `balance` (the config check refuses the others). */
export function kernelBalance(balance: string): KernelBalance | undefined {
  if (balance === 'roundrobin' || balance === 'random' || balance === 'hash') return balance;
  return undefined;
}

/** The spec of a kernel listener from its configuration and its pool's. */
export function specOf(lc: KernelListenerConfig, pc: PoolConfig | undefined): KernelListenerSpec {
  const balance = kernelBalance(pc?.balance ?? 'roundrobin') ?? 'roundrobin';
  const table = pc?.hash.tableSize;
  const persistence = lc.kernel.persistence;
  const poolSticky = pc !== undefined && pc.persistence !== false && pc.persistence.type === 'source-ip';
  const persistenceMs = persistence !== false ? persistence.timeout : poolSticky ? (pc.persistence as { ttl?: number }).ttl ?? 300_000 : 0;
  return {
    listener: lc.name,
    protocol: lc.protocol,
    vip: lc.listen.host,
    port: lc.listen.port,
    forwarding: lc.forwarding,
    balance,
    slots: SLOTS,
    buckets: table !== undefined && table <= MAX_BUCKETS ? table : DEFAULT_BUCKETS,
    snat: lc.kernel.snat,
    persistenceMs,
  };
}

/**
 * The pool now: every server with an IPv4 address (the kernel map holds IPv4 only; others are
 * reported by `skipped`), and those taking new flows with their effective weights (slow start):
 * the pool's `available` set, so backups and panic mode act as they do in userspace.
 */
export function snapshotOf(pool: Pool): KernelSnapshot & { skipped: string[] } {
  const set = pool.current.set;
  const servers: KernelServer[] = [];
  const index = new Map<string, number>();
  const skipped: string[] = [];
  for (const s of set.all) {
    if (!isIPv4(s.host)) {
      skipped.push(s.name);
      continue;
    }
    index.set(s.id, servers.length);
    servers.push({ name: s.name, address: s.host, port: s.port });
  }
  const active: { index: number; weight: number }[] = [];
  for (const s of set.available) {
    const i = index.get(s.id);
    if (i === undefined) continue;
    const w = pool.runtime(s.id)?.weight ?? s.weight;
    if (Number.isFinite(w) && w > 0) active.push({ index: i, weight: w });
  }
  return { servers, active, skipped };
}
