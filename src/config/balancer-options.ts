import { getBalancer } from '../balancer/registry.js';
import type { PathIssue } from './path.js';
import type { Config } from './types.js';

/**
 * Each pool's algorithm validates its own options (`hash`, `lard`) through its factory's
 * parseOptions, once, at config load. An error that carries a `path` (relative to the options
 * object) is placed under that key.
 */
export function checkBalancerOptions(config: Config): PathIssue[] {
  const out: PathIssue[] = [];
  config.pools.forEach((pool, i) => {
    const factory = getBalancer(pool.balance);
    if (factory === undefined) return;
    const key = pool.balance === 'hash' ? 'hash' : pool.balance === 'lard' ? 'lard' : undefined;
    try {
      factory.parseOptions(key === undefined ? undefined : pool[key]);
    } catch (err) {
      const e = err as { path?: unknown; problem?: unknown; message?: unknown };
      const sub = typeof e.path === 'string' && e.path !== '' && key !== undefined ? [key, ...e.path.split('.')] : [key ?? 'balance'];
      const message = typeof e.problem === 'string' ? e.problem : String(e.message ?? err);
      out.push({ path: ['pools', i, ...sub], message: `balance ${pool.balance}: ${message}` });
    }
  });
  return out;
}
