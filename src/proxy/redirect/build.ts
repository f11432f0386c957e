/** A `redirect` listener from its configuration. */
import { AccessList } from '../access.js';
import type { RedirectListenerConfig } from '../../config/types.js';
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

export function buildRedirectListener(
  lc: RedirectListenerConfig,
  pool: Pool,
  hashKey: ((req: RequestView) => string | undefined) | undefined,
  observer?: RedirectObserver,
  persistence?: Persistence,
): RedirectListener {
  return new RedirectListener(redirectListenerSettings(lc, pool, hashKey, persistence), observer);
}
