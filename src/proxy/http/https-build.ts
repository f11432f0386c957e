import type { HttpsListenerConfig } from '../../config/types.js';
import { tlsBuildError, tlsTerminationSettings, type ListenerTlsDeps } from '../../tls/listener-tls.js';
import { HttpsListener } from './https-listener.js';
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
    const l = new HttpsListener({ ...http, proto: 'https', tls: { ...tlsTerminationSettings(lc.name, t, deps), http2: t.http2 } }, deps.observer, deps.log);
    tlsSpecs.set(l, JSON.stringify(t));
    return l;
  } catch (err) {
    throw tlsBuildError(lc.name, t, err);
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
