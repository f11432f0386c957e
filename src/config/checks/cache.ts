import type { PathIssue } from '../path.js';
import { didYouMean } from '../values/suggest.js';
import { asString, maps, type RawMap } from './raw.js';

/**
 * A `shared: true` cache needs a Redis `cluster.store`. Every route's `cache:` names a cache under `caches:`; `cache` and `compress` are for routes of
 * http and https listeners that forward to a pool (a redirect or respond route has no server answer).
 */
export function checkCacheReferences(root: RawMap): PathIssue[] {
  const caches = maps(root['caches'])
    .map(([, c]) => asString(c['name']))
    .filter((n): n is string => n !== undefined);
  const known = new Set(caches);
  const out: PathIssue[] = [];
  // The shared tier lives in Redis: cluster.store must name one.
  const cluster = root['cluster'];
  const store = cluster !== null && typeof cluster === 'object' && !Array.isArray(cluster) ? asString((cluster as RawMap)['store']) : undefined;
  const redis = store !== undefined && /^rediss?:\/\//.test(store);
  for (const [i, c] of maps(root['caches'])) {
    if ((c['shared'] === true || c['shared'] === 'true') && !redis) {
      out.push({ path: ['caches', i, 'shared'], message: 'the shared tier is kept in cluster.store, which must then be a redis:// or rediss:// URL (it is ' + (store ?? 'memory') + ')' });
    }
  }
  for (const [i, l] of maps(root['listeners'])) {
    const protocol = asString(l['protocol']);
    for (const [j, r] of maps(l['routes'])) {
      for (const key of ['cache', 'compress'] as const) {
        if (r[key] === undefined || r[key] === false) continue;
        const path = ['listeners', i, 'routes', j, key];
        if (protocol !== 'http' && protocol !== 'https') out.push({ path, message: `${key} needs an http or https listener` });
        else if (r['pool'] === undefined) out.push({ path, message: `${key} needs a route that forwards to a pool (not redirect or respond)` });
      }
      const name = asString(r['cache']);
      if (name !== undefined && !known.has(name)) {
        const list = caches.length === 0 ? 'no cache is defined under caches:' : `caches: ${caches.join(', ')}`;
        out.push({ path: ['listeners', i, 'routes', j, 'cache'], message: `cache "${name}" does not exist${didYouMean(name, caches)} (${list})` });
      }
    }
  }
  return out;
}
