import type { HttpsListenerConfig } from '../../config/types.js';
import { tlsBuildError, tlsTerminationSettings, type ListenerTlsDeps } from '../../tls/listener-tls.js';
import { Reuse } from '../../core/reuse.js';
import { HttpsListener, type H2Limits } from './https-listener.js';
import type { HttpListenerSettings } from './listener.js';
import type { HttpObserver } from '../../observability/records.js';

export interface HttpsBuildDeps extends ListenerTlsDeps {
  readonly observer?: HttpObserver | undefined;
}

/**
 * An https listener from its configuration and the HTTP settings its routes compile to. The
 * certificates are loaded now: one that does not load is a ConfigError naming the file.
 */
export function buildHttpsListener(lc: HttpsListenerConfig, http: HttpListenerSettings, deps: HttpsBuildDeps): HttpsListener {
  const t = lc.tls;
  try {
    const l = new HttpsListener({ ...http, proto: 'https', tls: tlsTerminationSettings(lc.name, t, deps), h2: t.http2 && h2Limits(lc) }, deps.observer, deps.log);
    builtFrom.set(l, builtSpec(lc), true);
    return l;
  } catch (err) {
    throw tlsBuildError(lc.name, t, err);
  }
}

/** The h2 limits of the listener's h2 server. */
function h2Limits(lc: HttpsListenerConfig): H2Limits {
  return { maxConcurrentStreams: lc.limits.h2MaxConcurrentStreams, maxSessionMemoryBytes: lc.limits.h2MaxSessionMemory };
}

/** What an https listener is built from and cannot change in place: its `tls` section and its h2 server's limits. */
const builtSpec = (lc: HttpsListenerConfig): unknown => ({ tls: lc.tls, h2: h2Limits(lc) });

/** The spec (builtSpec) each https listener was built from. */
const builtFrom = Reuse.byObject<HttpsListener, true>();

/**
 * Reload: new routes and HTTP settings in place when the `tls` section and the h2 limits are
 * unchanged; false otherwise (the listener is then rebuilt on a new socket and the old one drains).
 */
export function updateHttpsListener(l: HttpsListener, lc: HttpsListenerConfig, http: HttpListenerSettings): boolean {
  if (!builtFrom.holds(l, builtSpec(lc))) return false;
  l.update({ ...http, proto: 'https' });
  return true;
}
