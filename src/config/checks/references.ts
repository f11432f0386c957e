import type { ConfigPath, PathIssue } from '../path.js';
import { didYouMean } from '../values/suggest.js';
import { asString, maps, type RawMap } from './raw.js';

/** Every `pool:` (routes, tcp and redirect listeners, DNS records) names a pool that exists. */
export function checkPoolReferences(root: RawMap): PathIssue[] {
  const pools = maps(root['pools'])
    .map(([, p]) => asString(p['name']))
    .filter((n): n is string => n !== undefined);
  const known = new Set(pools);
  const out: PathIssue[] = [];
  const check = (value: unknown, path: ConfigPath): void => {
    const name = asString(value);
    if (name === undefined || known.has(name)) return;
    const list = pools.length === 0 ? 'no pool is defined' : `pools: ${pools.join(', ')}`;
    out.push({ path, message: `pool "${name}" does not exist${didYouMean(name, pools)} (${list})` });
  };
  for (const [i, l] of maps(root['listeners'])) {
    check(l['pool'], ['listeners', i, 'pool']);
    for (const [j, r] of maps(l['routes'])) check(r['pool'], ['listeners', i, 'routes', j, 'pool']);
    for (const [z, zone] of maps(l['zones'])) {
      for (const [k, rec] of maps(zone['records'])) check(rec['pool'], ['listeners', i, 'zones', z, 'records', k, 'pool']);
    }
  }
  return out;
}
