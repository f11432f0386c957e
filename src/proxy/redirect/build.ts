/** A `redirect` listener from its configuration. */
import { AccessList } from '../../net/access.js';
import type { RedirectListenerConfig } from '../../config/types.js';
import { tlsBuildError, tlsTerminationSettings, type ListenerTlsDeps } from '../../tls/listener-tls.js';
import type { Persistence } from '../../persistence/index.js';
import type { Pool } from '../../pool/pool.js';
import type { RequestView } from '../http/router.js';
import { RedirectListener, type RedirectListenerSettings, type RedirectObserver } from './listener.js';

/** The settings of a redirect listener (also what a reload gives a running one). */
export function redirectListenerSettings(
  lc: RedirectListenerConfig,
  pool: Pool,
  hashKey: ((req: RequestView) => string | undefined) | undefined,
  persistence?: Persistence,
): RedirectListenerSettings {
  const l = lc.limits;
  return {
    name: lc.name,
    host: lc.listen.host,
    port: lc.listen.port,
    pool,
    status: lc.status,
    limits: {
      headerTimeoutMs: l.headerTimeout,
      keepAliveTimeoutMs: l.keepAliveTimeout,
      maxHeaderBytes: l.maxHeaderBytes,
      maxHeaders: l.maxHeaders,
      maxUriBytes: l.maxUriBytes,
      maxConnections: l.maxConnections,
      maxRequestsPerConnection: l.maxRequestsPerConnection,
    },
    access: AccessList.of(lc.access),
    hashKey,
    retryAfterSec: 1,
    persistence,
  };
}

/**
 * A redirect listener from its configuration. With `tls`, the certificates are loaded now: one
 * that does not load is a ConfigError naming the file.
 */
export function buildRedirectListener(
  lc: RedirectListenerConfig,
  pool: Pool,
  hashKey: ((req: RequestView) => string | undefined) | undefined,
  observer: RedirectObserver | undefined,
  persistence: Persistence | undefined,
  deps: ListenerTlsDeps,
): RedirectListener {
  const settings = redirectListenerSettings(lc, pool, hashKey, persistence);
  const t = lc.tls;
  if (t === false) return new RedirectListener(settings, observer);
  try {
    const l = new RedirectListener(settings, observer, tlsTerminationSettings(lc.name, t, deps), deps.log);
    tlsSpecs.set(l, JSON.stringify(t));
    return l;
  } catch (err) {
    throw tlsBuildError(lc.name, t, err);
  }
}

const tlsSpecs = new WeakMap<RedirectListener, string>();

/**
 * Reload: a new pool, status, limits and access lists in place when the `tls` section is
 * unchanged (a plain listener stays plain); false otherwise (the listener is then rebuilt on a
 * new socket and the old one drains).
 */
export function updateRedirectListener(
  l: unknown,
  lc: RedirectListenerConfig,
  pool: Pool,
  hashKey: ((req: RequestView) => string | undefined) | undefined,
  persistence: Persistence | undefined,
): boolean {
  if (!(l instanceof RedirectListener)) return false;
  const was = tlsSpecs.get(l);
  if ((lc.tls === false ? undefined : JSON.stringify(lc.tls)) !== was) return false;
  l.update(redirectListenerSettings(lc, pool, hashKey, persistence));
  return true;
}
