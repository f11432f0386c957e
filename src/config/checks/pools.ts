import { getBalancer } from '../../balancer/registry.js';
import type { PathIssue } from '../path.js';
import { poolKeys } from '../schema/pool.js';
import { didYouMean } from '../values/suggest.js';
import { asList, asMap, asString, maps, type RawMap } from './raw.js';

/**
 * A pool's keys: its own, and the options of its algorithm under the algorithm's name (`hash:`
 * with `balance: hash`; any registered algorithm's the same way), only with that algorithm.
 * Servers only with static discovery.
 */
export function checkPoolOptions(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  for (const [i, p] of maps(root['pools'])) {
    const balance = asString(p['balance']) ?? (p['balance'] === undefined ? 'roundrobin' : undefined);
    for (const key of Object.keys(p)) {
      const algorithm = getBalancer(key) !== undefined;
      if (!algorithm && !poolKeys.includes(key)) {
        out.push({ path: ['pools', i, key], message: `unknown key${didYouMean(key, poolKeys)}`, unknownKey: true });
      } else if (algorithm && balance !== undefined && balance !== key) {
        out.push({ path: ['pools', i, key], message: `${key} options apply only with balance: ${key} (this pool uses ${balance})` });
      }
    }
    const discovery = asString(asMap(p['discovery'])?.['type']);
    if (discovery !== undefined && discovery !== 'static' && asList(p['servers']).length > 0) {
      out.push({ path: ['pools', i, 'servers'], message: `this pool takes its servers from discovery (${discovery}): leave servers empty` });
    }
  }
  return out;
}
