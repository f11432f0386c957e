/**
 * A `redirect` listener from its configuration: an http listener (an https one with `tls`, ALPN
 * http/1.1 only) with one route to the pool whose phase answers with a redirect to the picked
 * server (redirect-phase.ts). It is the http listener's own session, so requests are parsed,
 * normalised, timed out (the listener's deadline sweep), lingered on and counted exactly as on
 * an http listener.
 */
import { CidrSet } from '../../core/cidr.js';
import { Reuse } from '../../core/reuse.js';
import type { RedirectListenerConfig } from '../../config/types.js';
import { AccessList } from '../../net/access.js';
import type { HttpObserver } from '../../observability/records.js';
import { tlsBuildError, tlsTerminationSettings, type ListenerTlsDeps } from '../../tls/listener-tls.js';
import { HOP_BY_HOP } from '../http/headers.js';
import { HttpsListener } from '../http/https-listener.js';
import { clientLimits } from '../http/kind.js';
import { HttpListener, type HttpListenerSettings } from '../http/listener.js';
import type { HttpRoute, PoolHandle } from '../http/listener-runtime.js';
import { compilePhases } from '../http/phases.js';
import { PersistencePhase } from '../http/phases/persistence.js';
import { RedirectPhase, REDIRECT_TARGET_PHASE } from './redirect-phase.js';

const EVERY_REQUEST = (): boolean => true;
const LISTENER_PHASES = [REDIRECT_TARGET_PHASE];
const NO_TRUSTED = new CidrSet([]);

/** The route of a redirect listener: every request, to `pool`, answered by a redirect. */
export function redirectRoute(lc: RedirectListenerConfig, pool: PoolHandle): HttpRoute {
  const per = pool.persistence;
  return {
    name: '',
    match: EVERY_REQUEST,
    pool,
    upstream: { pool: pool.pool, retries: pool.retries },
    // Persistence pins the request (asking a shared store when it must); the redirect answers
    // once the server is picked, with the headers persistence commits for it.
    phases: compilePhases([per === undefined ? undefined : new PersistencePhase(per), new RedirectPhase(lc.status)]),
    priority: 'normal',
    requestDrop: HOP_BY_HOP,
    requestAdd: '',
    responseDrop: HOP_BY_HOP,
    responseAdd: '',
  };
}

/** The http listener settings of a redirect listener (also what a reload gives a running one). */
export function redirectListenerSettings(lc: RedirectListenerConfig, pool: PoolHandle): HttpListenerSettings {
  const l = lc.limits;
  return {
    name: lc.name,
    protocol: 'redirect',
    host: lc.listen.host,
    port: lc.listen.port,
    proto: lc.tls === false ? 'http' : 'https',
    limits: clientLimits(l),
    // Nothing is forwarded: no server response head is ever read.
    upstreamHeadLimits: { maxHeaderBytes: 0, maxHeaders: 0, maxUriBytes: 0 },
    trusted: NO_TRUSTED,
    access: AccessList.of(lc.access),
    exposeServer: false,
    noRouteStatus: 503,
    routes: [redirectRoute(lc, pool)],
    phases: LISTENER_PHASES,
  };
}

/**
 * A redirect listener from its configuration. With `tls`, the certificates are loaded now: one
 * that does not load is a ConfigError naming the file.
 */
export function buildRedirectListener(
  lc: RedirectListenerConfig,
  pool: PoolHandle,
  observer: HttpObserver | undefined,
  deps: ListenerTlsDeps,
): HttpListener {
  const settings = redirectListenerSettings(lc, pool);
  const t = lc.tls;
  if (t === false) {
    const l = new HttpListener(settings, observer);
    builtFrom.set(l, t, true);
    return l;
  }
  try {
    const l = new HttpsListener({ ...settings, tls: tlsTerminationSettings(lc.name, t, deps), h2: false }, observer, deps.log);
    builtFrom.set(l, t, true);
    return l;
  } catch (err) {
    throw tlsBuildError(lc.name, t, err);
  }
}

/** The `tls` section (or `false`) each redirect listener was built from. */
const builtFrom = Reuse.byObject<HttpListener, true>();

/**
 * Reload: a new pool, status, limits and access lists in place when the `tls` section is
 * unchanged (a plain listener stays plain); false otherwise (the listener is then rebuilt on a
 * new socket and the old one drains).
 */
export function updateRedirectListener(l: HttpListener, lc: RedirectListenerConfig, pool: PoolHandle): boolean {
  if (!builtFrom.holds(l, lc.tls)) return false;
  l.update(redirectListenerSettings(lc, pool));
  return true;
}
