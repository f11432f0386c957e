import type { Clock } from '../core/clock.js';
import type { Rng } from '../core/rng.js';
import type { Server, ServerId } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';

/** What a balancer may know about the request it places. */
export interface PickContext {
  /** The hash key of hash-based algorithms (already extracted by the pool from the request). */
  readonly hashKey?: string | undefined;
  /** The path, for locality-aware algorithms (LARD). */
  readonly path?: string | undefined;
  /** Servers already tried for this request: never pick one of them while another is available. */
  readonly avoid?: ReadonlySet<ServerId> | undefined;
}

/** A balancer is built from one ServerSet and only picks among `set.available`. */
export interface Balancer {
  readonly name: string;
  pick(ctx: PickContext): Server | undefined;
  /** Optional hooks (HAProxy's take/drop): a request started / finished on a server. */
  onAcquire?(server: Server): void;
  onRelease?(server: Server, outcome: ReleaseOutcome): void;
}

export interface ReleaseOutcome {
  /** Response time in milliseconds (to first byte), when known. */
  readonly latencyMs?: number | undefined;
  /** Bytes moved in both directions by the request. */
  readonly bytes?: number | undefined;
  readonly ok: boolean;
}

/** Live in-flight counts per server, owned by the pool and shared by every balancer it builds. */
export interface ActiveCounts {
  active(id: ServerId): number;
  /**
   * Optional: requests in flight over the whole pool. Bounded-load hashing needs it on every pick;
   * without it the balancer sums `active` over its available servers (O(n)).
   */
  total?(): number;
}

export interface BalancerDeps {
  readonly rng: Rng;
  readonly clock: Clock;
  readonly counts: ActiveCounts;
  /**
   * State that survives rebuilds of the same pool (EWMA scores, LARD tables, traffic rates):
   * a balancer may keep anything under its own name here.
   */
  readonly carry: Map<string, unknown>;
  /** Effective weight of a server (slow start); defaults to `server.weight`. */
  readonly weightOf?: ((s: Server) => number) | undefined;
}

export interface BalancerFactory<O = unknown> {
  /** The name used in configuration (`balance:`), kebab-case and stable. */
  readonly name: string;
  /**
   * Validate and normalise the algorithm's options once, at config load: the pool key named
   * after the algorithm (`hash:` for `balance: hash`, `my-algo:` for `balance: my-algo`), or
   * `undefined` when the pool has none. Throws with a clear message (a BalancerOptionsError names
   * the option at fault).
   */
  parseOptions(raw: unknown): O;
  /**
   * The part of a request this algorithm hashes on (`source-ip | uri | header:NAME | cookie:NAME |
   * query:NAME`), when it hashes: the data path extracts it and passes it as `PickContext.hashKey`
   * (a tcp listener hashes on the client address).
   */
  requestKey?(options: O): string | undefined;
  /** Build a balancer for one snapshot. */
  build(set: ServerSet, options: O, deps: BalancerDeps): Balancer;
}
