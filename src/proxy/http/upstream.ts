import { Socket } from 'node:net';
import type { Server, ServerId } from '../../core/server.js';
import type { UpstreamTls } from '../../tls/upstream-tls.js';

/** What an upstream connection reports to the exchange that currently owns it. */
export interface UpstreamOwner {
  onUpstreamConnect(up: UpstreamConn): void;
  onUpstreamData(up: UpstreamConn, chunk: Buffer): void;
  onUpstreamEnd(up: UpstreamConn): void;
  onUpstreamError(up: UpstreamConn, err: Error): void;
  onUpstreamDrain(up: UpstreamConn): void;
}

export interface UpstreamPoolLimits {
  /** Idle connections kept per server. */
  maxIdlePerServer: number;
  /** An idle connection older than this is closed (ms). */
  idleTimeoutMs: number;
  /** Requests per connection before it is retired; 0 = unbounded. */
  maxRequests: number;
}

/**
 * One TCP connection to a server. Its socket handlers are attached once, at creation,
 * and dispatch to whichever exchange owns it now; an idle connection has no owner.
 */
export class UpstreamConn {
  readonly socket: Socket;
  readonly server: Server;
  owner: UpstreamOwner | null = null;
  connected = false;
  /** Requests sent on this connection. */
  uses = 0;
  idleSince = 0;
  /** Set when the connection must not be reused (framing anomaly, close, error). */
  dead = false;
  /** Still counted in its server's open connections. */
  counted = true;
  private readonly home: ServerConnections;

  /** `preface`: bytes sent first (a PROXY protocol header), before TLS when the pool has `tls`. */
  constructor(server: Server, home: ServerConnections, owner: UpstreamOwner, preface?: Buffer) {
    this.server = server;
    this.home = home;
    this.owner = owner;
    const tls = home.tls;
    const sock = tls === undefined ? new Socket({ allowHalfOpen: false }) : tls.connect(server.host, server.port, preface);
    this.socket = sock;
    sock.setNoDelay(true);
    sock.on(tls === undefined ? 'connect' : 'secureConnect', this.onConnect);
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('error', this.onError);
    sock.on('close', this.onClose);
    sock.on('drain', this.onDrain);
    home.created();
    if (tls === undefined) {
      sock.connect({ host: server.host, port: server.port });
      if (preface !== undefined) sock.write(preface);
    }
  }

  private readonly onConnect = (): void => {
    this.connected = true;
    this.owner?.onUpstreamConnect(this);
  };
  private readonly onData = (chunk: Buffer): void => {
    const o = this.owner;
    if (o !== null) o.onUpstreamData(this, chunk);
    else this.destroy(); // bytes from an idle connection: not HTTP we asked for
  };
  private readonly onEnd = (): void => {
    this.dead = true;
    const o = this.owner;
    if (o !== null) o.onUpstreamEnd(this);
    else this.destroy();
  };
  private readonly onError = (err: Error): void => {
    this.dead = true;
    const o = this.owner;
    if (o !== null) o.onUpstreamError(this, err);
  };
  private readonly onClose = (): void => {
    this.dead = true;
    this.home.forget(this);
    const o = this.owner;
    if (o !== null) o.onUpstreamError(this, new Error('upstream connection closed'));
  };
  private readonly onDrain = (): void => {
    this.owner?.onUpstreamDrain(this);
  };

  destroy(): void {
    this.dead = true;
    this.owner = null;
    this.home.forget(this);
    this.socket.destroy();
  }

  /** Give the connection back for reuse, or close it if it may not be reused. */
  release(): void {
    this.owner = null;
    if (this.dead || this.socket.destroyed) {
      this.destroy();
      return;
    }
    this.home.putIdle(this);
  }
}

/** The connections of one server: an idle stack (most recently used first) and a count. */
export class ServerConnections {
  readonly idle: UpstreamConn[] = [];
  /** Open connections, idle or busy. */
  open = 0;
  /** Set when the server left its pool or moved (reload): connections given back are closed, not kept. */
  retired = false;
  /** `tls`: the pool's TLS toward its servers (`tls:` on the pool); undefined = plain TCP. */
  constructor(readonly limits: UpstreamPoolLimits, readonly tls?: UpstreamTls) {}

  take(now: number): UpstreamConn | undefined {
    const idle = this.idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (c.dead || c.socket.destroyed || now - c.idleSince > this.limits.idleTimeoutMs) {
        c.destroy();
        continue;
      }
      return c;
    }
    return undefined;
  }

  putIdle(c: UpstreamConn): void {
    const lim = this.limits;
    if (this.retired || this.idle.length >= lim.maxIdlePerServer || (lim.maxRequests > 0 && c.uses >= lim.maxRequests)) {
      c.destroy();
      return;
    }
    c.idleSince = performance.now();
    this.idle.push(c);
  }

  created(): void {
    this.open++;
  }

  /** Called once per connection when it closes or is destroyed. */
  forget(c: UpstreamConn): void {
    if (!c.counted) return;
    c.counted = false;
    this.open--;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Close idle connections past their idle timeout. */
  sweep(now: number): void {
    const idle = this.idle;
    for (let i = idle.length - 1; i >= 0; i--) {
      const c = idle[i]!;
      if (now - c.idleSince > this.limits.idleTimeoutMs) c.destroy();
    }
  }

  closeAll(): void {
    for (const c of [...this.idle]) c.destroy();
  }
}

/** Upstream connections of every server a listener talks to, keyed by server id. */
export class UpstreamConnections {
  private readonly byServer = new Map<ServerId, ServerConnections>();

  of(id: ServerId, limits: UpstreamPoolLimits, tls?: UpstreamTls): ServerConnections {
    let sc = this.byServer.get(id);
    if (sc === undefined) {
      sc = new ServerConnections(limits, tls);
      this.byServer.set(id, sc);
    }
    return sc;
  }

  sweep(now: number): void {
    for (const sc of this.byServer.values()) sc.sweep(now);
  }

  /** Close the idle connections to a server and forget them; busy ones close when given back. */
  retire(id: ServerId): void {
    const sc = this.byServer.get(id);
    if (sc === undefined) return;
    this.byServer.delete(id);
    sc.retired = true;
    sc.closeAll();
  }

  closeAll(): void {
    for (const sc of this.byServer.values()) sc.closeAll();
  }
}
