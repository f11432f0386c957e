/**
 * The cache endpoints of the admin API (SPEC §5): `GET /api/v1/caches` lists every configured
 * cache with its figures; `DELETE /api/v1/caches/{cache}?url=|prefix=|tag=` purges. Mutations
 * need the token like every other (the router checks it).
 */
import type { Cache } from '../cache/cache.js';
import { badRequest, notFound } from './admin-error.js';
import type { AdminContext, AdminHandler, AdminMethod } from './router.js';

/** The caches the API reads and purges (PorticoApp.caches, a CacheSet, fits). */
export interface CacheSource {
  get(name: string): Cache | undefined;
  all(): Cache[];
}

interface RouteTable {
  route(method: AdminMethod, pattern: string, handler: AdminHandler): void;
}

export const CACHE_ENDPOINTS = ['GET /api/v1/caches', 'DELETE /api/v1/caches/{cache}?url=PATH|prefix=PATH|tag=TAG'] as const;

const PURGE_BY = ['url', 'prefix', 'tag'] as const;
type PurgeBy = (typeof PURGE_BY)[number];

export function mountCacheApi(table: RouteTable, caches: CacheSource): void {
  table.route('GET', '/api/v1/caches', () => ({ caches: caches.all().map((c) => c.view()) }));
  table.route('DELETE', '/api/v1/caches/{cache}', (_q, _s, ctx) => purge(caches, ctx));
}

/**
 * Purge one cache by exactly one of `url`, `prefix` or `tag`; answers how many objects went from
 * this process's memory (`purged`) and, for a shared cache, from the shared tier (`shared`, or
 * `sharedError` when cluster.store failed: its objects may still be there; purge again).
 */
export async function purge(caches: CacheSource, ctx: AdminContext): Promise<{ purged: number; shared?: number; sharedError?: string }> {
  const name = ctx.params['cache'] ?? '';
  const cache = caches.get(name);
  if (cache === undefined) throw notFound(`no cache named ${JSON.stringify(name)}`);
  const { by, value } = purgeQuery(ctx.url.searchParams);
  const r = await cache.purge(by, value);
  if (r.sharedFailed === true) return { purged: r.purged, sharedError: 'cluster.store did not answer; the shared tier may still hold the objects' };
  return r.shared === undefined ? { purged: r.purged } : { purged: r.purged, shared: r.shared };
}

/** The one purge parameter of a query; a 400 when there is none, more than one, or an empty one. */
export function purgeQuery(q: URLSearchParams): { by: PurgeBy; value: string } {
  const given = PURGE_BY.filter((k) => q.has(k));
  if (given.length !== 1) throw badRequest(`give exactly one of url, prefix or tag (got ${given.length === 0 ? 'none' : given.join(', ')})`);
  const by = given[0]!;
  const values = q.getAll(by);
  if (values.length !== 1) throw badRequest(`${by} given ${values.length} times`);
  const value = values[0]!;
  if (value === '') throw badRequest(`${by} is empty`);
  if (by === 'prefix' && !value.startsWith('/')) throw badRequest(`prefix must be a path starting with / (got ${JSON.stringify(value)})`);
  return { by, value };
}
