import type { Outcome } from '../../core/outcome.js';
import type { Server } from '../../core/server.js';
import type { ExchangeRecord } from '../../observability/records.js';
import type { ClientCertState } from '../../tls/client-cert.js';
import type { HttpListenerRuntime, HttpRoute, PoolHandle } from './listener-runtime.js';
import type { HeadLimits, RequestHead } from './parse-request.js';
import type { ResponseHead } from './parse-response.js';
import type { RequestView } from './router.js';
import type { ReleaseStats } from '../upstream-attempt.js';

let requestSeq = 0;
const idPrefix = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;

/**
 * One request and its answer, apart from the connection that carries it (HttpSession keeps the
 * transport: socket, framing, back-pressure, deadlines). It is what routing matches, what the
 * phases read and write, and the record the access log, metrics and live statistics read.
 *
 * A session keeps one Exchange for its connection and `reset()`s it between requests, so nothing
 * is allocated per request; every per-request field is declared here and cleared in `reset()`.
 */
export class Exchange implements ExchangeRecord, RequestView, ReleaseStats {
  private readonly lst: HttpListenerRuntime;
  /** The client's address (from a PROXY header when one named it). */
  readonly clientAddress: string;
  /** The client is one of the listener's trustedProxies: its forwarding headers are kept. */
  readonly clientTrusted: boolean;
  /** The TLS server name of the client connection (https listeners), for `match: { sni }`. */
  readonly sni: string | undefined;
  /** The client certificate of the connection (https listeners with clientAuth), for `match: { clientCert }`. */
  readonly clientCert: ClientCertState | undefined;
  /** The client-certificate header lines (tls.clientAuth) a request of this connection carries to the server; '' for none. */
  readonly clientCertHead: string;

  // ---- the request ----
  /** The parsed request head; undefined between requests. */
  head: RequestHead | undefined = undefined;
  method = '';
  /** The request target as received. */
  target = '';
  /** Normalised path, without the query. */
  path = '';
  /** Query without '?', or ''. */
  query = '';
  /** Normalised Host: lower-case, no port, no trailing dot. */
  host = '';
  lnames: readonly string[] = [];
  values: readonly string[] = [];

  // ---- routing and the upstream attempt ----
  /** The route that matched; undefined before routing or when none did. */
  compiledRoute: HttpRoute | undefined = undefined;
  /** The pool of that route, as the data path uses it. */
  poolHandle: PoolHandle | undefined = undefined;
  /** The server of the current (or last) try. */
  picked: Server | undefined = undefined;
  /** The server persistence pinned this request to (undefined: not pinned). */
  pinned: Server | undefined = undefined;
  /** The next try must open a new server connection (an idle one turned out stale). */
  freshOnly = false;
  tries = 0;

  // ---- the response ----
  /** The server's final response head; undefined until it arrives (or when Portico answered). */
  response: ResponseHead | undefined = undefined;
  status = 0;
  /** How the exchange failed (core/outcome.ts), or undefined while it has not. */
  outcome: Outcome | undefined = undefined;
  /**
   * A phase replaces the response body (set in its onResponseHead): the session frames what the
   * body phases return instead of relaying the server's bytes.
   */
  bodyReplaced = false;
  /** The cache's verdict for this request (the Cache-Status value, for the access log); '' on routes without a cache. */
  cacheStatus = '';
  /** Per-request state of the route's cache phase; undefined on routes without one. */
  cacheState: object | undefined = undefined;
  /** The compressor of the route's compression phase while it replaces this response's body. */
  compressState: object | undefined = undefined;

  // ---- counters and timings (performance.now() ms) ----
  bytesIn = 0;
  bytesOut = 0;
  startedAt = 0;
  queueMs = 0;
  connectMs = 0;
  firstByteMs = 0;
  totalMs = 0;
  private rid = '';

  constructor(lst: HttpListenerRuntime, clientAddress: string, sni: string | undefined, clientCert: ClientCertState | undefined, clientCertHead = '') {
    this.lst = lst;
    this.clientAddress = clientAddress;
    this.clientTrusted = lst.trusted.size > 0 && lst.trusted.has(clientAddress);
    this.sni = sni;
    this.clientCert = clientCert;
    this.clientCertHead = clientCertHead;
  }

  /** Ready for the connection's next request. */
  reset(): void {
    this.head = undefined;
    this.method = '';
    this.compiledRoute = undefined;
    this.poolHandle = undefined;
    this.picked = undefined;
    this.pinned = undefined;
    this.freshOnly = false;
    this.tries = 0;
    this.response = undefined;
    this.status = 0;
    this.outcome = undefined;
    this.bodyReplaced = false;
    this.cacheStatus = '';
    this.cacheState = undefined;
    this.compressState = undefined;
    this.queueMs = 0;
    this.connectMs = 0;
    this.firstByteMs = 0;
    this.rid = '';
  }

  /** The listener's name. */
  /** The listener sends a PROXY header on every server connection (which then serves this client only). */
  get sendsProxy(): boolean {
    return this.lst.sendProxy !== false;
  }
  /** The limits on the response heads of this listener's servers. */
  get upstreamHeadLimits(): HeadLimits {
    return this.lst.upstreamHeadLimits;
  }
  get listener(): string {
    return this.lst.name;
  }
  /** `http` or `https`: the scheme the client used. */
  get scheme(): 'http' | 'https' {
    return this.lst.proto;
  }
  get route(): string {
    return this.compiledRoute?.name ?? '';
  }
  get pool(): string {
    return this.poolHandle?.pool.name ?? '';
  }
  get server(): string {
    return this.picked?.name ?? '';
  }
  /** Why the exchange failed (the outcome's access-log text), or '' when it completed. */
  get error(): string {
    return this.outcome === undefined ? '' : this.outcome.text;
  }
  /** ReleaseStats: the time to the server's first byte. */
  get latencyMs(): number {
    return this.firstByteMs;
  }
  get httpVersion(): string {
    return this.head?.minor === 0 ? '1.0' : '1.1';
  }
  requestId(): string {
    if (this.rid === '') this.rid = idPrefix + (++requestSeq).toString(36);
    return this.rid;
  }
  header(lname: string): string {
    const names = this.lnames;
    for (let i = 0; i < names.length; i++) if (names[i] === lname) return this.values[i]!;
    return '';
  }
}
