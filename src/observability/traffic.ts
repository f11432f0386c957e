import type { ExchangeRecord, TcpRecord } from './records.js';
import { FINE_BUCKETS, PROM_BUCKETS_SEC, fineBucket, promBucket } from './latency.js';

/**
 * Traffic of one server of one pool, over every listener: totals, and the accumulators
 * of the current interval that the live statistics read and reset once a second.
 * A server's slot is created on its first request and kept while the server exists.
 */
export class ServerTraffic {
  readonly pool: string;
  readonly server: string;
  /** Requests finished, ever. */
  requests = 0;
  /** Of which answered with a 5xx (by the server or by Portico). */
  errors = 0;
  // ---- the current interval ----
  n = 0;
  errs = 0;
  /** Sum of the total times of the requests finished in the interval (ms). */
  sumMs = 0;
  /** Time integral of the requests in flight over the interval (ms x requests): Little's N times the interval. */
  areaMs = 0;
  bytes = 0;
  /** Requests of the interval answered by the server, and the sum of their server times (time to first byte less connect time, ms). */
  svcN = 0;
  svcSumMs = 0;
  /** Fine latency histogram of the interval. */
  readonly fine = new Float64Array(FINE_BUCKETS);

  constructor(pool: string, server: string) {
    this.pool = pool;
    this.server = server;
  }

  /** Zero the interval accumulators (the ticker, after reading them). */
  resetInterval(): void {
    this.n = 0;
    this.errs = 0;
    this.sumMs = 0;
    this.areaMs = 0;
    this.bytes = 0;
    this.svcN = 0;
    this.svcSumMs = 0;
    this.fine.fill(0);
  }
}

/** Counters of one listener x pool x server: the label set of the request metrics. */
export class ExchangeCounters {
  readonly listener: string;
  readonly pool: string;
  readonly server: string;
  readonly srv: ServerTraffic;
  requests = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Sum of the request durations, seconds. */
  sumSec = 0;
  /** Prometheus buckets, not cumulative; the last is +Inf. */
  readonly buckets = new Float64Array(PROM_BUCKETS_SEC.length + 1);
  /** Status codes seen and their counts (a handful per slot; scanned linearly). */
  readonly codes: number[] = [];
  readonly codeCounts: number[] = [];

  constructor(listener: string, pool: string, server: string, srv: ServerTraffic) {
    this.listener = listener;
    this.pool = pool;
    this.server = server;
    this.srv = srv;
  }
}

/** One listener: its label sets, and its requests of the current interval. */
export class ListenerTraffic {
  readonly name: string;
  requests = 0;
  n = 0;
  readonly byPool = new Map<string, Map<string, ExchangeCounters>>();
  constructor(name: string) {
    this.name = name;
  }
}

/**
 * The per-request sink of the metrics and of the live statistics. `record` runs once per
 * finished request on the data path: three lookups in small maps keyed by strings the
 * data path keeps (so their hashes are cached), then field increments. Prometheus reads
 * these counters at scrape time; nothing here allocates once a label set exists.
 */
export class TrafficCounters {
  readonly listeners = new Map<string, ListenerTraffic>();
  /** pool -> server -> traffic ('' server: requests the pool could not place). */
  readonly servers = new Map<string, Map<string, ServerTraffic>>();
  /** Start of the current interval (performance.now ms); the live statistics move it. */
  intervalStart = performance.now();

  readonly record = (rec: ExchangeRecord): void => {
    let lt = this.listeners.get(rec.listener);
    if (lt === undefined) {
      lt = new ListenerTraffic(rec.listener);
      this.listeners.set(rec.listener, lt);
    }
    lt.requests++;
    lt.n++;
    const pool = rec.pool;
    const server = rec.server;
    let byServer = lt.byPool.get(pool);
    if (byServer === undefined) {
      byServer = new Map();
      lt.byPool.set(pool, byServer);
    }
    let c = byServer.get(server);
    if (c === undefined) {
      c = new ExchangeCounters(rec.listener, pool, server, this.serverTraffic(pool, server));
      byServer.set(server, c);
    }
    const status = rec.status;
    const ms = rec.totalMs;
    c.requests++;
    c.bytesIn += rec.bytesIn;
    c.bytesOut += rec.bytesOut;
    c.sumSec += ms / 1000;
    c.buckets[promBucket(ms)]!++;
    const codes = c.codes;
    let i = 0;
    while (i < codes.length && codes[i] !== status) i++;
    if (i === codes.length) {
      codes.push(status);
      c.codeCounts.push(1);
    } else c.codeCounts[i]!++;

    const s = c.srv;
    const isError = status >= 500;
    s.requests++;
    s.n++;
    if (isError) {
      s.errors++;
      s.errs++;
    }
    s.sumMs += ms;
    s.bytes += rec.bytesIn + rec.bytesOut;
    s.fine[fineBucket(ms)]!++;
    // The server's own time: from the request sent on a ready connection to the first byte of its answer.
    const connectMs = rec.connectMs;
    if (rec.error === '' && connectMs > 0 && rec.firstByteMs >= connectMs) {
      s.svcN++;
      s.svcSumMs += rec.firstByteMs - connectMs;
    }
    // The part of this request's life inside the current interval (the earlier part was
    // counted while it was in flight, at the previous tick).
    const start = rec.startedAt;
    const t0 = this.intervalStart;
    s.areaMs += start + ms - (start > t0 ? start : t0);
  };

  /** A finished tcp-listener connection: its bytes (no request, no latency). */
  readonly recordConnection = (rec: TcpRecord): void => {
    const c = this.counters(rec.listener, rec.pool, rec.server);
    c.bytesIn += rec.bytesIn;
    c.bytesOut += rec.bytesOut;
    c.srv.bytes += rec.bytesIn + rec.bytesOut;
  };

  private counters(listener: string, pool: string, server: string): ExchangeCounters {
    let lt = this.listeners.get(listener);
    if (lt === undefined) {
      lt = new ListenerTraffic(listener);
      this.listeners.set(listener, lt);
    }
    let byServer = lt.byPool.get(pool);
    if (byServer === undefined) {
      byServer = new Map();
      lt.byPool.set(pool, byServer);
    }
    let c = byServer.get(server);
    if (c === undefined) {
      c = new ExchangeCounters(listener, pool, server, this.serverTraffic(pool, server));
      byServer.set(server, c);
    }
    return c;
  }

  /** The traffic slot of a server, created on first use. */
  serverTraffic(pool: string, server: string): ServerTraffic {
    let m = this.servers.get(pool);
    if (m === undefined) {
      m = new Map();
      this.servers.set(pool, m);
    }
    let s = m.get(server);
    if (s === undefined) {
      s = new ServerTraffic(pool, server);
      m.set(server, s);
    }
    return s;
  }

  /** Drop the counters of a server that left its pool (its series leave /metrics). */
  forget(pool: string, server: string): void {
    this.servers.get(pool)?.delete(server);
    for (const lt of this.listeners.values()) lt.byPool.get(pool)?.delete(server);
  }

  /** Every listener x pool x server label set. */
  *exchanges(): IterableIterator<ExchangeCounters> {
    for (const lt of this.listeners.values()) for (const m of lt.byPool.values()) yield* m.values();
  }
}
