/**
 * What the data path hands to observers when a request or connection ends, and the observer
 * interfaces the listeners call. They live here, with the code that reads them (access log,
 * metrics, traffic counters), so observability depends on no listener; the listeners import them.
 */

/** What a finished request looked like; handed to observers (access log, metrics). */
export interface ExchangeRecord {
  readonly listener: string;
  readonly method: string;
  readonly target: string;
  readonly host: string;
  readonly clientAddress: string;
  readonly route: string;
  readonly pool: string;
  readonly server: string;
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly startedAt: number;
  /** ms spent in the pool's queue waiting for a server slot (0 when it did not wait). */
  readonly queueMs: number;
  /** ms from the request head to a server connection being ready (queue + connect). */
  readonly connectMs: number;
  /** ms from the request head to the first byte of the response head. */
  readonly firstByteMs: number;
  readonly totalMs: number;
  readonly tries: number;
  /** Why the exchange failed, or '' when it completed. */
  readonly error: string;
  /** `1.0` or `1.1`: the request's HTTP version. */
  readonly httpVersion: string;
  /** The route cache's verdict (the Cache-Status value: `hit`, `fwd=miss`, ...), or '' on a route without a cache. */
  readonly cacheStatus: string;
  requestId(): string;
  /** A request header by lower-case name ('' when absent); a scan, for sinks such as the access log. */
  header(lname: string): string;
}

/** What a finished connection of a `tcp` listener looked like (observers: metrics, access log). */
export interface TcpRecord {
  readonly listener: string;
  readonly clientAddress: string;
  readonly route: string;
  readonly pool: string;
  readonly server: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly tries: number;
  /** Why the connection ended abnormally, or ''. */
  readonly error: string;
}

/** Told of an http/https listener's finished requests, refusals and connections. */
export interface HttpObserver {
  requestDone(rec: ExchangeRecord): void;
  rejected(listener: string, reason: string): void;
  connection(listener: string): void;
}

/** Told of a `tcp` listener's connections, refusals and finished connections. */
export interface TcpObserver {
  connection(listener: string): void;
  rejected(listener: string, reason: string): void;
  /** A connection ended (metrics, access log). */
  connectionDone?(rec: TcpRecord): void;
}
