import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { readProxyHeader, socketInfo, type ProxyInfo, type ProxyVersion } from '../proxy-protocol.js';
import { holdClock, refreshClock } from '../http/deadlines.js';
import type { AccessList } from '../access.js';
import { TcpConnection, type TcpBinding, type TcpRecord } from './tcp-connection.js';
import type { TcpListenerRuntime, TcpRoute } from './tcp-runtime.js';

export interface TcpListenerSettings {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly routes: readonly TcpRoute[];
  readonly inspectTls: boolean;
  readonly inspectTimeoutMs: number;
  readonly inspectMaxBytes: number;
  readonly sendProxy: false | ProxyVersion;
  readonly acceptProxy: boolean;
  /** Most client connections at once; 0 = unlimited. */
  readonly maxConnections: number;
  /** Who may connect; undefined admits every address (and checks nothing). */
  readonly access?: AccessList | undefined;
}

export interface TcpObserver {
  connection(listener: string): void;
  rejected(listener: string, reason: string): void;
  /** A connection ended (metrics, access log). */
  connectionDone?(rec: TcpRecord): void;
}

/** Deadlines of L4 connections (connect, idle, ClientHello) are checked this often. */
const SWEEP_MS = 250;

/**
 * A `tcp` listener: each client connection is bound to one server of a pool (chosen by its
 * balancer, or by the ClientHello's server name and session id with `inspect: tls`) until
 * either side closes. The live connections are the binding table (`bindings()`).
 */
export class TcpListener implements TcpListenerRuntime {
  readonly protocol = 'tcp';
  readonly name: string;
  routes: readonly TcpRoute[];
  inspectTls: boolean;
  inspectTimeoutMs: number;
  inspectMaxBytes: number;
  sendProxy: false | ProxyVersion;
  acceptProxy: boolean;
  maxConnections: number;
  access: AccessList | undefined;
  /** Live connections: the binding table. */
  readonly connections = new Set<TcpConnection>();
  /** Connections still reading their PROXY header (acceptProxy). */
  private handshaking = 0;
  private server: NetServer | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private releaseClock: (() => void) | undefined;
  private readonly host: string;
  private port: number;
  private readonly observer: TcpObserver | undefined;

  constructor(settings: TcpListenerSettings, observer?: TcpObserver) {
    this.name = settings.name;
    this.host = settings.host;
    this.port = settings.port;
    this.routes = settings.routes;
    this.inspectTls = settings.inspectTls;
    this.inspectTimeoutMs = settings.inspectTimeoutMs;
    this.inspectMaxBytes = settings.inspectMaxBytes;
    this.sendProxy = settings.sendProxy;
    this.acceptProxy = settings.acceptProxy;
    this.maxConnections = settings.maxConnections;
    this.access = settings.access;
    this.observer = observer;
  }

  /** Apply new settings (reload): new connections use them; live ones keep their server. */
  update(settings: TcpListenerSettings): void {
    this.routes = settings.routes;
    this.inspectTls = settings.inspectTls;
    this.inspectTimeoutMs = settings.inspectTimeoutMs;
    this.inspectMaxBytes = settings.inspectMaxBytes;
    this.sendProxy = settings.sendProxy;
    this.acceptProxy = settings.acceptProxy;
    this.maxConnections = settings.maxConnections;
    this.access = settings.access;
  }

  get address(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  /** The binding table: every live client connection, its server, bytes and age. */
  bindings(): TcpBinding[] {
    const out: TcpBinding[] = [];
    for (const c of this.connections) out.push(c.binding());
    return out;
  }

  onRejected(reason: string): void {
    this.observer?.rejected(this.name, reason);
  }

  onClosed(c: TcpConnection): void {
    this.connections.delete(c);
    this.observer?.connectionDone?.(c);
  }

  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false }, this.accept);
    server.on('error', () => {
      // errors after listen (EMFILE ...) must not take the process down; accept continues
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error): void => reject(err);
      server.once('error', onErr);
      server.listen({ host: this.host, port: this.port, backlog: 4096 }, () => {
        server.off('error', onErr);
        resolve();
      });
    });
    const a = server.address();
    if (a !== null && typeof a === 'object') this.port = a.port;
    this.releaseClock = holdClock();
    this.sweepTimer = setInterval(this.sweep, SWEEP_MS);
    this.sweepTimer.unref();
  }

  private readonly accept = (sock: Socket): void => {
    sock.on('error', noop); // until the connection takes over; never an unhandled 'error'
    if (this.maxConnections > 0 && this.connections.size + this.handshaking >= this.maxConnections) {
      this.observer?.rejected(this.name, 'max-connections');
      sock.destroy();
      return;
    }
    // The access list: the socket's peer, or with acceptProxy the client the PROXY header names.
    if (!this.acceptProxy && this.access !== undefined && !this.access.admits(sock.remoteAddress ?? '')) {
      this.observer?.rejected(this.name, 'access');
      sock.destroy();
      return;
    }
    this.observer?.connection(this.name);
    if (!this.acceptProxy) {
      this.connections.add(new TcpConnection(sock, this, socketInfo(sock)));
      return;
    }
    this.handshaking++;
    readProxyHeader(
      sock,
      this.inspectTimeoutMs,
      (info: ProxyInfo) => {
        this.handshaking--;
        if (this.server === undefined) return void sock.destroy();
        if (this.access !== undefined && !this.access.admits(info.sourceAddress)) {
          this.observer?.rejected(this.name, 'access');
          sock.destroy();
          return;
        }
        this.connections.add(new TcpConnection(sock, this, info));
        sock.resume();
      },
      (reason: string) => {
        this.handshaking--;
        this.observer?.rejected(this.name, reason === 'PROXY header timeout' ? 'timeout' : 'bad-proxy-header');
      },
    );
  };

  private readonly sweep = (): void => {
    const now = refreshClock();
    for (const c of this.connections) {
      if (c.deadline !== 0 && c.deadline <= now) {
        try {
          c.onDeadline();
        } catch {
          c.close();
        }
      }
    }
  };

  /** Stop accepting; connections may finish for up to graceMs, then what is left is cut. */
  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of [...this.connections]) c.close();
    await closed;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.releaseClock?.();
  }
}

function noop(): void {}
