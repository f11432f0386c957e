/**
 * A listener's `tls` section (https and redirect listeners) turned into what TlsTermination takes:
 * the certificate files and options, and the session resumption (local, or shared through the
 * cluster's store). A certificate that does not load becomes a ConfigError naming the key.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError, OBJECT_FILE } from '../config/errors.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../store/state-store.js';
import { CertificateError, type CertificateFiles } from './cert-store.js';
import { SessionResumption } from './session-resumption.js';
import type { TlsTerminationSettings } from './termination.js';

/** The keys of a validated `tls` section that TLS termination reads (durations in ms). */
export interface ListenerTlsSpec {
  readonly certificates: readonly CertificateFiles[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
  readonly sessionCache: 'local' | 'shared';
  readonly sessionTimeout: number;
  readonly ticketKeyRotation: number;
  readonly reloadCheck: number;
  readonly clientAuth?: false | { readonly ca: string; readonly crl?: string | undefined; readonly verify: 'required' | 'optional' } | undefined;
}

export interface ListenerTlsDeps {
  readonly clock: Clock;
  readonly log?: Logger | undefined;
  /** The cluster's StateStore, for `sessionCache: shared`. */
  readonly store: StateStore;
}

/** Sessions kept in this process for resumption by id (each a few hundred bytes). */
const SESSION_CACHE_SIZE = 20_000;

export function tlsTerminationSettings(listener: string, t: ListenerTlsSpec, deps: ListenerTlsDeps): TlsTerminationSettings {
  const resumption = new SessionResumption({
    listener,
    sessionTimeoutMs: t.sessionTimeout,
    cacheSize: SESSION_CACHE_SIZE,
    rotationMs: t.ticketKeyRotation,
    clock: deps.clock,
    store: t.sessionCache === 'shared' ? deps.store : undefined,
    onError: (what, err) => deps.log?.warn(`listener ${listener}: TLS ${what} store failed; sessions resume on this node only`, { error: err instanceof Error ? err.message : String(err) }),
  });
  return {
    certificates: t.certificates,
    minVersion: t.minVersion,
    ciphers: t.ciphers,
    sessionTimeoutMs: t.sessionTimeout,
    reloadCheckMs: t.reloadCheck,
    resumption,
    clientAuth: t.clientAuth === false ? undefined : t.clientAuth,
  };
}

/** `err` as thrown while building the listener: a CertificateError becomes a ConfigError at `listeners.NAME.tls.KEY`. */
export function tlsBuildError(listener: string, t: ListenerTlsSpec, err: unknown): unknown {
  if (!(err instanceof CertificateError)) return err;
  const ca = t.clientAuth;
  const key = ca !== false && ca !== undefined && err.file === ca.ca ? 'clientAuth.ca' : ca !== false && ca !== undefined && err.file === ca.crl ? 'clientAuth.crl' : 'certificates';
  return new ConfigError([{ file: OBJECT_FILE, line: 0, col: 0, path: `listeners.${listener}.tls.${key}`, message: err.message }]);
}

/** `err` as thrown while loading the admin API's certificate: a CertificateError becomes a ConfigError at `admin.tls.cert` or `admin.tls.key`. */
export function adminTlsBuildError(files: CertificateFiles, err: unknown): unknown {
  if (!(err instanceof CertificateError)) return err;
  const key = err.file === files.key && err.file !== files.cert ? 'key' : 'cert';
  return new ConfigError([{ file: OBJECT_FILE, line: 0, col: 0, path: `admin.tls.${key}`, message: err.message }]);
}
