import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { readProxyHeader, type ProxyInfo, type ProxyVersion } from '../proxy-protocol.js';
import type { CidrSet } from '../../core/cidr.js';
import type { AccessList } from '../access.js';
import type { RateLimiter } from '../rate-limit.js';
import type { HeadLimits } from './parse-request.js';
import type { HttpLimits, HttpListenerRuntime, HttpRoute } from './listener-runtime.js';
import { HttpSession, type ExchangeRecord } from './session.js';
import { TICK_MS, holdClock, refreshClock } from './deadlines.js';

export interface HttpListenerSettings {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly proto: 'http' | 'https';
  readonly limits: HttpLimits;
  readonly upstreamHeadLimits: HeadLimits;
  readonly trusted: CidrSet;
  readonly exposeServer: boolean;
  readonly noRouteStatus: 404 | 503;
  readonly routes: readonly HttpRoute[];
  /** Clients (another balancer) start each connection with a PROXY protocol header. */
  readonly acceptProxy?: boolean | undefined;
  /** Server connections start with a PROXY protocol header naming the client. */
  readonly sendProxy?: false | ProxyVersion | undefined;
  /** Who may connect; undefined admits every address (and checks nothing). */
  readonly access?: AccessList | undefined;
  /** Requests over this limit get 429; undefined: no limit (and nothing is checked). */
  readonly rateLimit?: RateLimiter | undefined;
}

export interface HttpObserver {
  requestDone(rec: ExchangeRecord): void;
  rejected(listener: string, reason: string): void;
  connection(listener: string): void;
}

/**
 * An `http` listener: accepts connections and runs one HttpSession per connection.
 * Its settings are fields that a reload replaces in place, so live connections pick
 * up new routes on their next request.
 */
export class HttpListener implements HttpListenerRuntime {
  readonly protocol: 'http' | 'https' = 'http';
  name: string;
  proto: 'http' | 'https';
  limits: HttpLimits;
  upstreamHeadLimits: HeadLimits;
  trusted: CidrSet;
  exposeServer: boolean;
  noRouteStatus: 404 | 503;
  routes: readonly HttpRoute[];
  acceptProxy: boolean;
  sendProxy: false | ProxyVersion;
  access: AccessList | undefined;
  rateLimit: RateLimiter | undefined;
  readonly sessions = new Set<HttpSession>();
  private server: NetServer | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private releaseClock: (() => void) | undefined;
  private readonly host: string;
  private port: number;
  private readonly observer: HttpObserver | undefined;

  constructor(settings: HttpListenerSettings, observer?: HttpObserver) {
    this.name = settings.name;
    this.host = settings.host;
    this.port = settings.port;
    this.proto = settings.proto;
    this.limits = settings.limits;
    this.upstreamHeadLimits = settings.upstreamHeadLimits;
    this.trusted = settings.trusted;
    this.exposeServer = settings.exposeServer;
    this.noRouteStatus = settings.noRouteStatus;
    this.routes = settings.routes;
    this.acceptProxy = settings.acceptProxy === true;
    this.sendProxy = settings.sendProxy ?? false;
    this.access = settings.access;
    this.rateLimit = settings.rateLimit;
    this.observer = observer;
  }

  /** Apply new settings (reload); the socket and live connections are kept. */
  update(settings: HttpListenerSettings): void {
    this.proto = settings.proto;
    this.limits = settings.limits;
    this.upstreamHeadLimits = settings.upstreamHeadLimits;
    this.trusted = settings.trusted;
    this.exposeServer = settings.exposeServer;
    this.noRouteStatus = settings.noRouteStatus;
    this.routes = settings.routes;
    this.acceptProxy = settings.acceptProxy === true;
    this.sendProxy = settings.sendProxy ?? false;
    this.access = settings.access;
    if (this.rateLimit !== settings.rateLimit) this.rateLimit?.close();
    this.rateLimit = settings.rateLimit;
  }

  get address(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  onDone(rec: ExchangeRecord): void {
    this.observer?.requestDone(rec);
  }

  onRejected(reason: string): void {
    this.observer?.rejected(this.name, reason);
  }

  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, this.accept);
    server.on('error', () => {
      // errors after listen (EMFILE ...) must not take the process down; accept continues
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error): void => reject(err);
      server.once('error', onErr);
      server.listen({ host: this.host, port: this.port }, () => {
        server.off('error', onErr);
        resolve();
      });
    });
    const a = server.address();
    if (a !== null && typeof a === 'object') this.port = a.port;
    this.releaseClock = holdClock();
    this.sweepTimer = setInterval(this.sweep, TICK_MS);
    this.sweepTimer.unref();
  }

  private readonly accept = (sock: Socket): void => {
    sock.on('error', noop); // until the session takes over; never an unhandled 'error'
    if (this.sessions.size >= this.limits.maxConnections) {
      this.observer?.rejected(this.name, 'max-connections');
      sock.destroy();
      return;
    }
    // The access list is checked once per connection: against the socket's peer, or with
    // acceptProxy against the client the PROXY header names.
    if (!this.acceptProxy && this.access !== undefined && !this.access.admits(sock.remoteAddress ?? '')) {
      this.observer?.rejected(this.name, 'access');
      sock.destroy();
      return;
    }
    this.observer?.connection(this.name);
    if (!this.acceptProxy) return this.open(sock, undefined);
    readProxyHeader(
      sock,
      this.limits.headerTimeoutMs,
      (info: ProxyInfo) => {
        if (this.server === undefined) return void sock.destroy();
        if (this.access !== undefined && !this.access.admits(info.sourceAddress)) {
          this.onRejected('access');
          sock.destroy();
          return;
        }
        this.open(sock, info);
      },
      (reason: string) => this.onRejected(reason === 'PROXY header timeout' ? 'timeout' : 'bad-proxy-header'),
    );
  };

  /**
   * Serve an accepted connection: an HttpSession on it. `peer` is the client connection from a
   * PROXY header (undefined: the socket's own), whose reader left the socket paused. The https
   * listener handshakes TLS first.
   */
  protected open(sock: Socket, peer: ProxyInfo | undefined): void {
    this.sessions.add(new HttpSession(sock, this, peer));
    if (peer !== undefined) sock.resume();
  }

  private readonly sweep = (): void => {
    const now = refreshClock();
    for (const s of this.sessions) {
      if (s.deadline !== 0 && s.deadline <= now) {
        try {
          s.onDeadline();
        } catch {
          s.sock.destroy();
        }
      }
    }
  };

  /** Stop accepting; let in-flight requests finish for up to graceMs, then cut what is left. */
  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sessions) s.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      for (const s of this.sessions) if (s.idle) s.shutdown();
    }
    for (const s of this.sessions) s.sock.destroy();
    await closed;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.rateLimit?.close();
    this.releaseClock?.();
  }
}

function noop(): void {}
