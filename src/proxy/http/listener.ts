import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { admit, drain, listen, readProxied, sweepDeadlines, type ProxyAcceptor } from '../../net/accept.js';
import type { ProxyInfo, ProxyVersion } from '../../net/proxy-protocol.js';
import type { CidrSet } from '../../core/cidr.js';
import type { AccessList } from '../../net/access.js';
import type { RateLimiter } from './rate-limit.js';
import type { HeadLimits } from './parse-request.js';
import type { HttpLimits, HttpListenerRuntime, HttpRoute } from './listener-runtime.js';
import { HttpSession } from './session.js';
import type { ExchangeRecord, HttpObserver } from '../../observability/records.js';
import { TICK_MS } from '../../net/deadlines.js';
import { compilePhases, NO_PHASES, type HttpPhase, type PhaseList } from './phases.js';
import { RateLimitPhase } from './phases/rate-limit.js';
import { LiveSet } from '../../net/live-set.js';

/** The listener's address, and what its sessions read (HttpListenerRuntime) as the configuration gives it. */
export interface HttpListenerSettings
  extends Pick<HttpListenerRuntime, 'name' | 'proto' | 'limits' | 'upstreamHeadLimits' | 'trusted' | 'exposeServer' | 'noRouteStatus' | 'routes'> {
  readonly host: string;
  readonly port: number;
  /** Clients (another balancer) start each connection with a PROXY protocol header. */
  readonly acceptProxy?: boolean | undefined;
  /** Server connections start with a PROXY protocol header naming the client. */
  readonly sendProxy?: false | ProxyVersion | undefined;
  /** Who may connect; undefined admits every address (and checks nothing). */
  readonly access?: AccessList | undefined;
  /** Requests over this limit get 429; undefined: no limit (and nothing is checked). */
  readonly rateLimit?: RateLimiter | undefined;
  /** Phases every request runs before routing, ahead of the rate limit (a redirect listener's target check). */
  readonly phases?: readonly HttpPhase[] | undefined;
  /**
   * The listener kind it serves as, when not `proto` itself: a `redirect` listener is an http (or,
   * with TLS, https) listener whose one route answers with a redirect (src/proxy/redirect/).
   */
  readonly protocol?: 'redirect' | undefined;
}

/**
 * An `http` listener: accepts connections and runs one HttpSession per connection.
 * Its settings are fields that a reload replaces in place, so live connections pick
 * up new routes on their next request.
 */
export class HttpListener implements HttpListenerRuntime, ProxyAcceptor {
  readonly protocol: 'http' | 'https' | 'redirect';
  name: string;
  // Set by update(), which the constructor calls.
  proto!: 'http' | 'https';
  limits!: HttpLimits;
  upstreamHeadLimits!: HeadLimits;
  trusted!: CidrSet;
  exposeServer!: boolean;
  noRouteStatus!: 404 | 503;
  routes!: readonly HttpRoute[];
  acceptProxy!: boolean;
  sendProxy!: false | ProxyVersion;
  access!: AccessList | undefined;
  rateLimit: RateLimiter | undefined = undefined;
  phases: PhaseList = NO_PHASES;
  readonly sessions = new LiveSet<HttpSession>();
  /** Connections still reading their PROXY header (acceptProxy). */
  readonly proxying = new Set<Socket>();
  private server: NetServer | undefined;
  private stopSweep: (() => void) | undefined;
  private readonly host: string;
  private port: number;
  private readonly observer: HttpObserver | undefined;

  constructor(settings: HttpListenerSettings, observer?: HttpObserver) {
    this.name = settings.name;
    this.protocol = settings.protocol ?? settings.proto;
    this.host = settings.host;
    this.port = settings.port;
    this.observer = observer;
    this.update(settings);
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
    const own = settings.phases;
    this.phases =
      settings.rateLimit === undefined && (own === undefined || own.length === 0)
        ? NO_PHASES
        : compilePhases([...(own ?? []), settings.rateLimit === undefined ? undefined : new RateLimitPhase(settings.rateLimit)]);
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

  get accepting(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, this.accept);
    this.server = server;
    this.port = await listen(server, this.host, this.port);
    this.stopSweep = sweepDeadlines(this.sessions, TICK_MS, destroySession);
  }

  /** Accepted connections that are no session yet (reading a PROXY header; a TLS handshake): they count toward maxConnections. */
  protected pendingConnections(): number {
    return this.proxying.size;
  }

  private readonly accept = (sock: Socket): void => {
    // The access list is checked once per connection: against the socket's peer, or with
    // acceptProxy against the client the PROXY header names.
    if (!admit(sock, this.name, this.observer, this.sessions.size + this.pendingConnections(), this.limits.maxConnections, this.access, this.acceptProxy)) return;
    if (this.acceptProxy) readProxied(sock, this.limits.headerTimeoutMs, this);
    else this.open(sock, undefined);
  };

  openProxied(sock: Socket, peer: ProxyInfo): void {
    this.open(sock, peer);
  }

  /**
   * Serve an accepted connection: an HttpSession on it. `peer` is the client connection from a
   * PROXY header (undefined: the socket's own), whose reader left the socket paused. The https
   * listener handshakes TLS first.
   */
  protected open(sock: Socket, peer: ProxyInfo | undefined): void {
    this.sessions.add(new HttpSession(sock, this, peer));
    if (peer !== undefined) sock.resume();
  }

  /** Stop accepting; let in-flight requests finish for up to graceMs, then cut what is left. */
  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const s of this.sessions) s.shutdown();
    await drain(server, this.sessions, graceMs, destroySession, shutdownIdle, this.proxying);
    this.stopSweep?.();
    this.rateLimit?.close();
  }
}

function destroySession(s: HttpSession): void {
  s.sock.destroy();
}

function shutdownIdle(s: HttpSession): void {
  if (s.idle) s.shutdown();
}
