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

/** Purge one cache by exactly one of `url`, `prefix` or `tag`; answers how many objects went. */
export function purge(caches: CacheSource, ctx: AdminContext): { purged: number } {
  const name = ctx.params['cache'] ?? '';
  const cache = caches.get(name);
  if (cache === undefined) throw notFound(`no cache named ${JSON.stringify(name)}`);
  const { by, value } = purgeQuery(ctx.url.searchParams);
  return { purged: purgeBy(cache, by, value) };
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

export function purgeBy(cache: Cache, by: PurgeBy, value: string): number {
  if (by === 'url') return cache.store.purgeUrl(value);
  if (by === 'prefix') return cache.store.purgePrefix(value);
  return cache.store.purgeTag(value);
}
