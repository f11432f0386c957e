/**
 * A listener kind: what one value of a listener's `protocol` is, registered like a balancing
 * algorithm (src/balancer/registry.ts). Each kind lives with its code (`src/proxy/http/kind.ts`,
 * `src/proxy/tcp/kind.ts`, `src/proxy/redirect/kind.ts`, `src/dns/kind.ts`) and is listed once
 * in `src/app/listener-kinds.ts`; the composition root (src/app/app.ts) and the reload
 * (src/app/reload.ts) ask the kind, and never switch on the protocol.
 */
import type { ListenerConfigKind } from '../config/schema/listener.js';
import type { ListenerConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Rng } from '../core/rng.js';
import type { Logger } from '../observability/logger.js';
import type { InflightRequest } from '../observability/live-stats.js';
import type { CollectedMetric } from '../observability/metrics.js';
import type { RequestStats } from '../observability/request-stats.js';
import type { Pool } from '../pool/pool.js';
import type { StateStore } from '../store/state-store.js';

/** A listener as Portico runs it; the bound address is known after start (port 0 in tests). */
export interface ListenerService {
  readonly name: string;
  /** The `protocol` of its configuration: with `dataPlane`, the kind it belongs to (kindKey). */
  readonly protocol: string;
  /** `kernel` for a kernel (nftables) listener; absent for the userspace ones. */
  readonly dataPlane?: 'kernel' | undefined;
  readonly address: { host: string; port: number };
  start(): Promise<void>;
  /** Stop accepting; finish in-flight work for up to graceMs, then cut. */
  stop(graceMs: number): Promise<void>;
}

/**
 * Everything a kind may build a listener from: one object, the same for every kind (the
 * composition root makes it). `H` is what a kind needs of a pool: at least the pool itself; the
 * http data path's `PoolHandle` adds retries, timeouts, persistence, the hash key and connection
 * reuse. A kind that needs more of the context (the tcp kind's per-pool L4 state) names it with
 * an intersection, and the root provides it.
 */
export interface BuildContext<H extends PoolOf = PoolOf> {
  /** The pools as listeners' routes use them, by name (those of the configuration being applied). */
  readonly handles: ReadonlyMap<string, H>;
  /** Request and connection counters, the access log. */
  readonly observer: RequestStats;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  /** The StateStore (stick tables, TLS sessions, rate limits). */
  readonly store: StateStore;
  /** Other nodes or workers use `store` too: state meant to be shared across them goes through it. */
  readonly sharedStore: boolean;
  /**
   * Something kept across reloads while the spec it was built from is unchanged (a rate limiter's
   * buckets ...), under a key the kind names (prefix it with the protocol). A kind that no longer
   * needs it keeps `undefined` under the key's new spec (the old value is let go).
   */
  kept<T>(key: string, spec: unknown, build: () => T): T;
  /** A store-error handler that logs `state store failed; <consequence>` at most every 10 s. */
  storeErrorWarning(consequence: string): (err: unknown) => void;
}

/** The least a kind sees of a pool. */
export interface PoolOf {
  readonly pool: Pool;
}

/**
 * One kind of listener. `C` is its configuration (the member of the listener union whose
 * `protocol` is `protocol`), `L` what it builds, `X` what it builds from. What the configuration
 * needs of it (`ListenerConfigKind`: its schema, the checks that concern it, the transports it
 * binds) is registered into the listener union of src/config/schema/listener.ts by
 * src/app/listener-kinds.ts.
 */
export interface ListenerKind<C extends ListenerConfig = ListenerConfig, L extends ListenerService = ListenerService, X extends BuildContext<any> = BuildContext>
  extends ListenerConfigKind {
  /** The value of `protocol` in configuration; also `L.protocol`. */
  readonly protocol: C['protocol'];
  /**
   * `kernel`: the kind of `dataPlane: kernel` listeners of this protocol (src/kernel/kind.ts);
   * absent: the userspace kind of the protocol. With `protocol`, the kind's key (kindKey).
   */
  readonly dataPlane?: 'kernel' | undefined;
  /** Build a listener (no I/O: it binds at start). A configuration it cannot build throws (a ConfigError names the file). */
  build(lc: C, ctx: X): L;
  /**
   * Reload: give `l` (built by this kind) its new settings, keeping its socket and connections.
   * False: it cannot (a changed `tls` section ...); it is then rebuilt on the same address and the
   * old one drains. Without `update` every change rebuilds.
   */
  update?(l: L, lc: C, ctx: X): boolean;
  /**
   * Reload: whether a change from `was` to `next` needs a new socket (the new one is bound
   * before the old one drains). Default: `listen` changed.
   */
  rebind?(was: C, next: C): boolean;
  /**
   * This process's share of the listener's connection limits when `workers` processes serve the
   * configuration (`cluster.workers`, src/core/limit-share.ts). Default: the configuration as is.
   */
  shareOf?(lc: C, workers: number): C;
  /** Requests in progress on `l` (Little's N of the live statistics). */
  inflight?(l: L): Iterable<InflightRequest>;
  /**
   * Read-only views of one listener in the admin API: `GET /api/v1/listeners/{name}/{view}`
   * answers `view(listener)` (the tcp binding table is `bindings`).
   */
  readonly adminViews?: Readonly<Record<string, (l: L) => unknown>>;
  /** Metrics read from this kind's listeners at scrape time (`listeners()`: those running now). */
  metrics?(listeners: () => Iterable<L>): CollectedMetric[];
}

/** What selects a listener's kind: its protocol and its data plane (a configuration or a running listener). */
export interface KindSelector {
  readonly protocol: string;
  readonly dataPlane?: string | undefined;
}

/** The registry key of a kind: its protocol (`tcp`), or `kernel/PROTOCOL` for `dataPlane: kernel`. */
export function kindKey(x: KindSelector): string {
  return x.dataPlane === 'kernel' ? `kernel/${x.protocol}` : x.protocol;
}

/** The userspace member of the listener union for `protocol: P` (a kernel listener has `dataPlane: kernel`). */
export type UserspaceListenerConfig<P extends ListenerConfig['protocol']> = Exclude<Extract<ListenerConfig, { protocol: P }>, { dataPlane: 'kernel' }>;

/** Type a userspace kind's definition (its configuration member picked by `protocol`). */
export function listenerKind<P extends ListenerConfig['protocol'], L extends ListenerService, X extends BuildContext<any> = BuildContext>(
  kind: ListenerKind<UserspaceListenerConfig<P>, L, X> & { readonly protocol: P },
): ListenerKind<UserspaceListenerConfig<P>, L, X> {
  return kind;
}
