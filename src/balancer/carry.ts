import type { ServerId } from '../core/server.js';

/**
 * Per-server state of one pool kept in `deps.carry` under `key`, so that it survives rebuilds.
 * Entries of servers no longer in `keep` (the pool's configured servers) are dropped at each build.
 */
export function carriedState<T>(carry: Map<string, unknown>, key: string, keep: ReadonlyMap<ServerId, unknown>): Map<ServerId, T> {
  let m = carry.get(key) as Map<ServerId, T> | undefined;
  if (!(m instanceof Map)) {
    m = new Map<ServerId, T>();
    carry.set(key, m);
  }
  for (const id of m.keys()) if (!keep.has(id)) m.delete(id);
  return m;
}
