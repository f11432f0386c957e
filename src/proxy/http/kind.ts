/** The `http` and `https` listener kinds: content switching over HTTP/1.1, and the same behind TLS (HTTP/1.1 and h2). */
import type { HttpListenerConfig, HttpsListenerConfig } from '../../config/types.js';
import { httpListenerSchema, httpsListenerSchema } from './schema.js';
import { CidrSet } from '../../core/cidr.js';
import { limitShare } from '../../core/limit-share.js';
import { listenerKind, type BuildContext as AnyBuildContext } from '../../listener/kind.js';
import type { HttpLimits, PoolHandle } from './listener-runtime.js';
import { AccessList } from '../../net/access.js';
import { RateLimiter } from './rate-limit.js';
import { buildHttpsListener, updateHttpsListener } from './https-build.js';
import type { HttpsListener } from './https-listener.js';
import { HttpListener, type HttpListenerSettings } from './listener.js';
import { compileRoutes, hashKeyOf, type RoutePhaseFactory } from './router.js';
import type { InflightRequest } from '../../observability/live-stats.js';

type HttpLike = HttpListenerConfig | HttpsListenerConfig;
/** What an http or https listener builds from: the pools as its routes use them, and the phases routes take from their keys (cache ...). */
export type BuildContext = AnyBuildContext<PoolHandle> & { readonly routePhases?: readonly RoutePhaseFactory[] | undefined };

/** A listener's `limits` section as the session reads it (http, https and redirect listeners). */
export function clientLimits(l: HttpLike['limits']): HttpLimits {
  return {
    headerTimeoutMs: l.headerTimeout,
    keepAliveTimeoutMs: l.keepAliveTimeout,
    bodyTimeoutMs: l.bodyTimeout,
    maxHeaderBytes: l.maxHeaderBytes,
    maxHeaders: l.maxHeaders,
    maxUriBytes: l.maxUriBytes,
    maxBodyBytes: l.maxBodyBytes,
    maxConnections: l.maxConnections,
    maxRequestsPerConnection: l.maxRequestsPerConnection,
  };
}

/** The settings of an http or https listener: routes compiled against the pools of `ctx` (also what a reload gives a running one). */
export function httpListenerSettings(lc: HttpLike, ctx: BuildContext): HttpListenerSettings {
  const l = lc.limits;
  return {
    name: lc.name,
    host: lc.listen.host,
    port: lc.listen.port,
    proto: lc.protocol,
    acceptProxy: lc.acceptProxy,
    sendProxy: lc.sendProxy,
    limits: { ...clientLimits(l), upgrades: new Set(lc.upgrades) },
    upstreamHeadLimits: { maxHeaderBytes: 65536, maxHeaders: 256, maxUriBytes: 65536 },
    trusted: new CidrSet(lc.trustedProxies),
    access: AccessList.of(lc.access),
    rateLimit: rateLimiterOf(lc, ctx),
    exposeServer: lc.exposeServer,
    noRouteStatus: lc.noRouteStatus,
    routes: compileRoutes(lc.name, lc.routes, (name) => ctx.handles.get(name), { exposeServer: lc.exposeServer, routePhases: ctx.routePhases }),
  };
}

/**
 * The listener's rate limiter: the one it had while its `rateLimit` is unchanged (the buckets
 * survive a reload). Counted across nodes through the store when the store is shared.
 */
function rateLimiterOf(lc: HttpLike, ctx: BuildContext): RateLimiter | undefined {
  const rl = lc.rateLimit;
  const key = `http:rate-limit:${lc.name}`;
  if (rl === false) return ctx.kept(key, false, () => undefined);
  return ctx.kept(key, rl, () =>
    new RateLimiter({
      listener: lc.name,
      count: rl.rate.count,
      perMs: rl.rate.perMs,
      burst: rl.burst,
      key: hashKeyOf(rl.key),
      clock: ctx.clock,
      store: ctx.sharedStore ? ctx.store : undefined,
      onStoreError: ctx.storeErrorWarning('rate limits count this node only'),
    }),
  );
}

function shareOf<C extends HttpLike>(lc: C, workers: number): C {
  return { ...lc, limits: { ...lc.limits, maxConnections: limitShare(lc.limits.maxConnections, workers) } };
}

export const httpKind = listenerKind<'http', HttpListener, BuildContext>({
  protocol: 'http',
  schema: httpListenerSchema,
  build: (lc, ctx) => new HttpListener(httpListenerSettings(lc, ctx), ctx.observer),
  update(l, lc, ctx) {
    l.update(httpListenerSettings(lc, ctx));
    return true;
  },
  shareOf,
  inflight: exchangesOf,
});

/** The requests in progress on an http(s) listener: each session's exchange. */
function* exchangesOf(l: HttpListener): Iterable<InflightRequest> {
  for (const s of l.sessions) yield s.ex;
}

export const httpsKind = listenerKind<'https', HttpsListener, BuildContext>({
  protocol: 'https',
  schema: httpsListenerSchema,
  build: (lc, ctx) => buildHttpsListener(lc, httpListenerSettings(lc, ctx), { observer: ctx.observer, clock: ctx.clock, log: ctx.log, store: ctx.store }),
  update: (l, lc, ctx) => updateHttpsListener(l, lc, httpListenerSettings(lc, ctx)),
  shareOf,
  inflight: exchangesOf,
});
