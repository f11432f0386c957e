import type { Clock } from '../core/clock.js';
import type { StateStore } from '../store/state-store.js';
import { CookieInsertPersistence, CookiePrefixPersistence } from './cookie.js';
import type { Persistence } from './persistence.js';
import { SourceIpPersistence } from './source-ip.js';
import { StickTable } from './stick-table.js';
import { ServerTokens } from './tokens.js';
import { UrlParamPersistence } from './url-param.js';

export type { Persistence, PersistenceType } from './persistence.js';
export type { StickyRequest, StickyResponse } from './request.js';
export { ServerTokens } from './tokens.js';
export { StickTable } from './stick-table.js';
export { loadOrCreateSecret } from './secret.js';
export { placeSticky, type Placement } from './place.js';

/** The `persistence` section of a pool, as validated by the configuration schema (durations in ms). */
export type PersistenceSpec =
  | { readonly type: 'cookie'; readonly name: string; readonly mode: 'insert' | 'prefix'; readonly secret?: string | undefined; readonly maxAge?: number | undefined; readonly domain?: string | undefined }
  | { readonly type: 'source-ip'; readonly ttl: number; readonly size: number }
  | { readonly type: 'url-param'; readonly name: string; readonly learn: boolean; readonly ttl: number; readonly size: number }
  | { readonly type: 'tls-session'; readonly ttl: number; readonly size: number };

export interface PersistenceDeps {
  readonly clock: Clock;
  /** Where stick tables are written through to. */
  readonly store?: StateStore | undefined;
  /** The store is shared with other nodes: a local miss asks it. */
  readonly sharedStore?: boolean | undefined;
  /** Tokens keyed by the state-directory secret, for cookie persistence without a `secret` of its own. */
  readonly stateTokens: ServerTokens;
  readonly onStoreError?: ((err: unknown) => void) | undefined;
}

/**
 * The Persistence of pool `pool` (HTTP side). Cookie persistence with its own `secret` gets
 * its own tokens; without one it shares `deps.stateTokens`, whose secret the owner loads at
 * start (loadOrCreateSecret). `tls-session` belongs to tcp listeners and is refused here.
 */
export function createPersistence(pool: string, spec: PersistenceSpec, deps: PersistenceDeps): Persistence {
  switch (spec.type) {
    case 'cookie': {
      const tokens = spec.secret !== undefined ? new ServerTokens(spec.secret) : deps.stateTokens;
      const options = { name: spec.name, maxAgeMs: spec.maxAge, domain: spec.domain };
      return spec.mode === 'insert' ? new CookieInsertPersistence(options, tokens) : new CookiePrefixPersistence(options, tokens);
    }
    case 'source-ip':
      return new SourceIpPersistence(table(pool, 'source-ip', spec, deps));
    case 'url-param':
      return new UrlParamPersistence({ name: spec.name, learn: spec.learn }, table(pool, 'url-param', spec, deps));
    case 'tls-session':
      throw new Error(`pool ${pool}: tls-session persistence applies to tcp listeners`);
  }
}

/** True when `spec` needs the state-directory secret (a cookie without a secret of its own). */
export function needsStateSecret(spec: PersistenceSpec): boolean {
  return spec.type === 'cookie' && spec.secret === undefined;
}

function table(pool: string, kind: string, spec: { readonly ttl: number; readonly size: number }, deps: PersistenceDeps): StickTable {
  return new StickTable({
    namespace: `stick:${pool}:${kind}:`,
    ttlMs: spec.ttl,
    size: spec.size,
    clock: deps.clock,
    store: deps.store,
    readThrough: deps.sharedStore === true,
    onStoreError: deps.onStoreError,
  });
}
