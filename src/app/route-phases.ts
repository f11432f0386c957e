/**
 * The phases a route takes from its own keys, beyond the built-in ones (src/proxy/http/router.ts):
 * one line each. A factory looks at the route's spec and gives its phase, or undefined.
 */
import type { CacheSet } from '../cache/cache.js';
import { CachePhase } from '../proxy/http/phases/cache.js';
import { CompressPhase, compressOptions, type CompressCounters } from '../proxy/http/phases/compress.js';
import type { RoutePhaseFactory } from '../proxy/http/router.js';

export function routePhaseFactories(caches: CacheSet, compressed: CompressCounters): readonly RoutePhaseFactory[] {
  return [
    (r) => (r.cache === undefined ? undefined : new CachePhase(caches, r.cache)),
    // After the cache: the cache keeps the server's identity body (and the compressed variants hits made); misses are compressed on delivery.
    (r) => {
      const o = compressOptions(r.compress);
      return o === undefined ? undefined : new CompressPhase(o, compressed);
    },
  ];
}
