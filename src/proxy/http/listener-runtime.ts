import type { CidrSet } from '../../core/cidr.js';
import type { Server } from '../../core/server.js';
import type { QueuePriority } from '../../pool/queue.js';
import type { ProxyVersion } from '../../net/proxy-protocol.js';
import type { RateLimiter } from './rate-limit.js';
import type { HeadLimits } from './parse-request.js';
import type { PhaseList } from './phases.js';
import type { Matcher, RequestView } from './router.js';
import type { HttpSession } from './session.js';
import type { ExchangeRecord } from '../../observability/records.js';
import type { ServerConnections } from './upstream.js';
import type { UpstreamPool } from '../upstream-pool.js';
import type { AttemptPool } from '../upstream-attempt.js';
import type { LiveSet } from '../../net/live-set.js';

/** A pool as the HTTP data path uses it: what every data path needs of it, plus the response timeout and connection reuse. */
export interface PoolHandle extends UpstreamPool {
  readonly responseTimeoutMs: number;
  /** The hash key of a request, for `balance: hash`. */
  readonly hashKey?: ((req: RequestView) => string | undefined) | undefined;
  connections(server: Server): ServerConnections;
}

/** A route compiled for the data path (router.ts compileRoutes). */
export interface HttpRoute {
  readonly name: string;
  readonly match: Matcher;
  readonly pool: PoolHandle | undefined;
  /** The pool as the upstream attempt takes it (passive health goes through the route's phases instead). */
  readonly upstream: AttemptPool | undefined;
  /**
   * The route's phases in order (phases.ts), compiled at load: its own answer (redirect, respond),
   * persistence, forwarding headers, passive health, X-Served-By. A route with a pool always has
   * the forwarding phase; one without a pool has a phase that answers.
   */
  readonly phases: PhaseList;
  /** Order in the pool's queue. */
  readonly priority: QueuePriority;
  /**
   * Request headers not forwarded as received: hop-by-hop ones, those the route edits and those the
   * pool's persistence rewrites. HOP_BY_HOP itself for a route with no edits and no persistence.
   */
  readonly requestDrop: ReadonlySet<string>;
  /** Header lines added to the forwarded request (each ending in CRLF), '' for none. */
  readonly requestAdd: string;
  /** The same for the response. */
  readonly responseDrop: ReadonlySet<string>;
  readonly responseAdd: string;
  /**
   * Response headers not replayed when a phase answers from a stored response (a cache hit):
   * hop-by-hop ones and those the route edits, but not those a response phase rewrites (that phase
   * does not run on such an answer). responseDrop when absent.
   */
  readonly answerDrop?: ReadonlySet<string> | undefined;
}

export interface HttpLimits extends HeadLimits {
  readonly headerTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly maxConnections: number;
  readonly maxRequestsPerConnection: number;
}

/** What a session reads from its listener; swapped as a whole on reload. */
export interface HttpListenerRuntime {
  readonly name: string;
  readonly proto: 'http' | 'https';
  readonly limits: HttpLimits;
  readonly upstreamHeadLimits: HeadLimits;
  readonly trusted: CidrSet;
  readonly exposeServer: boolean;
  readonly noRouteStatus: 404 | 503;
  readonly routes: readonly HttpRoute[];
  /** PROXY protocol header on every server connection (which then serves this client only). */
  readonly sendProxy: false | ProxyVersion;
  /** The listener's rate limit; undefined: none (and nothing is checked). */
  readonly rateLimit: RateLimiter | undefined;
  /** Phases run on every request before routing (the rate limit); NO_PHASES when none. */
  readonly phases: PhaseList;
  readonly sessions: LiveSet<HttpSession>;
  onDone(rec: ExchangeRecord): void;
  onRejected(reason: string): void;
}
