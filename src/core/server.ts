/** The shared vocabulary of Portico: a server, its identity and its two kinds of state. */

/** A server's identity inside its pool: `pool/name`. Stable across reloads while the name is kept. */
export type ServerId = string & { readonly __brand: 'ServerId' };

export const serverId = (pool: string, name: string): ServerId => `${pool}/${name}` as ServerId;

/** Operator intent: set by the configuration or the admin API, never by a probe. */
export type AdminState = 'ready' | 'drain' | 'maint';
/** Observed state: set by active checks and outlier detection, never by the operator. */
export type OpState = 'up' | 'down' | 'starting';

export interface Server {
  readonly id: ServerId;
  /** The name inside the pool (config `servers[].name`). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Configured weight, 0..256. The effective weight (slow start) is applied by whoever builds the set. */
  readonly weight: number;
  /** Only receives traffic when no primary server is available. */
  readonly backup: boolean;
  /** Per-server bound on concurrent requests; 0 means unbounded. */
  readonly maxConnections: number;
  /** Free-form metadata (site, region, url, dnsAddress ...). */
  readonly meta: Readonly<Record<string, string>>;
}

/** New traffic may go to the server. */
export const isAvailable = (admin: AdminState, op: OpState): boolean => admin === 'ready' && op !== 'down';
/** Traffic already pinned to the server (sticky sessions) may keep going to it. */
export const acceptsPinned = (admin: AdminState, op: OpState): boolean => admin !== 'maint' && op !== 'down';
