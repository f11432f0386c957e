import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { Server, ServerId } from '../../core/server.js';
import { giveReadBuffer, takeReadBuffer } from '../../net/read-buffers.js';
import type { UpstreamTls } from '../../tls/upstream-tls.js';

/** What an upstream connection reports to the exchange that currently owns it. */
export interface UpstreamOwner {
  onUpstreamConnect(up: UpstreamConn): void;
  /**
   * Bytes from the server. When `up.borrowed`, `chunk` is a view of the connection's read buffer,
   * which the next read overwrites: whatever keeps it past this call must copy it, and a socket
   * it is written to must be named with `up.writingTo(socket)` (a writable whose `writableLength`
   * says when nothing of it is held any more: a net.Socket or TLSSocket, not any stream).
   */
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
  /**
   * Bytes of the buffer a connection reads the server's bytes into, reused for every read
   * (`keepAlive.readBuffer`); 0 = a new buffer per read (Node's own). Not used toward TLS servers.
   */
  readBuffer: number;
}

/**
 * One TCP connection to a server. Its socket handlers are attached once, at creation,
 * and dispatch to whichever exchange owns it now; an idle connection has no owner.
 *
 * A plain TCP connection (with `readBuffer` > 0) reads into one buffer of its own (Node's
 * `onread`) rather than a new one per read: a stream socket's every read allocates 64 KiB and
 * copies the bytes into a fresh buffer that lives until the next collection, which on large
 * bodies is most of the collector's work. The owner gets views of that buffer (`borrowed`); when a
 * write it made from one is still pending as the chunk's call returns (`writingTo`), the buffer is
 * left to that write and the connection takes another for its next reads, so bytes under a
 * write are never overwritten. A buffer goes back to the spares (src/net/read-buffers.ts) only
 * when the connection closes with no write holding it.
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
  /** The chunks given to the owner are views of `rbuf`, valid until the next read. */
  readonly borrowed: boolean;
  /** The buffer the next read goes into (borrowed connections). */
  private rbuf: Buffer | undefined;
  /** Inside onRead: the owner has the chunk. */
  private reading = false;
  /** Where the owner wrote the chunk it has (writingTo). */
  private sink: { readonly writableLength: number; readonly destroyed: boolean } | undefined = undefined;
  private readonly home: ServerConnections;

  /** `preface`: bytes sent first (a PROXY protocol header), before TLS when the pool has `tls`. */
  constructor(server: Server, home: ServerConnections, owner: UpstreamOwner, preface?: Buffer) {
    this.server = server;
    this.home = home;
    this.owner = owner;
    const tls = home.tls;
    const size = home.limits.readBuffer;
    this.borrowed = tls === undefined && size > 0;
    this.rbuf = this.borrowed ? takeReadBuffer(size) : undefined;
    const sock =
      tls !== undefined
        ? tls.connect(server.host, server.port, preface)
        : this.borrowed
          ? new Socket(readOpts(this.nextBuffer, this.onRead))
          : new Socket({ allowHalfOpen: false });
    this.socket = sock;
    sock.setNoDelay(true);
    sock.on(tls === undefined ? 'connect' : 'secureConnect', this.onConnect);
    if (!this.borrowed) sock.on('data', this.onData);
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
  /** `n` bytes arrived in the read buffer (borrowed connections). */
  private readonly onRead = (n: number, buf: Buffer): boolean => {
    const o = this.owner;
    this.reading = true;
    if (o !== null) o.onUpstreamData(this, buf.subarray(0, n));
    else this.destroy(); // bytes from an idle connection: not HTTP we asked for
    this.reading = false;
    const w = this.sink;
    if (w !== undefined) {
      this.sink = undefined;
      // A write still holds bytes (perhaps of this buffer; a destroyed socket's write may too):
      // the next reads go into another buffer, this one is left to the write, then the collector.
      if (w.writableLength > 0 || w.destroyed) this.rbuf = undefined;
    }
    if (this.dead) {
      this.giveBack();
      return false;
    }
    return true;
  };

  /** Node asks after each read where the next one goes. */
  private readonly nextBuffer = (): Buffer => {
    // After destroy() there is no next read: undefined keeps Node's last buffer and allocates nothing.
    if (this.rbuf === undefined && !this.dead) this.rbuf = takeReadBuffer(this.home.limits.readBuffer);
    return this.rbuf as Buffer;
  };

  /**
   * The owner wrote bytes of the chunk it is given to `w` (a client socket): when the chunk's
   * call returns, the buffer goes with the write if `w` still holds anything (`writableLength`).
   */
  writingTo(w: { readonly writableLength: number; readonly destroyed: boolean }): void {
    this.sink = w;
  }

  private giveBack(): void {
    const b = this.rbuf;
    if (b !== undefined && this.borrowed && !this.reading) {
      this.rbuf = undefined;
      giveReadBuffer(b);
    }
  }

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
    // No read comes after this; while a chunk's call is running, the buffer is given back (or
    // left to a write that holds it) when the call returns (onRead).
    this.giveBack();
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

/** A Socket's options with `onread` (Node's Socket takes it; its type declares it only for connect()). */
function readOpts(buffer: () => Buffer, callback: (n: number, buf: Buffer) => boolean): SocketConstructorOpts {
  const onread = { buffer, callback } as unknown as OnReadOpts;
  return { allowHalfOpen: false, onread } as SocketConstructorOpts;
}
