import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { admit, drain, listen, readProxied, sweepDeadlines, type ProxyAcceptor } from '../../net/accept.js';
import { socketInfo, type ProxyInfo, type ProxyVersion } from '../../net/proxy-protocol.js';
import type { AccessList } from '../../net/access.js';
import { TcpConnection, type TcpBinding } from './tcp-connection.js';
import { LiveSet } from '../../net/live-set.js';
import type { TcpObserver, TcpRecord } from '../../observability/records.js';
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
  /** Bytes of the reused buffer each connection reads its server's bytes into; 0 = a new buffer per read. */
  readonly relayBuffer: number;
  /** Who may connect; undefined admits every address (and checks nothing). */
  readonly access?: AccessList | undefined;
}

/** Deadlines of L4 connections (connect, idle, ClientHello) are checked this often. */
const SWEEP_MS = 250;

/**
 * A `tcp` listener: each client connection is bound to one server of a pool (chosen by its
 * balancer, or by the ClientHello's server name and session id with `inspect: tls`) until
 * either side closes. The live connections are the binding table (`bindings()`).
 */
export class TcpListener implements TcpListenerRuntime, ProxyAcceptor {
  readonly protocol = 'tcp';
  readonly name: string;
  // Set by update(), which the constructor calls.
  routes!: readonly TcpRoute[];
  inspectTls!: boolean;
  inspectTimeoutMs!: number;
  inspectMaxBytes!: number;
  sendProxy!: false | ProxyVersion;
  acceptProxy!: boolean;
  maxConnections!: number;
  relayBuffer!: number;
  access!: AccessList | undefined;
  /** Live connections: the binding table. */
  readonly connections = new LiveSet<TcpConnection>();
  /** Connections still reading their PROXY header (acceptProxy). */
  readonly proxying = new Set<Socket>();
  private server: NetServer | undefined;
  private stopSweep: (() => void) | undefined;
  private readonly host: string;
  private port: number;
  private readonly observer: TcpObserver | undefined;

  constructor(settings: TcpListenerSettings, observer?: TcpObserver) {
    this.name = settings.name;
    this.host = settings.host;
    this.port = settings.port;
    this.observer = observer;
    this.update(settings);
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
    this.relayBuffer = settings.relayBuffer;
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

  get accepting(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false }, this.accept);
    this.server = server;
    this.port = await listen(server, this.host, this.port, 4096);
    this.stopSweep = sweepDeadlines(this.connections, SWEEP_MS, closeConnection);
  }

  private readonly accept = (sock: Socket): void => {
    // The access list: the socket's peer, or with acceptProxy the client the PROXY header names.
    const live = this.connections.size + this.proxying.size;
    if (!admit(sock, this.name, this.observer, live, this.maxConnections, this.access, this.acceptProxy)) return;
    if (this.acceptProxy) readProxied(sock, this.inspectTimeoutMs, this);
    else this.open(new TcpConnection(sock, this, socketInfo(sock, this.access === undefined)));
  };

  openProxied(sock: Socket, peer: ProxyInfo): void {
    this.open(new TcpConnection(sock, this, peer));
    sock.resume();
  }

  /**
   * A new connection joins the binding table, unless it was refused already as it was made (no
   * route, no server available): its close came first, so adding it now would keep it there for
   * good, counted against maxConnections.
   */
  private open(c: TcpConnection): void {
    if (!c.closed) this.connections.add(c);
  }

  /** Stop accepting; connections may finish for up to graceMs, then what is left is cut. */
  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await drain(server, this.connections, graceMs, closeConnection, undefined, this.proxying);
    this.stopSweep?.();
  }
}

function closeConnection(c: TcpConnection): void {
  c.close();
}
