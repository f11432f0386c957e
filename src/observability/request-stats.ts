import type { ExchangeRecord, HttpObserver, TcpObserver, TcpRecord } from './records.js';

/** Counters of finished requests, rejections and connections; feeds the admin API and metrics. */
export class RequestStats implements HttpObserver, TcpObserver {
  requests = 0;
  readonly byStatusClass = [0, 0, 0, 0, 0, 0];
  readonly rejections = new Map<string, number>();
  readonly connections = new Map<string, number>();
  private sinks: ((rec: ExchangeRecord) => void)[] = [];
  private readonly tcpSinks: ((rec: TcpRecord) => void)[] = [];

  /** Add a consumer of finished requests (access log, metrics). */
  onRequest(fn: (rec: ExchangeRecord) => void): void {
    this.sinks.push(fn);
  }

  /** Remove a consumer added with onRequest (a new list: one being walked is not changed). */
  offRequest(fn: (rec: ExchangeRecord) => void): void {
    this.sinks = this.sinks.filter((f) => f !== fn);
  }

  /** Add a consumer of finished tcp-listener connections (metrics). */
  onConnectionDone(fn: (rec: TcpRecord) => void): void {
    this.tcpSinks.push(fn);
  }

  connectionDone(rec: TcpRecord): void {
    for (let i = 0; i < this.tcpSinks.length; i++) this.tcpSinks[i]!(rec);
  }

  requestDone(rec: ExchangeRecord): void {
    this.requests++;
    const c = (rec.status / 100) | 0;
    if (c >= 1 && c <= 5) this.byStatusClass[c]!++;
    const sinks = this.sinks;
    for (let i = 0; i < sinks.length; i++) sinks[i]!(rec);
  }

  rejected(listener: string, reason: string): void {
    const k = `${listener}\u0000${reason}`;
    this.rejections.set(k, (this.rejections.get(k) ?? 0) + 1);
  }

  rejectedFor(listener: string, reason: string): number {
    return this.rejections.get(`${listener}\u0000${reason}`) ?? 0;
  }

  connection(listener: string): void {
    this.connections.set(listener, (this.connections.get(listener) ?? 0) + 1);
  }
}
