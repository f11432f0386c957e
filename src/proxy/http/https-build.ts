import type { Clock } from '../../core/clock.js';
import { ConfigError, OBJECT_FILE } from '../../config/errors.js';
import type { HttpsListenerConfig } from '../../config/types.js';
import type { Logger } from '../../observability/logger.js';
import type { StateStore } from '../../store/state-store.js';
import { CertificateError } from '../../tls/cert-store.js';
import { SessionResumption } from '../../tls/session-resumption.js';
import { HttpsListener } from './https-listener.js';
import type { HttpListenerSettings, HttpObserver } from './listener.js';

export interface HttpsBuildDeps {
  readonly observer?: HttpObserver | undefined;
  readonly clock: Clock;
  readonly log?: Logger | undefined;
  /** The cluster's StateStore, for `sessionCache: shared`. */
  readonly store: StateStore;
}

/** Sessions kept in this process for resumption by id (each a few hundred bytes). */
const SESSION_CACHE_SIZE = 20_000;

/**
 * An https listener from its configuration and the HTTP settings its routes compile to. The
 * certificates are loaded now: one that does not load is a ConfigError naming the file.
 */
export function buildHttpsListener(lc: HttpsListenerConfig, http: HttpListenerSettings, deps: HttpsBuildDeps): HttpsListener {
  const t = lc.tls;
  const resumption = new SessionResumption({
    listener: lc.name,
    sessionTimeoutMs: t.sessionTimeout,
    cacheSize: SESSION_CACHE_SIZE,
    rotationMs: t.ticketKeyRotation,
    clock: deps.clock,
    store: t.sessionCache === 'shared' ? deps.store : undefined,
    onError: (what, err) => deps.log?.warn(`listener ${lc.name}: TLS ${what} store failed; sessions resume on this node only`, { error: err instanceof Error ? err.message : String(err) }),
  });
  try {
    const l = new HttpsListener(
      {
        ...http,
        proto: 'https',
        tls: {
          certificates: t.certificates,
          minVersion: t.minVersion,
          ciphers: t.ciphers,
          http2: t.http2,
          sessionTimeoutMs: t.sessionTimeout,
          reloadCheckMs: t.reloadCheck,
          resumption,
          clientAuth: t.clientAuth === false ? undefined : t.clientAuth,
        },
      },
      deps.observer,
      deps.log,
    );
    tlsSpecs.set(l, JSON.stringify(t));
    return l;
  } catch (err) {
    if (err instanceof CertificateError) {
      const ca = lc.tls.clientAuth;
      const key = ca !== false && err.file === ca.ca ? 'clientAuth.ca' : ca !== false && err.file === ca.crl ? 'clientAuth.crl' : 'certificates';
      throw new ConfigError([{ file: OBJECT_FILE, line: 0, col: 0, path: `listeners.${lc.name}.tls.${key}`, message: err.message }]);
    }
    throw err;
  }
}

const tlsSpecs = new WeakMap<HttpsListener, string>();

/**
 * Reload: new routes and HTTP settings in place when the `tls` section is unchanged; false
 * otherwise (the listener is then rebuilt on a new socket and the old one drains).
 */
export function updateHttpsListener(l: unknown, lc: HttpsListenerConfig, http: HttpListenerSettings): boolean {
  if (!(l instanceof HttpsListener) || tlsSpecs.get(l) !== JSON.stringify(lc.tls)) return false;
  l.update({ ...http, proto: 'https' });
  return true;
}
