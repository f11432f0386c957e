import { Socket } from 'node:net';
import type { Server } from '../../core/server.js';
import { ChunkedScanner, type ChunkSink } from './chunked.js';
import { errorResponse, reasonPhrase } from './error-response.js';
import type { ClientCertInfo } from '../../tls/client-cert.js';
import { CLIENT_CERT, FORBIDDEN_TRAILERS, FORWARDING, HOP_BY_HOP, isIdempotent } from './headers.js';
import { parseRequestHead, type RequestHead } from './parse-request.js';
import { parseResponseHead, responseFraming, type ResponseHead } from './parse-response.js';
import type { HttpListenerRuntime, HttpRoute, PoolHandle } from './listener-runtime.js';
import { normalizeHost, normalizePath } from './normalize.js';
import { UpstreamConn, type ServerConnections, type UpstreamOwner } from './upstream.js';
import { encodeProxyHeader, socketInfo, type ProxyInfo } from '../../net/proxy-protocol.js';
import { clockNow, refreshClock } from '../../net/deadlines.js';
import { Exchange } from './exchange.js';
import { answerHeaders, httpStatus, Outcome, refusal } from '../../core/outcome.js';
import { UpstreamAttempt, type AttemptOwner } from '../upstream-attempt.js';
import { isAnswer, isStreamed, type Answer, type AnswerSink, type HttpPhase, type StreamedAnswer } from './phases.js';
import { liveSlot, type LiveMember } from '../../net/live-set.js';

/** A TE field value names the "trailers" option (`TE: trailers`, `TE: gzip, trailers` ...). */
function acceptsTrailers(v: string): boolean {
  for (const part of v.split(',')) {
    const semi = part.indexOf(';');
    if ((semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase() === 'trailers') return true;
  }
  return false;
}

const enum St {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** A server was picked; waiting for the connection. */
  Connecting,
  /** Request sent or being sent; response awaited or being relayed. */
  Exchange,
  /** After a 101: bytes relayed both ways. */
  Tunnel,
  /** A phase's streamed answer is being sent (a cache hit, a joined fetch). */
  Answer,
  Closed,
}

/** How the response body goes to the client. */
const enum BodyOut {
  /** The server's bytes, unchanged (no body phase). */
  Relay,
  /** The server's bytes, unchanged; body phases see the payload. */
  Observe,
  /** Body phases replace the body: Portico frames it as chunked (HTTP/1.1 client). */
  Chunked,
  /** Body phases replace the body: sent as it comes, the connection closes after (HTTP/1.0 client). */
  Close,
}

const enum BodyMode {
  None,
  Length,
  Chunked,
  Close,
}

const EMPTY: Buffer = Buffer.alloc(0);

/** How long a closing connection may take to flush what is left to send before it is cut (ms). */
const LINGER_MS = 5000;

/**
 * Answers Portico made itself (a redirect, a respond route, an error) that a pipelining client has
 * not read yet; above this, its next buffered request waits until the socket drains.
 */
const MAX_UNREAD_OUTPUT = 256 * 1024;
/**
 * A response body of at most this many bytes that arrives whole with its head goes to the client
 * in the head's write (one `write` of one string, no cork and `writev`); larger bodies are written
 * as the views they arrived in, never copied.
 */
const WHOLE_SMALL_BODY = 2048;

/**
 * One client connection and the exchange in progress on it. HTTP/1.1 keep-alive,
 * one request at a time (pipelined requests wait in the buffer), bodies relayed
 * byte for byte with back-pressure in both directions. Socket handlers are bound
 * once per connection; nothing is allocated per request that can be kept.
 */
export class HttpSession implements UpstreamOwner, AttemptOwner, ChunkSink, AnswerSink, LiveMember {
  /** Its place in the listener's live sessions. */
  [liveSlot] = -1;
  readonly sock: Socket;
  readonly lst: HttpListenerRuntime;
  /** The request in progress on this connection (reset between requests): what phases, routing and observers read. */
  readonly ex: Exchange;
  /** The client connection as a PROXY header names it, when it is not the socket's own. */
  private readonly peer: ProxyInfo | undefined;
  /** sendProxy: this client's own server connection, kept between its requests. */
  private own: UpstreamConn | undefined = undefined;
  private state: St = St.Head;
  /** Unconsumed bytes from the client. */
  private buf: Buffer = EMPTY;
  /** Deadline (clockNow ms) and what it guards; 0 = none. */
  deadline = 0;
  private deadlineKind: 'idle' | 'header' | 'body' | 'queue' | 'connect' | 'response' | 'tunnel' | 'linger' = 'idle';
  private requestsOnConn = 0;
  private clientEnded = false;
  private clientPaused = false;
  private upPaused = false;
  /** tryHead is on the stack: a request answered at once loops there for the next, never recursing. */
  private parsing = false;
  /** An answered request left a further one in the buffer while tryHead was on the stack. */
  private parseAgain = false;
  /** The next buffered request waits for the client to read what was answered (MAX_UNREAD_OUTPUT). */
  private headWaits = false;
  /** The client certificate headers for the servers ('' without clientAuth). */
  private readonly clientCertHead: string;

  // ---- the transport of the current exchange: framing, the server connection ----
  /** The request target toward the server: origin-form, normalised path. */
  private serverTarget = '';
  private headStr = '';
  /** Waiting for a request phase's promise: the list and the index of the phase that waits. */
  private waitList: readonly HttpPhase[] | undefined = undefined;
  /** The streamed answer being sent (state Answer), and how its body is framed. */
  private streamed: StreamedAnswer | undefined = undefined;
  private streamChunked = false;
  private waitAt = 0;
  private waitBeforeRoute = false;
  /** Pick, queue, retries and release of the current request's server (one per connection, begun per request). */
  private readonly attempt: UpstreamAttempt;
  private up: UpstreamConn | undefined = undefined;
  /** The server connection of this try was an idle one, reused. */
  private reusedConn = false;
  private reqMode: BodyMode = BodyMode.None;
  private reqLeft = 0;
  private reqBodyBytes = 0;
  private reqDone = false;
  /** Made on the first chunked request body (most connections never see one): see reqScanner. */
  private reqScan: ChunkedScanner | undefined = undefined;
  private resBuf: Buffer = EMPTY;
  private resMode: BodyMode = BodyMode.None;
  private resLeft = 0;
  private resDone = false;
  /** Made on the first chunked response body: see resScanner. */
  private resScan: ChunkedScanner | undefined = undefined;
  private bodyOut: BodyOut = BodyOut.Relay;
  /** A replaced body's write found the client's buffer full. */
  private outFull = false;
  private sentToClient = false;
  private keepClient = true;
  /** The listener is stopping (shutdown()): the request in progress, or the first one to come, is the last. */
  private draining = false;
  private upReusable = true;
  private upstreamKeepAlive = true;
  /**
   * The client socket is a net.Socket (TLSSocket included): a write either hands the bytes to the
   * kernel (or to OpenSSL, which copies them) or shows in `writableLength`, so a view of a server
   * connection's read buffer may be written to it as it is. An h2 stream's socket hands its chunks
   * on to nghttp2, which sends them later: it is given copies.
   */
  private readonly direct: boolean;
  /** The server chunk being handled is a view of its connection's read buffer (see UpstreamConn). */
  private viewIn = false;

  /**
   * `peer`: the client connection when it is not the socket's own (a PROXY protocol header named
   * it, or the socket is an HTTP/2 stream). `cert`: the client certificate of a TLS connection
   * whose listener asks for one.
   */
  constructor(sock: Socket, lst: HttpListenerRuntime, peer?: ProxyInfo, cert?: ClientCertInfo) {
    this.sock = sock;
    this.lst = lst;
    this.peer = peer;
    this.clientCertHead = cert?.head ?? '';
    this.direct = sock instanceof Socket;
    const servername = (sock as { servername?: unknown }).servername;
    const sni = typeof servername === 'string' && servername !== '' ? servername.toLowerCase() : undefined;
    this.ex = new Exchange(lst, peer?.sourceAddress ?? sock.remoteAddress ?? '', sni, cert?.state, this.clientCertHead);
    this.attempt = new UpstreamAttempt(this);
    // No setNoDelay here: the listener's server sets TCP_NODELAY as it accepts (net.Server's
    // noDelay), and a TLS socket is the same descriptor; on a TLSSocket the call was a
    // setsockopt system call per connection.
    sock.on('data', this.onClientData);
    sock.on('end', this.onClientEnd);
    sock.on('error', this.onClientError);
    sock.on('close', this.onClientClose);
    sock.on('drain', this.onClientDrain);
    this.setDeadline('header', lst.limits.headerTimeoutMs);
  }

  private get reqScanner(): ChunkedScanner {
    return (this.reqScan ??= new ChunkedScanner({ dropTrailers: FORBIDDEN_TRAILERS }));
  }

  private get resScanner(): ChunkedScanner {
    return (this.resScan ??= new ChunkedScanner());
  }

  /** True while no request is in progress (used by graceful shutdown). */
  get idle(): boolean {
    return this.state === St.Head && this.buf.length === 0;
  }

  private setDeadline(kind: HttpSession['deadlineKind'], ms: number): void {
    this.deadlineKind = kind;
    // From the time now, not the coarse clock's last tick: after a stall of the process (CPU
    // starvation between the tick and this event), a deadline counted from the stale tick would
    // already be past at the next sweep (a connect timeout after a few milliseconds).
    this.deadline = ms > 0 ? refreshClock() + ms : 0;
  }

  // ======================================================================
  // client side
  // ======================================================================

  private readonly onClientData = (chunk: Buffer): void => {
    switch (this.state) {
      case St.Head:
        this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
        if (this.deadlineKind === 'idle') this.setDeadline('header', this.lst.limits.headerTimeoutMs);
        this.tryHead();
        return;
      case St.Connecting:
        this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
        if (this.buf.length > 65536) this.pauseClient();
        return;
      case St.Exchange:
        this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
        if (!this.reqDone) this.pumpRequestBody();
        else this.pauseClient(); // a pipelined request: it waits until this exchange ends
        return;
      case St.Answer:
        this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
        this.pauseClient();
        return;
      case St.Tunnel: {
        this.ex.bytesIn += chunk.length;
        const up = this.up;
        if (up !== undefined && !up.socket.write(chunk)) this.pauseClient();
        this.setDeadline('tunnel', this.ex.poolHandle?.idleTimeoutMs ?? 0);
        return;
      }
      default:
        return;
    }
  };

  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    if (this.state === St.Tunnel) {
      this.up?.socket.end();
      return;
    }
    if (this.state === St.Head) {
      if (this.buf.length > 0) this.refuse(refusal(400, 'incomplete request head'));
      else this.sock.end();
      return;
    }
    if (this.state === St.Answer) return; // the answer goes on; the connection closes after it
    // The whole request came, then the client closed its sending side (`nc -N`, a client that
    // shuts down writing once it has sent): it still reads, so it is answered and the connection
    // closes after the answer (RFC 9112 §9.6), as HAProxy and NGINX do. Sent to the server as it
    // is: the server is not told of the half-close.
    if (this.requestComplete()) {
      this.keepClient = false;
      return;
    }
    // The client closed its side before its request was complete: it has abandoned it (as
    // HAProxy's abortonclose): the server request is cancelled rather than left waiting for a
    // body that will not come.
    this.abort(Outcome.of('client-closed-body'));
  };

  /** The request in progress has come whole: its body relayed, or (still connecting) in the buffer. */
  private requestComplete(): boolean {
    if (this.reqDone) return true;
    return this.state === St.Connecting && this.reqMode === BodyMode.Length && this.buf.length >= this.reqLeft;
  }

  private readonly onClientError = (): void => {
    // 'close' follows and does the cleanup.
  };

  private readonly onClientClose = (): void => {
    const was = this.state;
    this.state = St.Closed;
    this.deadline = 0;
    this.lst.sessions.delete(this);
    if (this.own !== undefined) {
      this.own.destroy();
      this.own = undefined;
    }
    if (was === St.Answer) {
      const s = this.streamed;
      this.streamed = undefined;
      s?.cancel();
      this.ex.outcome ??= Outcome.of('client-aborted');
      this.finishRecord();
      return;
    }
    if (was === St.Connecting || was === St.Exchange || was === St.Tunnel) {
      if (was !== St.Tunnel) this.ex.outcome ??= Outcome.of('client-aborted');
      this.dropUpstream();
      if (this.ex.status === 0) this.ex.status = 499;
      this.finishRecord();
    }
  };

  private readonly onClientDrain = (): void => {
    if (this.state === St.Answer) {
      this.streamed?.resume();
      return;
    }
    if (this.headWaits) {
      this.headWaits = false;
      if (this.state === St.Head) this.nextBuffered();
      return;
    }
    if (this.upPaused) {
      this.upPaused = false;
      this.up?.socket.resume();
    }
  };

  private pauseClient(): void {
    if (!this.clientPaused) {
      this.clientPaused = true;
      this.sock.pause();
    }
  }

  private resumeClient(): void {
    if (this.clientPaused) {
      this.clientPaused = false;
      this.sock.resume();
    }
  }

  /** Parse a request head from the buffer and start its exchange. */
  private tryHead(): void {
    if (this.headWaits) return;
    if (this.parsing) {
      // Called back from an answer sent synchronously (nextRequest): the loop below goes on.
      this.parseAgain = true;
      return;
    }
    const lim = this.lst.limits;
    this.parsing = true;
    try {
      do {
        this.parseAgain = false;
        const r = parseRequestHead(this.buf, lim);
        if (r === null) return;
        if (!r.ok) {
          this.refuse(refusal(r.status, r.reason));
          return;
        }
        this.startExchange(r);
      } while (this.parseAgain && this.state === St.Head);
    } finally {
      this.parsing = false;
    }
  }

  private startExchange(r: RequestHead): void {
    const lst = this.lst;
    const lim = lst.limits;
    this.ex.head = r;
    this.ex.startedAt = performance.now();
    this.requestsOnConn++;
    this.ex.method = r.method;
    this.ex.target = r.target;
    this.ex.lnames = r.lnames;
    this.ex.values = r.values;
    this.buf = r.headEnd === this.buf.length ? EMPTY : this.buf.subarray(r.headEnd);
    this.ex.bytesIn = r.headEnd;
    this.ex.bytesOut = 0;
    this.keepClient =
      r.keepAlive && !this.clientEnded && !this.draining && (lim.maxRequestsPerConnection === 0 || this.requestsOnConn < lim.maxRequestsPerConnection);

    // Target: origin-form (or absolute-form, turned into origin-form for the server).
    let t = r.target;
    if (t.charCodeAt(0) !== 47 /* / */) {
      if (r.method === 'CONNECT') return this.refuse(Outcome.of('method-not-allowed', 'CONNECT is not supported'));
      if (t === '*') {
        if (r.method !== 'OPTIONS') return this.refuse(refusal(400, 'asterisk-form is for OPTIONS'));
      } else {
        t = r.path; // absolute-form, checked by the parser: its origin-form, '/' for an empty path
      }
    }
    const q = t.indexOf('?');
    const rawPath = q < 0 ? t : t.slice(0, q);
    this.ex.query = q < 0 ? '' : t.slice(q + 1);
    // Routes see the normalised path and the server gets it: the two cannot disagree.
    const path = t === '*' ? rawPath : normalizePath(rawPath);
    if (path === undefined) return this.refuse(refusal(400, 'ambiguous path encoding'));
    if (path !== rawPath) t = q < 0 ? path : path + t.slice(q);
    this.serverTarget = t;
    this.ex.path = path;
    this.ex.host = normalizeHost(r.host ?? '');

    // Body framing and limits.
    if (r.chunked) {
      this.reqMode = BodyMode.Chunked;
      this.reqScanner.reset();
    } else if (r.contentLength > 0) {
      if (lim.maxBodyBytes > 0 && r.contentLength > lim.maxBodyBytes) return this.refuse(Outcome.of('body-too-large'));
      this.reqMode = BodyMode.Length;
      this.reqLeft = r.contentLength;
    } else {
      this.reqMode = BodyMode.None;
    }
    this.reqDone = this.reqMode === BodyMode.None;
    this.reqBodyBytes = 0;

    // Phases before routing (the rate limit), then the route and its phases.
    const before = lst.phases.request;
    if (before.length > 0 && !this.runRequestPhases(before, 0, true)) return;
    this.routeRequest();
  }

  /** The first matching route takes the request; its phases run, then it goes to its pool. */
  private routeRequest(): void {
    const ex = this.ex;
    const routes = this.lst.routes;
    let route: HttpRoute | undefined;
    for (let i = 0; i < routes.length; i++) {
      if (routes[i]!.match(ex)) {
        route = routes[i];
        break;
      }
    }
    ex.compiledRoute = route;
    if (route === undefined) {
      return this.answerFailure(Outcome.of('no-route'));
    }
    ex.poolHandle = route.pool;
    const phases = route.phases.request;
    if (phases.length > 0 && !this.runRequestPhases(phases, 0, false)) return;
    this.forward();
  }

  /** Every request phase let the request through: build its head for the server and pick one. */
  private forward(): void {
    const ph = this.ex.poolHandle;
    if (ph === undefined) {
      // compileRoutes gives a route without a pool a phase that answers; this is a bug if reached.
      return this.answerFailure(Outcome.of('phase-failed', 'route has neither a pool nor an answer'));
    }
    const ex = this.ex;
    const route = ex.compiledRoute!;
    this.headStr = this.buildRequestHead(this.serverTarget, ex.head!, route);
    this.state = St.Connecting;
    const attempt = this.attempt;
    attempt.begin(route.upstream!, ph.hashKey === undefined ? undefined : ph.hashKey(ex), ex.path, route.priority);
    attempt.pin(ex.pinned);
    attempt.run();
  }

  /**
   * Run `phases[from..]`'s onRequest in order. True when all let the request through; false when
   * one answered (sent) or made the exchange wait (it resumes in onPhaseSettled). `beforeRoute`:
   * the listener's phases (routing follows them), else the route's (forwarding follows).
   */
  private runRequestPhases(phases: readonly HttpPhase[], from: number, beforeRoute: boolean): boolean {
    const ex = this.ex;
    for (let i = from; i < phases.length; i++) {
      const d = phases[i]!.onRequest!(ex);
      if (d === undefined) continue;
      if (isAnswer(d)) {
        this.sendPhaseAnswer(d);
        return false;
      }
      // Wait: the client's bytes are buffered (not parsed as a next request) and no deadline runs.
      this.waitList = phases;
      this.waitAt = i;
      this.waitBeforeRoute = beforeRoute;
      this.state = St.Connecting;
      this.deadline = 0;
      d.then(this.onPhaseSettled, this.onPhaseFailed);
      return false;
    }
    return true;
  }

  private readonly onPhaseSettled = (value: unknown): void => {
    const phases = this.waitList;
    if (phases === undefined || this.state !== St.Connecting) return;
    this.waitList = undefined;
    const at = this.waitAt;
    const resumed = phases[at]!.onResume?.(this.ex, value);
    if (resumed !== undefined) return this.sendPhaseAnswer(resumed);
    const beforeRoute = this.waitBeforeRoute;
    if (!this.runRequestPhases(phases, at + 1, beforeRoute)) return;
    if (beforeRoute) this.routeRequest();
    else this.forward();
  };

  private readonly onPhaseFailed = (err: unknown): void => {
    const phases = this.waitList;
    if (phases === undefined || this.state !== St.Connecting) return;
    this.waitList = undefined;
    this.keepClient = false;
    this.answerFailure(Outcome.of('phase-failed', phases[this.waitAt]!.name + ': ' + (err instanceof Error ? err.message : String(err))));
  };

  /** A phase answers instead of the server: a rendered response (redirect, respond) or an error page. */
  private sendPhaseAnswer(a: Answer): void {
    const ex = this.ex;
    if (isStreamed(a)) {
      const wrap = ex.compiledRoute?.phases.streamedAnswer;
      let s = a;
      if (wrap !== undefined) for (let i = 0; i < wrap.length; i++) s = wrap[i]!.onStreamedAnswer!(ex, s);
      return this.sendStreamed(s);
    }
    if (a.render === undefined) {
      const o = a.outcome;
      ex.outcome = o;
      if (a.rejected === true) this.lst.onRejected(o.reason);
      return this.respondError(httpStatus(o, this.lst.noRouteStatus), a.headers);
    }
    // An HTTP/1.0 client is answered with Connection: close (the answers are built for HTTP/1.1).
    const keep = this.keepClient && this.reqMode === BodyMode.None && ex.head!.minor === 1;
    const text = a.render(ex, this.lst.proto, keep);
    ex.status = a.status;
    ex.firstByteMs = performance.now() - ex.startedAt;
    this.sendAnswer(text, keep);
  }

  /**
   * The request head as the server gets it: hop-by-hop and the client's forwarding headers
   * removed, the route's edits and the lines of its upstreamHead phases (persistence, forwarding
   * headers ...) added.
   */
  private buildRequestHead(target: string, r: RequestHead, route: HttpRoute): string {
    const names = r.names;
    const drop = route.requestDrop;
    const lnames = r.lnames;
    const values = r.values;
    const conn = r.connection;
    const http10 = r.minor === 0;
    let h = r.method + ' ' + target + (http10 ? ' HTTP/1.0\r\n' : ' HTTP/1.1\r\n');
    let teTrailers = false;
    for (let i = 0; i < names.length; i++) {
      const ln = lnames[i]!;
      if (drop.has(ln) || CLIENT_CERT.has(ln)) {
        if (ln === 'te' && acceptsTrailers(values[i]!)) teTrailers = true;
        continue;
      }
      // A client's own forwarding headers never pass as received (the forwarding phase keeps a trusted proxy's).
      if (FORWARDING.has(ln)) continue;
      if (conn.length > 0 && conn.includes(ln)) continue;
      h += names[i]! + ': ' + values[i]! + '\r\n';
    }
    h += route.requestAdd;
    const phases = route.phases.upstreamHead;
    for (let i = 0; i < phases.length; i++) h += phases[i]!.upstreamHead!(this.ex);
    h += this.clientCertHead;
    if (r.chunked) h += 'Transfer-Encoding: chunked\r\n';
    if (r.upgrade !== undefined) {
      h += 'Connection: upgrade\r\nUpgrade: ' + r.upgrade + '\r\n';
      this.upstreamKeepAlive = false;
    } else if (http10) {
      h += 'Connection: keep-alive\r\n';
      this.upstreamKeepAlive = true;
    } else {
      // The client takes trailer fields, and Portico passes them on: the server may send them (RFC 9110 §10.1.4).
      if (teTrailers) h += 'TE: trailers\r\nConnection: te\r\n';
      this.upstreamKeepAlive = true;
    }
    return h + '\r\n';
  }

  // ======================================================================
  // server side
  // ======================================================================

  /**
   * AttemptOwner: the attempt picked `s`, not yet acquired. A phase may answer instead of
   * contacting the server (a redirect to it): the server is then only counted as placed, never
   * acquired, so the balancer's latency and traffic statistics and passive health see nothing of
   * an answer Portico made itself.
   */
  attemptPicked(s: Server): boolean {
    const ex = this.ex;
    const attempt = this.attempt;
    ex.picked = s;
    ex.tries = attempt.tries;
    ex.queueMs = attempt.queueMs;
    const picked = ex.compiledRoute!.phases.picked;
    for (let i = 0; i < picked.length; i++) {
      const a = picked[i]!.onPicked!(ex);
      if (a !== undefined) {
        attempt.placed();
        this.sendPhaseAnswer(a);
        return true;
      }
    }
    return false;
  }

  /** AttemptOwner: the attempt picked `s` and acquired it; reuse an idle connection to it or open one. */
  attemptConnect(s: Server): void {
    const ph = this.ex.poolHandle!;
    const conns = ph.connections(s);
    if (this.lst.sendProxy !== false) return this.connectOwn(ph, s, conns, this.lst.sendProxy);
    const idle = this.ex.freshOnly ? undefined : conns.take(clockNow());
    if (idle !== undefined) {
      this.up = idle;
      idle.owner = this;
      this.sendRequest(idle, true);
      return;
    }
    this.setDeadline('connect', ph.connectTimeoutMs);
    this.up = new UpstreamConn(s, conns, this);
  }

  /** AttemptOwner: every available server is full; the attempt waits in the pool's queue. */
  attemptQueued(): void {
    this.setDeadline('queue', this.ex.poolHandle!.queueTimeoutMs ?? 0);
  }

  /** AttemptOwner: no server could be had (none available, the queue full or closed, every try spent). */
  attemptFailed(o: Outcome): void {
    this.ex.queueMs = this.attempt.queueMs;
    if (this.state === St.Closed) return;
    this.answerFailure(o);
  }

  /**
   * `sendProxy`: a server connection starts with a PROXY header naming this client, so it is never
   * shared with other clients; the session keeps its last one for its next request to that server.
   */
  private connectOwn(ph: PoolHandle, s: Server, conns: ServerConnections, version: 'v1' | 'v2'): void {
    const own = this.own;
    this.own = undefined;
    if (own !== undefined) {
      if (own.server.id === s.id && !this.ex.freshOnly && !own.dead && !own.socket.destroyed) {
        this.up = own;
        own.owner = this;
        this.sendRequest(own, true);
        return;
      }
      own.destroy();
    }
    this.setDeadline('connect', ph.connectTimeoutMs);
    this.up = new UpstreamConn(s, conns, this, encodeProxyHeader(version, this.peer ?? socketInfo(this.sock)));
  }

  onUpstreamConnect(up: UpstreamConn): void {
    if (up !== this.up || this.state !== St.Connecting) return;
    this.sendRequest(up, false);
  }

  private sendRequest(up: UpstreamConn, reused: boolean): void {
    this.state = St.Exchange;
    this.ex.connectMs = performance.now() - this.ex.startedAt;
    this.reusedConn = reused;
    up.uses++;
    this.ex.response = undefined;
    this.resBuf = EMPTY;
    this.resDone = false;
    this.upReusable = true;
    const sock = up.socket;
    if (this.reqMode === BodyMode.None) {
      sock.write(this.headStr, 'latin1');
    } else {
      sock.cork();
      sock.write(this.headStr, 'latin1');
      this.pumpRequestBody();
      sock.uncork();
      this.resumeClient();
    }
    this.setDeadline('response', this.ex.poolHandle!.responseTimeoutMs);
  }

  /** Relay request body bytes from the buffer to the server, as far as the framing allows. */
  private pumpRequestBody(): void {
    const up = this.up;
    if (up === undefined || this.state !== St.Exchange) return;
    const buf = this.buf;
    if (buf.length === 0 || this.reqDone) return;
    let n: number;
    if (this.reqMode === BodyMode.Length) {
      n = buf.length < this.reqLeft ? buf.length : this.reqLeft;
      this.reqLeft -= n;
      this.reqBodyBytes += n;
      if (this.reqLeft === 0) this.reqDone = true;
    } else {
      const r = this.reqScanner.feed(buf, 0, buf.length);
      if (r === -2) {
        return this.failMidRequest(Outcome.of('bad-request-body', this.reqScanner.error ?? ''));
      }
      n = r === -1 ? buf.length : r;
      this.reqBodyBytes = this.reqScanner.dataBytes;
      if (r >= 0) this.reqDone = true;
    }
    const max = this.lst.limits.maxBodyBytes;
    if (max > 0 && this.reqBodyBytes > max) {
      return this.failMidRequest(Outcome.of('body-too-large'));
    }
    this.ex.bytesIn += n;
    const part = this.reqMode === BodyMode.Chunked ? this.reqScanner.relay(buf, 0, n) : n === buf.length ? buf : buf.subarray(0, n);
    this.buf = n === buf.length ? EMPTY : buf.subarray(n);
    if (!up.socket.write(part)) this.pauseClient();
    if (this.reqDone) {
      if (this.buf.length > 0) this.pauseClient();
      if (this.resDone) this.finish();
    } else if (this.deadlineKind !== 'response' || this.ex.response === undefined) {
      this.setDeadline('body', this.lst.limits.bodyTimeoutMs);
    }
  }

  onUpstreamDrain(up: UpstreamConn): void {
    if (up === this.up && !this.reqDone) this.resumeClient();
    else if (up === this.up && this.state === St.Tunnel) this.resumeClient();
  }

  onUpstreamData(up: UpstreamConn, data: Buffer): void {
    if (up !== this.up) return;
    let chunk = data;
    this.viewIn = false;
    if (up.borrowed) {
      if (this.direct) {
        this.viewIn = true;
        up.writingTo(this.sock);
      } else chunk = Buffer.from(data);
    }
    if (this.state === St.Tunnel) {
      this.ex.bytesOut += chunk.length;
      if (!this.sock.write(chunk)) this.pauseUp();
      this.setDeadline('tunnel', this.ex.poolHandle?.idleTimeoutMs ?? 0);
      return;
    }
    if (this.state !== St.Exchange) return;
    if (this.ex.response === undefined) {
      this.resBuf = this.resBuf.length === 0 ? chunk : Buffer.concat([this.resBuf, chunk]);
      this.tryResponseHead();
      return;
    }
    this.relayResponseBody(chunk, 0);
  }

  private pauseUp(): void {
    if (!this.upPaused && this.up !== undefined) {
      this.upPaused = true;
      this.up.socket.pause();
    }
  }

  private tryResponseHead(): void {
    for (;;) {
      const r = parseResponseHead(this.resBuf, this.lst.upstreamHeadLimits, this.ex.method);
      if (r === null) {
        // The head is not whole yet: what is kept for the next chunk must not be a view the next read overwrites.
        if (this.viewIn) this.resBuf = Buffer.from(this.resBuf);
        return;
      }
      if (!r.ok) {
        return this.upstreamFailed(Outcome.of('bad-response', r.reason));
      }
      const rest = this.resBuf.subarray(r.headEnd);
      if (r.status < 200) {
        if (r.status === 101) {
          if (this.ex.head!.upgrade === undefined) {
            return this.upstreamFailed(Outcome.of('unsolicited-upgrade'));
          }
          this.ex.response = r;
          return this.startTunnel(r, rest);
        }
        // 1xx informational: relay and keep waiting for the final response.
        this.ex.firstByteMs ||= performance.now() - this.ex.startedAt;
        this.writeClientHead(r, true);
        this.resBuf = rest;
        if (rest.length === 0) return;
        continue;
      }
      this.ex.response = r;
      this.resBuf = EMPTY;
      this.ex.firstByteMs = performance.now() - this.ex.startedAt;
      this.ex.status = r.status;
      const framing = responseFraming(r, this.ex.method);
      if (framing === 'length') {
        this.resMode = BodyMode.Length;
        this.resLeft = r.contentLength;
      } else if (framing === 'chunked') {
        if (this.ex.head!.minor === 0) {
          return this.upstreamFailed(Outcome.of('chunked-to-http10'));
        }
        this.resMode = BodyMode.Chunked;
        this.resScanner.reset();
      } else if (framing === 'close') {
        this.resMode = BodyMode.Close;
        this.keepClient = false;
        this.upReusable = false;
      } else {
        this.resMode = BodyMode.None;
      }
      if (!r.keepAlive || !this.upstreamKeepAlive) this.upReusable = false;
      if (!this.reqDone) {
        // An early response (before the whole request body): the connection cannot be reused
        // and the client connection ends with this response.
        this.keepClient = false;
        this.upReusable = false;
      }
      // The route's response-head phases: header lines to add, or an answer instead.
      const phases = this.ex.compiledRoute!.phases;
      let added = '';
      const rh = phases.responseHead;
      for (let i = 0; i < rh.length; i++) {
        const d = rh[i]!.onResponseHead!(this.ex, r);
        if (typeof d === 'string') added += d;
        else return this.answerInsteadOfResponse(d);
      }
      this.bodyOut = BodyOut.Relay;
      if (phases.responseBody.length > 0 && this.resMode !== BodyMode.None) {
        if (!this.ex.bodyReplaced) this.bodyOut = BodyOut.Observe;
        else if (this.ex.head!.minor === 1) this.bodyOut = BodyOut.Chunked;
        else {
          this.bodyOut = BodyOut.Close;
          this.keepClient = false;
        }
      }
      if (this.resMode === BodyMode.Chunked) this.resScanner.sink = this.bodyOut === BodyOut.Relay ? undefined : this;
      if (this.bodyOut === BodyOut.Relay && this.resMode === BodyMode.Length && rest.length === this.resLeft && rest.length <= WHOLE_SMALL_BODY) {
        // The whole body came with the head and is small: head and body leave in one write of one
        // string (latin1 keeps every byte), without the cork, the buffered chunks and the writev.
        this.resLeft = 0;
        this.writeClientHead(r, false, added, rest.length === 0 ? '' : rest.toString('latin1'));
        this.resDone = true;
        if (this.reqDone) this.finish();
        else this.finishEarly();
        return;
      }
      const sock = this.sock;
      sock.cork();
      this.writeClientHead(r, false, added);
      this.setDeadline('response', this.ex.poolHandle!.idleTimeoutMs);
      if (this.resMode === BodyMode.None || (this.resMode === BodyMode.Length && this.resLeft === 0)) {
        if (rest.length > 0) this.upReusable = false;
        if (this.bodyOut !== BodyOut.Relay) this.bodyEnd();
        sock.uncork();
        this.resDone = true;
        if (this.reqDone) this.finish();
        else this.finishEarly();
        return;
      }
      if (rest.length > 0) this.relayResponseBody(rest, 0);
      sock.uncork();
      return;
    }
  }

  /**
   * A response-head phase answers instead of the server's response: the server connection is
   * closed (its body is not read) and the server released as having answered.
   */
  private answerInsteadOfResponse(a: Answer): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.releaseServer(true, undefined);
    this.resDone = true;
    if (!this.reqDone) this.keepClient = false;
    this.sendPhaseAnswer(a);
  }

  /**
   * Write a response head to the client (final or 1xx); `added`: the response-head phases' lines;
   * `body`: a whole small body as latin1, sent in the same write.
   */
  private writeClientHead(r: ResponseHead, informational: boolean, added = '', body = ''): void {
    let h = 'HTTP/1.1 ' + r.status + ' ' + (r.reason === '' ? reasonPhrase(r.status) : r.reason) + '\r\n';
    const names = r.names;
    const lnames = r.lnames;
    const values = r.values;
    const conn = r.connection;
    const route = this.ex.compiledRoute!;
    const drop = informational ? HOP_BY_HOP : route.responseDrop;
    // A replaced body has a length of its own: the server's Content-Length does not hold.
    const replaced = !informational && this.bodyOut >= BodyOut.Chunked;
    for (let i = 0; i < names.length; i++) {
      const ln = lnames[i]!;
      if (drop.has(ln)) continue;
      if (conn.length > 0 && conn.includes(ln)) continue;
      if (replaced && ln === 'content-length') continue;
      h += names[i]! + ': ' + values[i]! + '\r\n';
    }
    if (!informational) {
      h += route.responseAdd;
      h += added;
      if (replaced ? this.bodyOut === BodyOut.Chunked : r.chunked) h += 'Transfer-Encoding: chunked\r\n';
      if (!this.keepClient) h += 'Connection: close\r\n';
      else if (this.ex.head!.minor === 0) h += 'Connection: keep-alive\r\n';
    }
    h += '\r\n';
    this.ex.bytesOut += h.length + body.length;
    this.sentToClient = true;
    this.sock.write(body.length === 0 ? h : h + body, 'latin1');
  }

  private relayResponseBody(chunk: Buffer, start: number): void {
    let end = chunk.length;
    this.outFull = false;
    let done = false;
    switch (this.resMode) {
      case BodyMode.Length: {
        const avail = end - start;
        if (avail >= this.resLeft) {
          if (avail > this.resLeft) this.upReusable = false; // bytes after the response
          end = start + this.resLeft;
          this.resLeft = 0;
          done = true;
        } else {
          this.resLeft -= avail;
        }
        break;
      }
      case BodyMode.Chunked: {
        const r = this.resScanner.feed(chunk, start, end);
        if (r === -2) {
          this.ex.outcome = Outcome.of('bad-response-body', this.resScanner.error ?? '');
          return this.truncate();
        }
        if (r >= 0) {
          if (r < end) this.upReusable = false;
          end = r;
          done = true;
        }
        break;
      }
      case BodyMode.Close:
        break;
      default:
        return;
    }
    const n = end - start;
    if (this.bodyOut === BodyOut.Relay) {
      if (n > 0) {
        this.ex.bytesOut += n;
        const part = start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end);
        if (!this.sock.write(part) && !done) this.pauseUp();
      }
    } else {
      // Body phases: they see the payload (a chunked body's came through chunkData during feed),
      // and may keep it: a view of the server connection's read buffer is copied for them.
      if (n > 0) {
        const view = start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end);
        const part = this.viewIn ? Buffer.from(view) : view;
        if (this.resMode !== BodyMode.Chunked) this.bodyData(part);
        if (this.bodyOut === BodyOut.Observe) {
          this.ex.bytesOut += n;
          if (!this.sock.write(part)) this.outFull = true;
        }
      }
      if (done) this.bodyEnd();
      else if (this.outFull) this.pauseUp();
    }
    if (done) {
      this.resDone = true;
      if (this.reqDone) this.finish();
      else this.finishEarly();
    } else {
      this.setDeadline('response', this.ex.poolHandle!.idleTimeoutMs);
    }
  }

  /** ChunkSink: a run of chunk data of the response, for the body phases. */
  chunkData(buf: Uint8Array, start: number, end: number): void {
    const view = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
    this.bodyData(this.viewIn ? Buffer.from(view) : view);
  }

  /** Response payload through the body phases; when they replace the body, their output goes to the client. */
  private bodyData(data: Buffer): void {
    const phases = this.ex.compiledRoute!.phases.responseBody;
    const ex = this.ex;
    if (this.bodyOut === BodyOut.Observe) {
      for (let i = 0; i < phases.length; i++) phases[i]!.onResponseBody!(ex, data, false);
      return;
    }
    let d = data;
    for (let i = 0; i < phases.length; i++) d = phases[i]!.onResponseBody!(ex, d, false);
    this.writeReplaced(d);
  }

  /** The response body is complete: the body phases' last word, and a replaced chunked body's last chunk. */
  private bodyEnd(): void {
    const phases = this.ex.compiledRoute!.phases.responseBody;
    const ex = this.ex;
    let d: Buffer = EMPTY;
    for (let i = 0; i < phases.length; i++) {
      const out = phases[i]!.onResponseBody!(ex, d, true);
      if (this.bodyOut !== BodyOut.Observe) d = out;
    }
    if (this.resScan !== undefined) this.resScan.sink = undefined;
    if (this.bodyOut === BodyOut.Observe) return;
    this.writeReplaced(d);
    if (this.bodyOut === BodyOut.Chunked) {
      this.ex.bytesOut += 5;
      this.sock.write('0\r\n\r\n', 'latin1');
    }
  }

  /** Bytes of a replaced body, framed as the client's head said (a chunk, or as they are before a close). */
  private writeReplaced(d: Buffer): void {
    if (d.length === 0) return;
    const sock = this.sock;
    if (this.bodyOut === BodyOut.Chunked) {
      const size = d.length.toString(16) + '\r\n';
      this.ex.bytesOut += size.length + d.length + 2;
      sock.write(size, 'latin1');
      sock.write(d);
      if (!sock.write('\r\n', 'latin1')) this.outFull = true;
    } else {
      this.ex.bytesOut += d.length;
      if (!sock.write(d)) this.outFull = true;
    }
  }

  onUpstreamEnd(up: UpstreamConn): void {
    if (up !== this.up) return;
    if (this.state === St.Tunnel) {
      this.sock.end();
      return;
    }
    if (this.state === St.Exchange && this.ex.response !== undefined && this.resMode === BodyMode.Close) {
      if (this.bodyOut !== BodyOut.Relay) this.bodyEnd();
      this.resDone = true;
      this.upReusable = false;
      if (this.reqDone) this.finish();
      else this.finishEarly();
      return;
    }
    this.onUpstreamError(up, new Error('server closed the connection'));
  }

  onUpstreamError(up: UpstreamConn, err: Error): void {
    if (up !== this.up) return;
    if (this.state === St.Tunnel) {
      // the server side is gone: flush what was relayed, then close the client
      this.sock.destroySoon();
      return;
    }
    if (this.state === St.Connecting) {
      return this.connectFailed(Outcome.ofError('connect-failed', err));
    }
    if (this.state !== St.Exchange) return;
    if (this.ex.response === undefined) {
      return this.upstreamFailed(this.ex.outcome ?? Outcome.ofError('upstream-reset', err));
    }
    if (!this.resDone) {
      this.ex.outcome ??= Outcome.of('response-truncated');
      this.truncate();
    }
  }

  // ======================================================================
  // failures, retries, completion
  // ======================================================================

  /** Connect error or timeout: nothing was sent, so another server may be tried. */
  private connectFailed(o: Outcome): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.ex.outcome = o;
    this.releaseServer(false, o);
    if (this.state === St.Closed) return;
    this.state = St.Connecting;
    // A retry calls attemptConnect (or attemptFailed when no server is left) at once.
    if (this.attempt.retry(o, false, this.ex)) return;
    this.answerFailure(o);
  }

  /**
   * The server failed before a complete response head. SPEC §4: another server is tried when the
   * outcome's retry rule allows it, nothing of the response reached the client and the request is
   * idempotent with no body; a kept-alive connection the server had closed is not the server's
   * failure (the request goes again on a new connection). Otherwise 502, or the cut connection
   * when the response had started.
   */
  private upstreamFailed(o: Outcome): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    const ex = this.ex;
    ex.outcome = o;
    const repeatable = !this.sentToClient && this.reqMode === BodyMode.None && isIdempotent(ex.method);
    const stale = this.reusedConn && o.spec.retry !== 'never';
    this.releaseServer(false, stale ? undefined : o);
    this.state = St.Connecting;
    if (stale) {
      ex.freshOnly = true;
      if (this.attempt.again(o, repeatable, ex)) return;
    } else if (this.attempt.retry(o, repeatable, ex)) return;
    this.state = St.Exchange;
    if (this.sentToClient) return this.truncate();
    this.answerFailure(o);
  }

  /** The response started and cannot complete: cut the client connection so it sees the truncation. */
  private truncate(): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.releaseServer(false, this.ex.outcome ?? Outcome.of('response-truncated'));
    this.finishRecord();
    // What was relayed so far is flushed, then the connection closes before the framing
    // completes: the client sees an incomplete response, never a wrong one.
    this.closeClient();
  }

  /** The request failed after being (partly) sent: answer if possible and close. */
  private failMidRequest(o: Outcome): void {
    this.ex.outcome = o;
    this.dropUpstream();
    this.keepClient = false;
    if (!this.sentToClient) this.respondError(httpStatus(o), '');
    else {
      this.finishRecord();
      this.closeClient();
    }
  }

  private abort(o: Outcome): void {
    this.ex.outcome ??= o;
    this.dropUpstream();
    this.ex.status ||= 499;
    this.finishRecord();
    this.state = St.Closed;
    this.sock.destroy();
  }

  /** Let go of the upstream connection without reuse and release the server. */
  private dropUpstream(): void {
    this.attempt.abandon();
    const up = this.up;
    this.up = undefined;
    if (up !== undefined) up.destroy();
    this.releaseServer(true, undefined);
  }

  /**
   * Give the current try's server back (the upstream attempt), then tell the route's phases how the
   * try ended (passive health). `failure`: the outcome when the server failed, undefined when it answered.
   */
  private releaseServer(ok: boolean, failure: Outcome | undefined): void {
    const attempt = this.attempt;
    const rt = attempt.runtime;
    if (rt === undefined) return;
    const ex = this.ex;
    attempt.release(ok, failure, ex);
    const phases = ex.compiledRoute!.phases.attemptDone;
    const kind = failure === undefined ? '' : failure.spec.server;
    for (let i = 0; i < phases.length; i++) phases[i]!.onAttemptDone!(ex, rt, kind);
  }

  /** Sends a response Portico made (no server involved), records the exchange, then keeps or closes the connection. */
  private sendAnswer(text: string, keep: boolean): void {
    this.ex.bytesOut += text.length;
    this.sentToClient = true;
    this.sock.write(text, 'latin1');
    this.finishRecord();
    if (keep) this.nextRequest();
    else this.closeClient();
  }

  /**
   * Send a phase's streamed answer: the head now, the body as the answer's source gives it
   * (answerData / answerEnd), with back-pressure through the client's drain.
   */
  private sendStreamed(a: StreamedAnswer): void {
    const ex = this.ex;
    const http11 = ex.head!.minor === 1;
    const keep = this.keepClient && this.reqMode === BodyMode.None && (http11 || a.sized || !a.hasBody);
    this.keepClient = keep;
    this.streamChunked = a.hasBody && !a.sized && http11;
    ex.status = a.status;
    ex.firstByteMs = performance.now() - ex.startedAt;
    this.sentToClient = true;
    this.state = St.Answer;
    this.deadline = 0;
    const sock = this.sock;
    // A source that has the whole response at hand (a cache hit) gives it as one buffer: one write.
    const whole = keep && http11 && a.sized && a.wire !== undefined ? a.wire() : undefined;
    if (whole !== undefined) {
      ex.bytesOut += whole.length;
      sock.write(whole);
      return this.answerEnd();
    }
    let h = a.head();
    if (this.streamChunked) h += 'Transfer-Encoding: chunked\r\n';
    if (!keep) h += 'Connection: close\r\n';
    else if (!http11) h += 'Connection: keep-alive\r\n';
    h += '\r\n';
    ex.bytesOut += h.length;
    // Head and body in one write where the body is at hand: corked until the answer has started.
    sock.cork();
    sock.write(h, 'latin1');
    if (!a.hasBody) this.answerEnd();
    else {
      this.streamed = a;
      a.start(this);
    }
    if (sock.writableCorked > 0) sock.uncork();
  }

  /** AnswerSink: body bytes of the streamed answer. */
  answerData(data: Buffer): boolean {
    if (this.state !== St.Answer || data.length === 0) return this.state === St.Answer;
    const sock = this.sock;
    if (this.streamChunked) {
      const size = data.length.toString(16) + '\r\n';
      this.ex.bytesOut += size.length + data.length + 2;
      sock.write(size, 'latin1');
      sock.write(data);
      return sock.write('\r\n', 'latin1');
    }
    this.ex.bytesOut += data.length;
    return sock.write(data);
  }

  /** AnswerSink: the streamed answer is complete. */
  answerEnd(): void {
    if (this.state !== St.Answer) return;
    this.streamed = undefined;
    if (this.streamChunked) {
      this.ex.bytesOut += 5;
      this.sock.write('0\r\n\r\n', 'latin1');
    }
    this.finishRecord();
    if (this.keepClient && !this.clientEnded) this.nextRequest();
    else this.closeClient();
  }

  /** AnswerSink: the streamed answer's source failed midway: the client sees the body cut. */
  answerAbort(): void {
    if (this.state !== St.Answer) return;
    this.streamed = undefined;
    this.ex.outcome = Outcome.of('response-truncated');
    this.finishRecord();
    this.state = St.Closed;
    this.sock.destroy();
  }

  /** Portico answers the request itself (error or refusal) and ends or keeps the connection. */
  private respondError(status: number, extra: string): void {
    this.ex.status = status;
    const keep = this.keepClient && this.reqMode === BodyMode.None && this.buf.length === 0;
    const text = errorResponse(status, this.ex.requestId(), keep, extra);
    this.sendAnswer(text, keep);
  }

  /** The request failed with `o` before anything was sent to the client: its status (and Retry-After) as the outcome says. */
  private answerFailure(o: Outcome): void {
    const phases = this.ex.compiledRoute?.phases.failure;
    if (phases !== undefined) {
      for (let i = 0; i < phases.length; i++) {
        const a = phases[i]!.onFailure!(this.ex, o);
        if (a !== undefined) return this.sendPhaseAnswer(a);
      }
    }
    this.ex.outcome = o;
    this.respondError(httpStatus(o, this.lst.noRouteStatus), answerHeaders(o, this.ex.poolHandle?.retryAfterSec ?? 0));
  }

  /** A request refused before it had an exchange (malformed, too large ...): answer and close. */
  private refuse(o: Outcome): void {
    const status = httpStatus(o);
    this.ex.status = status;
    this.ex.outcome = o;
    this.lst.onRejected(o.reason);
    const text = errorResponse(status, this.ex.requestId(), false);
    this.sentToClient = true;
    this.ex.bytesOut += text.length;
    this.sock.write(text, 'latin1');
    if (this.ex.method !== '') this.finishRecord();
    this.closeClient();
  }

  private closeClient(): void {
    this.state = St.Closed;
    this.buf = EMPTY;
    const sock = this.sock;
    if (sock.writableCorked > 0) sock.uncork();
    // A client that keeps sending after our answer is not read any further; one that does
    // not read what is left to send is cut after LINGER_MS.
    sock.pause();
    sock.destroySoon();
    this.setDeadline('linger', LINGER_MS);
  }

  /** Request and response are both complete. */
  private finish(): void {
    const up = this.up;
    this.up = undefined;
    if (this.upPaused) {
      this.upPaused = false;
      up?.socket.resume();
    }
    if (up !== undefined) {
      if (!this.upReusable || up.dead) up.destroy();
      else if (this.lst.sendProxy === false) up.release();
      else {
        up.owner = null;
        this.own = up;
      }
    }
    this.releaseServer(true, undefined);
    this.finishRecord();
    if (this.keepClient) this.nextRequest();
    else this.closeClient();
  }

  /** The response is complete before the request body: the server connection and this client connection end. */
  private finishEarly(): void {
    this.keepClient = false;
    this.upReusable = false;
    this.reqDone = true;
    this.finish();
  }

  private finishRecord(): void {
    const ex = this.ex;
    if (ex.startedAt === 0) return;
    ex.totalMs = performance.now() - ex.startedAt;
    const before = this.lst.phases.done;
    for (let i = 0; i < before.length; i++) before[i]!.onDone!(ex);
    const route = ex.compiledRoute;
    if (route !== undefined) {
      const phases = route.phases.done;
      for (let i = 0; i < phases.length; i++) phases[i]!.onDone!(ex);
    }
    this.lst.onDone(ex);
    ex.startedAt = 0;
  }

  /** Reset the per-request state and look at what the client already sent. */
  private nextRequest(): void {
    this.state = St.Head;
    this.streamed = undefined;
    this.ex.reset();
    this.waitList = undefined;
    // An idle keep-alive connection holds nothing of the last exchange (the head sent, kept for a retry).
    this.headStr = '';
    this.serverTarget = '';
    this.sentToClient = false;
    if (this.clientEnded) {
      this.closeClient();
      return;
    }
    if (this.buf.length > 0) return this.nextBuffered();
    this.setDeadline('idle', this.lst.limits.keepAliveTimeoutMs);
    this.resumeClient();
  }

  /**
   * The client already sent (part of) its next request. A client that pipelines without reading
   * what it was answered waits, paused, until its socket drains (or its header deadline passes).
   */
  private nextBuffered(): void {
    this.setDeadline('header', this.lst.limits.headerTimeoutMs);
    if (this.sock.writableLength > MAX_UNREAD_OUTPUT) {
      this.headWaits = true;
      this.pauseClient();
      return;
    }
    this.tryHead();
    if (this.state === St.Head && !this.headWaits) this.resumeClient();
  }

  private startTunnel(r: ResponseHead, rest: Buffer): void {
    this.state = St.Tunnel;
    this.ex.status = 101;
    this.ex.firstByteMs = performance.now() - this.ex.startedAt;
    let h = 'HTTP/1.1 101 ' + (r.reason === '' ? 'Switching Protocols' : r.reason) + '\r\n';
    for (let i = 0; i < r.names.length; i++) h += r.names[i]! + ': ' + r.values[i]! + '\r\n';
    h += '\r\n';
    this.sentToClient = true;
    this.ex.bytesOut += h.length + rest.length;
    this.sock.write(h, 'latin1');
    if (rest.length > 0) this.sock.write(rest);
    if (this.buf.length > 0) {
      const b = this.buf;
      this.buf = EMPTY;
      this.ex.bytesIn += b.length;
      this.up!.socket.write(b);
    }
    this.reqDone = true;
    this.resumeClient();
    this.setDeadline('tunnel', this.ex.poolHandle!.idleTimeoutMs);
  }

  /** Called by the listener's deadline sweep when `deadline` has passed. */
  onDeadline(): void {
    this.deadline = 0;
    switch (this.deadlineKind) {
      case 'idle':
        this.closeClient();
        return;
      case 'header':
        if (this.buf.length === 0 && this.requestsOnConn > 0) this.closeClient();
        else this.refuse(Outcome.of('request-timeout'));
        return;
      case 'body':
        this.failMidRequest(Outcome.of('body-timeout'));
        return;
      case 'queue':
        this.attempt.expireQueue();
        return;
      case 'connect':
        if (this.state === St.Connecting) this.connectFailed(Outcome.of('connect-timeout'));
        return;
      case 'response': {
        const o = Outcome.of(this.ex.response === undefined ? 'response-timeout' : 'idle-timeout');
        this.ex.outcome = o;
        if (this.ex.response === undefined && !this.sentToClient) {
          const up = this.up;
          this.up = undefined;
          up?.destroy();
          this.releaseServer(false, o);
          this.keepClient = false;
          this.answerFailure(o);
        } else {
          this.truncate();
        }
        return;
      }
      case 'linger':
        this.sock.destroy();
        return;
      case 'tunnel':
        this.ex.outcome = Outcome.of('tunnel-idle-timeout');
        this.dropUpstream();
        this.finishRecord();
        this.state = St.Closed;
        this.sock.destroy();
        return;
    }
  }

  /**
   * Graceful shutdown: a keep-alive connection idle between requests is closed now; a busy one
   * after its response. A connection that has not sent its first request yet (accepted a moment
   * ago, its request on the way) is not closed under it: that request is answered, with
   * `Connection: close`, within the header timeout and the shutdown grace.
   */
  shutdown(): void {
    this.draining = true;
    if (this.idle && this.requestsOnConn > 0) this.closeClient();
    else this.keepClient = false;
  }
}
