import { connect, Socket } from 'node:net';
import { Outcome } from '../../core/outcome.js';
import type { Server, ServerId } from '../../core/server.js';
import { parseClientHello, parseServerHello } from '../../tls/hello.js';
import { encodeProxyHeader, type ProxyInfo } from '../../net/proxy-protocol.js';
import { refreshClock } from '../../net/deadlines.js';
import { UpstreamAttempt, type AttemptOwner, type ReleaseStats } from '../upstream-attempt.js';
import type { TcpListenerRuntime, TcpRoute } from './tcp-runtime.js';
import type { TcpRecord } from '../../observability/records.js';
import { giveReadBuffer, takeReadBuffer } from '../../net/read-buffers.js';
import { liveSlot, type LiveMember } from '../../net/live-set.js';

const enum St {
  /** Reading the ClientHello (inspect: tls). */
  Inspect,
  /** A server was picked; its connection is being opened. */
  Connecting,
  /** Bytes flow both ways. */
  Open,
  Closed,
}

const enum Dl {
  None,
  Inspect,
  /** Waiting in the pool's queue (`queue.timeout`). */
  Queue,
  Connect,
  Idle,
}

/** Client bytes held while the server connection opens; above this the client is paused. */
const PENDING_MAX = 256 * 1024;
/**
 * The idle deadline's mark for "bytes moved": a chunk stores it instead of reading the clock, and
 * the listener's next sweep (which reads the clock once for all connections) counts the idle
 * deadline from its own time. Below any time, so the sweep always hands it to onDeadline.
 */
const TOUCHED = -1;
/** Queued after a write the client socket could not take at once: its callback says that write is done. */
const EMPTY = Buffer.alloc(0);

/** One row of the binding table: a client connection and the server it is bound to. */
export interface TcpBinding {
  readonly listener: string;
  /** Client address and port (from the PROXY header when the listener accepts one). */
  readonly client: string;
  readonly pool: string;
  readonly server: string;
  readonly serverAddress: string;
  /** TLS server name from the ClientHello (inspect: tls). */
  readonly sni: string | undefined;
  /** Bytes from the client to the server, and back. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Milliseconds since the client connected. */
  readonly ageMs: number;
  readonly state: 'inspecting' | 'queued' | 'connecting' | 'open';
}

/**
 * One client connection of a `tcp` listener, bound to one server from connect to close
 * (the binding table's row). Client bytes that arrive before the server connection is open
 * are held and sent first. The server comes from the upstream attempt (upstream-attempt.ts:
 * pin, pick, the pool's queue, a failed connect retried on another server since nothing was
 * sent yet); a connection that was established is never retried. Each direction is closed on
 * its own (half-close): the end of one side's stream is passed to the other with `end()`.
 *
 * The server's bytes are read into one buffer per connection (`relayBuffer`, Node's `onread`) and
 * written to the client from it: nothing is allocated per read (a stream's reads each allocate a
 * buffer that lives until the next garbage collection, which on a bulk relay means collector
 * work and freshly faulted memory for every chunk). A chunk the client socket cannot take at once
 * stays referenced by the pending write, so the server side stops reading until that write is
 * done (onClientWritten); the buffer is never overwritten under a write.
 */
export class TcpConnection implements TcpRecord, AttemptOwner, ReleaseStats, LiveMember {
  /** Its place in the listener's live connections. */
  [liveSlot] = -1;
  readonly sock: Socket;
  readonly lst: TcpListenerRuntime;
  private readonly info: ProxyInfo;
  private readonly startedAt: number;
  private st: St;
  private up: Socket | undefined = undefined;
  private routeRef: TcpRoute | undefined = undefined;
  /** Pick, queue, retry and release of this connection's server. */
  private readonly attempt: UpstreamAttempt;
  private pending: Buffer[] = [];
  /** The buffer the server side reads into (relayBuffer > 0 and a plain TCP server); undefined otherwise. */
  private relay: Buffer | undefined = undefined;
  /** The server side stopped reading until the client socket has written what it was given. */
  private upHeld = false;
  /** The last view of `relay` written to the client (reused while reads have the same length). */
  private view: Buffer | undefined = undefined;
  private viewOf: Buffer | undefined = undefined;
  private pendingBytes = 0;
  private hello: Buffer | undefined = undefined;
  /** The client's offered session id while the server's answer is awaited (persistence). */
  private offeredId = '';
  private serverHello: Buffer | undefined = undefined;
  private clientEnded = false;
  private upEnded = false;
  private connectStartedAt = 0;
  /** ms from the start of the last connect to its success; 0 until connected. */
  private connectMs = 0;
  deadline = 0;
  private dl: Dl = Dl.None;
  bytesIn = 0;
  bytesOut = 0;
  sni: string | undefined = undefined;
  /** How the connection failed; undefined while nothing failed. */
  outcome: Outcome | undefined = undefined;
  durationMs = 0;
  /** A server's status, for the release (there is none at L4). */
  readonly status = 0;

  constructor(client: Socket, lst: TcpListenerRuntime, info: ProxyInfo) {
    this.sock = client;
    this.lst = lst;
    this.info = info;
    this.startedAt = Date.now();
    this.attempt = new UpstreamAttempt(this);
    client.setNoDelay(true);
    client.on('data', this.onClientData);
    client.on('end', this.onClientEnd);
    client.on('error', this.onClientError);
    client.on('close', this.onClientClose);
    client.on('drain', this.onClientDrain);
    if (lst.inspectTls) {
      this.st = St.Inspect;
      this.hello = Buffer.alloc(0);
      this.setDeadline(Dl.Inspect, lst.inspectTimeoutMs);
    } else {
      this.st = St.Connecting;
      this.routeBy(undefined);
    }
  }

  /** Closed (both sockets ended or destroyed, the binding released). */
  get closed(): boolean {
    return this.st === St.Closed;
  }

  // ---- record fields ----
  /** The client's address and port (read from the socket when first asked for, while it is open). */
  get clientAddress(): string {
    return this.info.sourceAddress;
  }
  get clientPort(): number {
    return this.info.sourcePort;
  }
  get listener(): string {
    return this.lst.name;
  }
  get route(): string {
    return this.routeRef?.name ?? '';
  }
  get pool(): string {
    return this.routeRef?.pool.pool.name ?? '';
  }
  get server(): string {
    return this.attempt.server?.name ?? '';
  }
  get tries(): number {
    return this.attempt.tries;
  }
  get error(): string {
    return this.outcome === undefined ? '' : this.outcome.text;
  }
  /** Time to the server connection (the release's latency), once open. */
  get latencyMs(): number | undefined {
    return this.connectMs > 0 ? this.connectMs : undefined;
  }

  /** This connection as a row of the binding table. */
  binding(): TcpBinding {
    const s = this.attempt.server;
    const client = this.clientAddress.includes(':') ? `[${this.clientAddress}]:${this.clientPort}` : `${this.clientAddress}:${this.clientPort}`;
    return {
      listener: this.lst.name,
      client,
      pool: this.pool,
      server: this.server,
      serverAddress: s === undefined ? '' : s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`,
      sni: this.sni,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      ageMs: Date.now() - this.startedAt,
      state: this.st === St.Inspect ? 'inspecting' : this.attempt.queued ? 'queued' : this.st === St.Connecting ? 'connecting' : 'open',
    };
  }

  /**
   * Deadlines count from the time now, not from the coarse clock's last tick: after a stall of the
   * process (CPU starvation between the tick and this event), a deadline counted from the stale
   * tick would be early by the stall (an idle timeout of 300 ms closing after 250). A chunk only
   * marks the idle deadline TOUCHED; the sweep after it counts from its own time, now too.
   */
  private setDeadline(kind: Dl, ms: number): void {
    this.dl = kind;
    this.deadline = ms > 0 ? refreshClock() + ms : 0;
  }

  // ======================================================================
  // client side
  // ======================================================================

  private readonly onClientData = (chunk: Buffer): void => {
    switch (this.st) {
      case St.Open: {
        this.bytesIn += chunk.length;
        if (!this.up!.write(chunk)) this.sock.pause();
        if (this.dl === Dl.Idle) this.deadline = TOUCHED;
        return;
      }
      case St.Connecting:
        this.hold(chunk);
        return;
      case St.Inspect:
        this.inspect(chunk);
        return;
      default:
        return;
    }
  };

  private hold(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > PENDING_MAX) this.sock.pause();
  }

  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    if (this.st === St.Open) endOrClose(this.up!, this.upEnded);
    else if (this.st === St.Inspect) this.reject(Outcome.of('bad-client-hello', 'client closed before its ClientHello'));
    // Connecting: the end is passed on once the server connection is open.
  };

  private readonly onClientError = (): void => {
    // 'close' follows and does the cleanup.
  };

  private readonly onClientClose = (hadError: boolean): void => {
    if (this.st === St.Closed) return;
    if (hadError) this.outcome ??= Outcome.of('client-reset');
    // Whatever the server still sends has no reader any more.
    this.close();
  };

  private readonly onClientDrain = (): void => {
    // With a relay buffer, reading resumes when the last write is done (onClientWritten).
    if (this.relay === undefined) this.up?.resume();
  };

  /** A write from the relay buffer to the client is done: when none is left, the server side may read again. */
  private readonly onClientWritten = (): void => {
    if (!this.upHeld || this.sock.writableLength !== 0) return;
    this.upHeld = false;
    this.up?.resume();
  };

  // ======================================================================
  // ClientHello inspection (inspect: tls)
  // ======================================================================

  private inspect(chunk: Buffer): void {
    const buf = this.hello!.length === 0 ? chunk : Buffer.concat([this.hello!, chunk]);
    this.hello = buf;
    const r = parseClientHello(buf, this.lst.inspectMaxBytes);
    if (r.kind === 'more') return;
    if (r.kind === 'error') return this.reject(Outcome.of('bad-client-hello', r.reason));
    this.hello = undefined;
    this.hold(buf);
    this.sni = r.hello.serverName;
    this.offeredId = r.hello.sessionId;
    this.st = St.Connecting;
    this.routeBy(r.hello.serverName);
  }

  /**
   * Refuse the connection (before any server was involved, or when none could be had): nothing
   * is sent, the socket is closed, the refusal counted under the outcome's reason.
   */
  private reject(o: Outcome): void {
    this.outcome = o;
    this.lst.onRejected(o.reason);
    this.close();
  }

  // ======================================================================
  // server side
  // ======================================================================

  private routeBy(serverName: string | undefined): void {
    const routes = this.lst.routes;
    let route: TcpRoute | undefined;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (r.sni === undefined || (serverName !== undefined && r.sni(serverName))) {
        route = r;
        break;
      }
    }
    if (route === undefined) return this.reject(Outcome.of('no-route'));
    this.routeRef = route;
    this.attempt.begin(route.pool, route.hashBySource ? this.clientAddress : undefined, undefined);
    if (route.sessions !== undefined && this.offeredId !== '') {
      const id = route.sessions.get(this.offeredId);
      // Not known here: the shared store is asked; the client's bytes are held meanwhile.
      if (id instanceof Promise) return void id.then(this.onStoredPin);
      this.pin(id);
    }
    this.attempt.run();
  }

  private pin(id: string | undefined): void {
    const pool = this.routeRef!.pool.pool;
    if (id !== undefined && pool.acceptsPinned(id as ServerId)) this.attempt.pin(pool.current.set.byId.get(id as ServerId));
  }

  private readonly onStoredPin = (id: string | undefined): void => {
    // The client may have gone, or a deadline closed the connection, while the store answered.
    if (this.st !== St.Connecting) return;
    this.pin(id);
    this.attempt.run();
  };

  /** Every available server is full: wait in the pool's queue, up to its `queue.timeout`. */
  attemptQueued(): void {
    this.setDeadline(Dl.Queue, this.routeRef!.pool.queueTimeoutMs ?? 0);
  }

  /** No server could be had (none available, the queue full or timed out, every try failed). */
  attemptFailed(o: Outcome): void {
    this.reject(o);
  }

  /** Open the connection to the server the attempt picked. */
  attemptConnect(s: Server): void {
    const route = this.routeRef!;
    const ph = route.pool;
    this.setDeadline(Dl.Connect, ph.connectTimeoutMs);
    this.connectStartedAt = performance.now();
    // The PROXY header goes first, before TLS when the pool talks TLS to its servers.
    const preface = this.lst.sendProxy === false ? undefined : encodeProxyHeader(this.lst.sendProxy, this.info);
    let up: Socket;
    if (route.tls !== undefined) up = route.tls.connect(s.host, s.port, preface);
    else if (this.lst.relayBuffer > 0) {
      // A retried connect keeps the buffer: nothing was read into it.
      this.relay ??= takeReadBuffer(this.lst.relayBuffer);
      up = connect({ host: s.host, port: s.port, allowHalfOpen: true, onread: { buffer: this.relay, callback: this.onUpRead } });
    } else up = new Socket({ allowHalfOpen: true }).connect({ host: s.host, port: s.port });
    this.up = up;
    up.on(route.tls === undefined ? 'connect' : 'secureConnect', this.onUpConnect);
    if (this.relay === undefined) up.on('data', this.onUpData);
    up.on('end', this.onUpEnd);
    up.on('error', this.onUpError);
    up.on('close', this.onUpClose);
    up.on('drain', this.onUpDrain);
    if (route.tls === undefined && preface !== undefined) up.write(preface);
  }

  private readonly onUpConnect = (): void => {
    if (this.st !== St.Connecting) return;
    const up = this.up!;
    up.setNoDelay(true);
    this.st = St.Open;
    this.connectMs = performance.now() - this.connectStartedAt;
    const route = this.routeRef!;
    if (route.sessions !== undefined && this.lst.inspectTls) this.serverHello = Buffer.alloc(0);
    up.cork();
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length; i++) {
      this.bytesIn += pending[i]!.length;
      up.write(pending[i]!);
    }
    this.pendingBytes = 0;
    up.uncork();
    if (this.clientEnded) up.end();
    this.sock.resume();
    this.setDeadline(Dl.Idle, route.pool.idleTimeoutMs);
  };

  private readonly onUpData = (chunk: Buffer): void => {
    if (this.st !== St.Open) return;
    this.bytesOut += chunk.length;
    if (this.serverHello !== undefined) this.learn(chunk);
    if (!this.sock.write(chunk)) this.up!.pause();
    if (this.dl === Dl.Idle) this.deadline = TOUCHED;
  };

  /**
   * `n` bytes of the server's arrived in the relay buffer: written to the client from there. When
   * the client socket could not take them at once, reading stops (false) until it has.
   */
  private readonly onUpRead = (n: number, buf: Buffer): boolean => {
    if (this.st !== St.Open) return false;
    this.bytesOut += n;
    // The view of the read is kept while reads of the same length land in the same buffer (a
    // keep-alive exchange's responses usually are): no view object is made per read.
    let chunk = this.view;
    if (chunk === undefined || chunk.length !== n || this.viewOf !== buf) {
      chunk = buf.subarray(0, n);
      this.view = chunk;
      this.viewOf = buf;
    }
    if (this.serverHello !== undefined) this.learn(chunk);
    const sock = this.sock;
    // No callback: a write the kernel takes at once then schedules nothing (a write callback is
    // a tick and an object per write, even when the write was done synchronously).
    sock.write(chunk);
    if (this.dl === Dl.Idle) this.deadline = TOUCHED;
    if (sock.writableLength === 0) return true;
    // The write waits for the client: an empty write queued after it calls back once it is done
    // (writes complete in order), and the server side reads again then.
    this.upHeld = true;
    sock.write(EMPTY, this.onClientWritten);
    return false;
  };

  /** TLS session-id persistence: remember which server assigned the session id of its ServerHello. */
  private learn(chunk: Buffer): void {
    const buf = this.serverHello!.length === 0 ? chunk : Buffer.concat([this.serverHello!, chunk]);
    const r = parseServerHello(buf, this.lst.inspectMaxBytes);
    if (r.kind === 'more') {
      // A chunk in the relay buffer is overwritten by the next read: what is kept is a copy.
      this.serverHello = buf === chunk ? Buffer.from(chunk) : buf;
      return;
    }
    this.serverHello = undefined;
    if (r.kind === 'error') return;
    const h = r.hello;
    // TLS 1.3 echoes the client's (random) legacy session id and resumes with encrypted tickets:
    // there is nothing to learn. A HelloRetryRequest is not a session either.
    if (h.isRetry || h.version >= 0x0304 || h.sessionId === '') return;
    this.routeRef!.sessions!.set(h.sessionId, this.attempt.server!.id);
  }

  private readonly onUpEnd = (): void => {
    this.upEnded = true;
    if (this.st === St.Open) endOrClose(this.sock, this.clientEnded);
  };

  private readonly onUpError = (err: Error): void => {
    if (this.st === St.Connecting) this.connectFailed(Outcome.ofError('connect-failed', err));
    else this.outcome ??= Outcome.ofError('server-reset', err);
  };

  private readonly onUpClose = (hadError: boolean): void => {
    if (this.st === St.Connecting) return this.connectFailed(Outcome.of('connect-failed', 'closed'));
    if (this.st !== St.Open) return;
    if (hadError || !this.upEnded) {
      // A reset: the client must see it too rather than a clean end.
      this.close();
      return;
    }
    // Both directions of the server connection ended cleanly; the client side finishes on its own.
    if (this.clientEnded) this.close();
  };

  private readonly onUpDrain = (): void => {
    this.sock.resume();
  };

  /** The connect failed or timed out: nothing was sent, so another server may be tried. */
  private connectFailed(o: Outcome): void {
    const up = this.up;
    this.up = undefined;
    if (up !== undefined) discard(up);
    // A retry calls attemptConnect (or attemptFailed, when no other server is left) at once.
    if (this.attempt.retry(o, false, this)) return;
    this.reject(o);
  }

  /** Called by the listener's sweep when `deadline` has passed (TOUCHED always has). */
  onDeadline(): void {
    const kind = this.dl;
    if (kind === Dl.Idle && this.deadline === TOUCHED) {
      // Bytes moved since the last sweep: the idle deadline counts from this sweep, which came
      // after them, so it is never early and at most one sweep late.
      const ms = this.routeRef!.pool.idleTimeoutMs;
      this.deadline = ms > 0 ? refreshClock() + ms : 0;
      return;
    }
    this.deadline = 0;
    this.dl = Dl.None;
    switch (kind) {
      case Dl.Inspect:
        return this.reject(Outcome.of('hello-timeout'));
      case Dl.Queue:
        this.attempt.expireQueue();
        return;
      case Dl.Connect:
        if (this.st === St.Connecting) this.connectFailed(Outcome.of('connect-timeout'));
        return;
      case Dl.Idle:
        this.outcome ??= Outcome.of('idle-timeout');
        return this.close();
      default:
        return;
    }
  }

  /** End the connection (both sockets) and its binding. */
  close(): void {
    if (this.st === St.Closed) return;
    const was = this.st;
    this.st = St.Closed;
    this.deadline = 0;
    this.attempt.abandon();
    this.pending = [];
    this.hello = undefined;
    this.serverHello = undefined;
    const up = this.up;
    this.up = undefined;
    // Both sides ended: each socket was ended already when the other's end arrived (end() again
    // would only build an ERR_STREAM_ALREADY_FINISHED, stack trace and all, per connection).
    const ended = this.upEnded && this.clientEnded;
    if (up !== undefined) {
      if (!ended) up.destroy();
      else if (!up.writableEnded && !up.destroyed) up.end();
    }
    if (!ended) this.sock.destroy();
    else if (!this.sock.writableEnded && !this.sock.destroyed) this.sock.end();
    // The server side reads no more; the buffer is kept for another connection unless a write
    // to the client (ending gracefully) still reads from it.
    const relay = this.relay;
    this.relay = undefined;
    this.view = undefined;
    this.viewOf = undefined;
    if (relay !== undefined && (this.sock.destroyed || this.sock.writableLength === 0)) giveReadBuffer(relay);
    this.attempt.release(was === St.Open, undefined, this);
    this.durationMs = Date.now() - this.startedAt;
    this.lst.onClosed(this);
  }
}

/**
 * The other side ended: pass the end on to `s`. When `s` has ended too (its peer sent its FIN
 * before) and holds no byte not yet handed to the kernel, closing it sends the FIN after what the
 * kernel still has to send, as `end()` would, without the shutdown call and its request first:
 * both directions are done, so nothing is lost and nothing is cut.
 */
function endOrClose(s: Socket, readEnded: boolean): void {
  if (readEnded && s.writableLength === 0) s.destroy();
  else s.end();
}

function discard(s: Socket): void {
  s.removeAllListeners();
  s.on('error', noop);
  s.destroy();
}

function noop(): void {}
