import { getBalancer } from '../balancer/registry.js';
import type { PathIssue } from './path.js';
import type { Config, PoolConfig } from './types.js';

/**
 * The options of a pool's algorithm: the pool key named after it (`hash:` with `balance: hash`,
 * `lard:` with `balance: lard`, `my-algo:` with `balance: my-algo` for an algorithm registered
 * with registerBalancer), or undefined when the pool has none.
 */
export function balancerOptionsOf(pool: Pick<PoolConfig, 'balance'>): unknown {
  return (pool as unknown as Readonly<Record<string, unknown>>)[pool.balance];
}

/**
 * Each pool's algorithm validates its own options through its factory's parseOptions, once, at
 * config load. An error that carries a `path` (relative to the options object) is placed under
 * that key.
 */
export function checkBalancerOptions(config: Config): PathIssue[] {
  const out: PathIssue[] = [];
  config.pools.forEach((pool, i) => {
    const factory = getBalancer(pool.balance);
    if (factory === undefined) return;
    const raw = balancerOptionsOf(pool);
    try {
      factory.parseOptions(raw);
    } catch (err) {
      const e = err as { path?: unknown; problem?: unknown; message?: unknown };
      const key = raw === undefined ? 'balance' : pool.balance;
      const sub = typeof e.path === 'string' && e.path !== '' && raw !== undefined ? [key, ...e.path.split('.')] : [key];
      const message = typeof e.problem === 'string' ? e.problem : String(e.message ?? err);
      out.push({ path: ['pools', i, ...sub], message: `balance ${pool.balance}: ${message}` });
    }
  });
  return out;
}
