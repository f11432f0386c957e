import type { Socket } from 'node:net';
import type { Server, ServerId } from '../../core/server.js';
import type { FailureKind } from '../../health/outlier.js';
import type { Pool } from '../../pool/pool.js';
import type { QueueWaiter } from '../../pool/queue.js';
import type { ServerRuntime } from '../../pool/server-runtime.js';
import { ChunkedScanner } from './chunked.js';
import { errorResponse, reasonPhrase } from './error-response.js';
import type { ClientCertInfo, ClientCertState } from '../../tls/client-cert.js';
import { CLIENT_CERT, FORBIDDEN_TRAILERS, FORWARDING, HOP_BY_HOP, forwardedNode, forwardedValue, isIdempotent, xffAddress } from './headers.js';
import { parseRequestHead, type RequestHead } from './parse-request.js';
import { parseResponseHead, responseFraming, type ResponseHead } from './parse-response.js';
import type { RequestView } from './router.js';
import type { HttpListenerRuntime, HttpRoute, PoolHandle } from './listener-runtime.js';
import { normalizeHost, normalizePath } from './normalize.js';
import type { RouteAnswer } from './route-actions.js';
import { UpstreamConn, type ServerConnections, type UpstreamOwner } from './upstream.js';
import { encodeProxyHeader, socketInfo, type ProxyInfo } from '../../net/proxy-protocol.js';
import { clockNow } from '../../net/deadlines.js';
import type { ExchangeRecord } from '../../observability/records.js';

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
  Closed,
}

const enum BodyMode {
  None,
  Length,
  Chunked,
  Close,
}

let requestSeq = 0;
const idPrefix = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;

const EMPTY: Buffer = Buffer.alloc(0);

/** How long a closing connection may take to flush what is left to send before it is cut (ms). */
const LINGER_MS = 5000;

/**
 * One client connection and the exchange in progress on it. HTTP/1.1 keep-alive,
 * one request at a time (pipelined requests wait in the buffer), bodies relayed
 * byte for byte with back-pressure in both directions. Socket handlers are bound
 * once per connection; nothing is allocated per request that can be kept.
 */
export class HttpSession implements UpstreamOwner, ExchangeRecord, RequestView, QueueWaiter {
  readonly sock: Socket;
  readonly lst: HttpListenerRuntime;
  readonly clientAddress: string;
  /** The client connection as a PROXY header names it, when it is not the socket's own. */
  private readonly peer: ProxyInfo | undefined;
  /** sendProxy: this client's own server connection, kept between its requests. */
  private own: UpstreamConn | undefined = undefined;
  private readonly clientTrusted: boolean;
  private state: St = St.Head;
  /** Unconsumed bytes from the client. */
  private buf: Buffer = EMPTY;
  /** Deadline (clockNow ms) and what it guards; 0 = none. */
  deadline = 0;
  private deadlineKind: 'idle' | 'header' | 'body' | 'queue' | 'connect' | 'response' | 'tunnel' | 'linger' = 'idle';
  /** Parked in the pool's queue (every available server at maxConnections). */
  private queued = false;
  private requestsOnConn = 0;
  private clientEnded = false;
  private clientPaused = false;
  private upPaused = false;

  // ---- the current exchange ----
  private req: RequestHead | undefined = undefined;
  private headStr = '';
  private routeRef: HttpRoute | undefined = undefined;
  /** The server persistence pinned this request to (undefined: not pinned). */
  private pinned: Server | undefined = undefined;
  /** Waiting for persistence to ask a shared store. */
  private pinWait = false;
  private ph: PoolHandle | undefined = undefined;
  private srv: Server | undefined = undefined;
  private rt: ServerRuntime | undefined = undefined;
  private up: UpstreamConn | undefined = undefined;
  private avoid: Set<ServerId> | undefined = undefined;
  private freshOnly = false;
  tries = 0;
  private reqMode: BodyMode = BodyMode.None;
  private reqLeft = 0;
  private reqBodyBytes = 0;
  private reqDone = false;
  private reqSentAny = false;
  private readonly reqScanner = new ChunkedScanner({ dropTrailers: FORBIDDEN_TRAILERS });
  private res: ResponseHead | undefined = undefined;
  private resBuf: Buffer = EMPTY;
  private resMode: BodyMode = BodyMode.None;
  private resLeft = 0;
  private resDone = false;
  private readonly resScanner = new ChunkedScanner();
  private sentToClient = false;
  private keepClient = true;
  private upReusable = true;
  private upstreamKeepAlive = true;

  // ---- record fields (ExchangeRecord / RequestView) ----
  method = '';
  target = '';
  path = '';
  query = '';
  host = '';
  /** The TLS server name of the client connection (https listeners), for `match: { sni }`. */
  readonly sni: string | undefined;
  /** The client certificate of the connection (https listeners with clientAuth), for `match: { clientCert }`. */
  readonly clientCert: ClientCertState | undefined;
  /** The client certificate headers for the servers ('' without clientAuth). */
  private readonly clientCertHead: string;
  lnames: readonly string[] = [];
  values: readonly string[] = [];
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  startedAt = 0;
  queueMs = 0;
  connectMs = 0;
  firstByteMs = 0;
  totalMs = 0;
  error = '';
  private rid = '';

  /**
   * `peer`: the client connection when it is not the socket's own (a PROXY protocol header named
   * it, or the socket is an HTTP/2 stream). `cert`: the client certificate of a TLS connection
   * whose listener asks for one.
   */
  constructor(sock: Socket, lst: HttpListenerRuntime, peer?: ProxyInfo, cert?: ClientCertInfo) {
    this.sock = sock;
    this.lst = lst;
    this.peer = peer;
    this.clientCert = cert?.state;
    this.clientCertHead = cert?.head ?? '';
    const servername = (sock as { servername?: unknown }).servername;
    this.sni = typeof servername === 'string' && servername !== '' ? servername.toLowerCase() : undefined;
    const addr = peer?.sourceAddress ?? sock.remoteAddress ?? '';
    this.clientAddress = addr;
    this.clientTrusted = lst.trusted.size > 0 && lst.trusted.has(addr);
    sock.setNoDelay(true);
    sock.on('data', this.onClientData);
    sock.on('end', this.onClientEnd);
    sock.on('error', this.onClientError);
    sock.on('close', this.onClientClose);
    sock.on('drain', this.onClientDrain);
    this.setDeadline('header', lst.limits.headerTimeoutMs);
  }

  get listener(): string {
    return this.lst.name;
  }
  get route(): string {
    return this.routeRef?.name ?? '';
  }
  get pool(): string {
    return this.ph?.pool.name ?? '';
  }
  get server(): string {
    return this.srv?.name ?? '';
  }
  requestId(): string {
    if (this.rid === '') this.rid = idPrefix + (++requestSeq).toString(36);
    return this.rid;
  }
  get httpVersion(): string {
    return this.req?.minor === 0 ? '1.0' : '1.1';
  }
  header(lname: string): string {
    const names = this.lnames;
    for (let i = 0; i < names.length; i++) if (names[i] === lname) return this.values[i]!;
    return '';
  }

  /** True while no request is in progress (used by graceful shutdown). */
  get idle(): boolean {
    return this.state === St.Head && this.buf.length === 0;
  }

  private setDeadline(kind: HttpSession['deadlineKind'], ms: number): void {
    this.deadlineKind = kind;
    this.deadline = ms > 0 ? clockNow() + ms : 0;
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
      case St.Tunnel: {
        this.bytesIn += chunk.length;
        const up = this.up;
        if (up !== undefined && !up.socket.write(chunk)) this.pauseClient();
        this.setDeadline('tunnel', this.ph?.idleTimeoutMs ?? 0);
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
      if (this.buf.length > 0) this.refuse(400, 'incomplete request head');
      else this.sock.end();
      return;
    }
    // The client closed its side while its request is in progress. Like HAProxy's
    // abortonclose: treat it as gone and cancel the server request, rather than keep a
    // server busy for a client that will most likely not read the answer.
    this.abort(this.reqDone ? 'client closed' : 'client closed during request body');
  };

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
    if (was === St.Connecting || was === St.Exchange || was === St.Tunnel) {
      if (this.error === '') this.error = was === St.Tunnel ? '' : 'client aborted';
      this.dropUpstream();
      if (this.status === 0) this.status = 499;
      this.finishRecord();
    }
  };

  private readonly onClientDrain = (): void => {
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
    const lim = this.lst.limits;
    const r = parseRequestHead(this.buf, lim);
    if (r === null) return;
    if (!r.ok) {
      this.refuse(r.status, r.reason);
      return;
    }
    this.startExchange(r);
  }

  private startExchange(r: RequestHead): void {
    const lst = this.lst;
    const lim = lst.limits;
    this.req = r;
    this.startedAt = performance.now();
    this.requestsOnConn++;
    this.method = r.method;
    this.target = r.target;
    this.lnames = r.lnames;
    this.values = r.values;
    this.buf = r.headEnd === this.buf.length ? EMPTY : this.buf.subarray(r.headEnd);
    this.bytesIn = r.headEnd;
    this.bytesOut = 0;
    this.keepClient =
      r.keepAlive && !this.clientEnded && (lim.maxRequestsPerConnection === 0 || this.requestsOnConn < lim.maxRequestsPerConnection);

    // Target: origin-form (or absolute-form, turned into origin-form for the server).
    let t = r.target;
    if (t.charCodeAt(0) !== 47 /* / */) {
      if (r.method === 'CONNECT') return this.refuse(405, 'CONNECT is not supported');
      if (t === '*') {
        if (r.method !== 'OPTIONS') return this.refuse(400, 'asterisk-form is for OPTIONS');
      } else {
        t = r.path; // absolute-form, checked by the parser: its origin-form, '/' for an empty path
      }
    }
    const q = t.indexOf('?');
    const rawPath = q < 0 ? t : t.slice(0, q);
    this.query = q < 0 ? '' : t.slice(q + 1);
    // Routes see the normalised path and the server gets it: the two cannot disagree.
    const path = t === '*' ? rawPath : normalizePath(rawPath);
    if (path === undefined) return this.refuse(400, 'ambiguous path encoding');
    if (path !== rawPath) t = q < 0 ? path : path + t.slice(q);
    this.path = path;
    this.host = normalizeHost(r.host ?? '');

    // Body framing and limits.
    if (r.chunked) {
      this.reqMode = BodyMode.Chunked;
      this.reqScanner.reset();
    } else if (r.contentLength > 0) {
      if (lim.maxBodyBytes > 0 && r.contentLength > lim.maxBodyBytes) return this.refuse(413, 'body too large');
      this.reqMode = BodyMode.Length;
      this.reqLeft = r.contentLength;
    } else {
      this.reqMode = BodyMode.None;
    }
    this.reqDone = this.reqMode === BodyMode.None;
    this.reqBodyBytes = 0;

    // Rate limit (listeners with `rateLimit` only): the request's key takes a token, or 429.
    const rl = lst.rateLimit;
    if (rl !== undefined) {
      const waitSec = rl.take(this);
      if (waitSec > 0) return this.limited(waitSec);
    }

    // Route.
    const routes = lst.routes;
    let route: HttpRoute | undefined;
    for (let i = 0; i < routes.length; i++) {
      if (routes[i]!.match(this)) {
        route = routes[i];
        break;
      }
    }
    this.routeRef = route;
    if (route === undefined) {
      this.error = 'no route';
      return this.respondError(lst.noRouteStatus, '');
    }
    const ph = route.pool;
    if (ph === undefined) return this.answer(route.answer!);
    this.ph = ph;
    this.headStr = this.buildRequestHead(t, r, route, ph);
    this.state = St.Connecting;
    const per = ph.persistence;
    if (per !== undefined) {
      const pin = per.lookup(this, ph.pool.current.set);
      if (pin instanceof Promise) {
        // A shared store is asked; it answers within its timeout and never rejects.
        this.pinWait = true;
        this.deadline = 0;
        pin.then(this.onPinned);
        return;
      }
      this.pinned = pin;
    }
    this.pickAndConnect();
  }

  private readonly onPinned = (s: Server | undefined): void => {
    if (!this.pinWait) return;
    this.pinWait = false;
    if (this.state !== St.Connecting) return;
    this.pinned = s;
    this.pickAndConnect();
  };

  /** The route answers by itself (redirect, respond): no server is involved. */
  private answer(a: RouteAnswer): void {
    // An HTTP/1.0 client is answered with Connection: close (the answers are built for HTTP/1.1).
    const keep = this.keepClient && this.reqMode === BodyMode.None && this.req!.minor === 1;
    const text = a.render(this, this.lst.proto, keep);
    this.status = a.status;
    this.firstByteMs = performance.now() - this.startedAt;
    this.sendAnswer(text, keep);
  }

  /** The request head as the server gets it: hop-by-hop removed, the route's edits and forwarding headers added. */
  private buildRequestHead(target: string, r: RequestHead, route: HttpRoute, ph: PoolHandle): string {
    const names = r.names;
    const drop = route.requestDrop;
    const lnames = r.lnames;
    const values = r.values;
    const conn = r.connection;
    const trusted = this.clientTrusted;
    const http10 = r.minor === 0;
    let h = r.method + ' ' + target + (http10 ? ' HTTP/1.0\r\n' : ' HTTP/1.1\r\n');
    let xff: string | undefined;
    let xfProto: string | undefined;
    let xfHost: string | undefined;
    let fwd: string | undefined;
    let teTrailers = false;
    for (let i = 0; i < names.length; i++) {
      const ln = lnames[i]!;
      if (drop.has(ln) || CLIENT_CERT.has(ln)) {
        if (ln === 'te' && acceptsTrailers(values[i]!)) teTrailers = true;
        continue;
      }
      if (FORWARDING.has(ln)) {
        if (!trusted) continue;
        const v = values[i]!;
        if (ln === 'x-forwarded-for') xff = xff === undefined ? v : xff + ', ' + v;
        else if (ln === 'x-forwarded-proto') xfProto ??= v;
        else if (ln === 'x-forwarded-host') xfHost ??= v;
        else fwd = fwd === undefined ? v : fwd + ', ' + v;
        continue;
      }
      if (conn.length > 0 && conn.includes(ln)) continue;
      h += names[i]! + ': ' + values[i]! + '\r\n';
    }
    h += route.requestAdd;
    if (ph.persistence !== undefined) h += ph.persistence.forwardHeaders(this);
    const proto = this.lst.proto;
    const client = xffAddress(this.clientAddress);
    const hostHdr = r.host ?? '';
    h += 'X-Forwarded-For: ' + (xff === undefined ? client : xff + ', ' + client) + '\r\n';
    h += 'X-Forwarded-Proto: ' + (xfProto ?? proto) + '\r\n';
    if (hostHdr !== '') h += 'X-Forwarded-Host: ' + (xfHost ?? hostHdr) + '\r\n';
    const mine =
      'for=' + forwardedNode(this.clientAddress) + ';proto=' + proto + (hostHdr !== '' ? ';host=' + forwardedValue(hostHdr) : '');
    h += 'Forwarded: ' + (fwd === undefined ? mine : fwd + ', ' + mine) + '\r\n';
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

  private pickServer(ph: PoolHandle): Server | undefined {
    const pin = this.pinned;
    if (pin !== undefined && (this.avoid === undefined || !this.avoid.has(pin.id)) && ph.pool.acceptsPinned(pin.id)) {
      // A pinned server at its maxConnections: the balancer places the request (and persistence re-pins).
      const rt = ph.pool.runtime(pin.id);
      if (rt !== undefined && (pin.maxConnections === 0 || rt.active < pin.maxConnections)) return pin;
    }
    const hashKey = ph.hashKey === undefined ? undefined : ph.hashKey(this);
    return ph.pool.pick(this.avoid === undefined ? { hashKey, path: this.path } : { hashKey, path: this.path, avoid: this.avoid });
  }

  private pickAndConnect(): void {
    const ph = this.ph!;
    const s = this.pickServer(ph);
    if (s === undefined) {
      if (this.tries > 0) {
        this.error ||= 'upstream failed';
        return this.respondError(502, '');
      }
      const saturated = ph.pool.current.set.available.length > 0;
      if (saturated && ph.pool.enqueue(this, this.routeRef!.priority)) {
        // Every available server is at maxConnections: wait for a slot (pool.release resumes us).
        this.queued = true;
        this.setDeadline('queue', ph.queueTimeoutMs ?? 0);
        return;
      }
      this.error = saturated ? 'queue full' : 'no available server';
      return this.respondError(503, 'Retry-After: ' + ph.retryAfterSec + '\r\n');
    }
    this.connectTo(ph, s);
  }

  /** The pool has a free slot: pick again. False when none could be had (we stay first in line). */
  resumeFromQueue(): boolean {
    if (!this.queued) return true;
    const ph = this.ph!;
    const s = this.pickServer(ph);
    if (s === undefined) return false;
    this.queued = false;
    this.queueMs = performance.now() - this.startedAt;
    this.connectTo(ph, s);
    return true;
  }

  /** No server is available any more: 503 now. */
  rejectFromQueue(): void {
    if (!this.queued) return;
    this.queued = false;
    this.queueMs = performance.now() - this.startedAt;
    this.error = 'no available server';
    this.respondError(503, 'Retry-After: ' + this.ph!.retryAfterSec + '\r\n');
  }

  private connectTo(ph: PoolHandle, s: Server): void {
    const pool = ph.pool;
    this.tries++;
    this.srv = s;
    this.rt = pool.acquire(s);
    const conns = ph.connections(s);
    if (this.lst.sendProxy !== false) return this.connectOwn(ph, s, conns, this.lst.sendProxy);
    const idle = this.freshOnly ? undefined : conns.take(clockNow());
    if (idle !== undefined) {
      this.up = idle;
      idle.owner = this;
      this.sendRequest(idle, true);
      return;
    }
    this.setDeadline('connect', ph.connectTimeoutMs);
    this.up = new UpstreamConn(s, conns, this);
  }

  /**
   * `sendProxy`: a server connection starts with a PROXY header naming this client, so it is never
   * shared with other clients; the session keeps its last one for its next request to that server.
   */
  private connectOwn(ph: PoolHandle, s: Server, conns: ServerConnections, version: 'v1' | 'v2'): void {
    const own = this.own;
    this.own = undefined;
    if (own !== undefined) {
      if (own.server.id === s.id && !this.freshOnly && !own.dead && !own.socket.destroyed) {
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
    this.connectMs = performance.now() - this.startedAt;
    this.reusedConn = reused;
    up.uses++;
    this.res = undefined;
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
    this.reqSentAny = true;
    this.setDeadline('response', this.ph!.responseTimeoutMs);
  }

  private reusedConn = false;

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
        this.error = 'bad chunked request body: ' + (this.reqScanner.error ?? '');
        return this.failMidRequest(400);
      }
      n = r === -1 ? buf.length : r;
      this.reqBodyBytes = this.reqScanner.dataBytes;
      if (r >= 0) this.reqDone = true;
    }
    const max = this.lst.limits.maxBodyBytes;
    if (max > 0 && this.reqBodyBytes > max) {
      this.error = 'body too large';
      return this.failMidRequest(413);
    }
    this.bytesIn += n;
    const part = this.reqMode === BodyMode.Chunked ? this.reqScanner.relay(buf, 0, n) : n === buf.length ? buf : buf.subarray(0, n);
    this.buf = n === buf.length ? EMPTY : buf.subarray(n);
    if (!up.socket.write(part)) this.pauseClient();
    if (this.reqDone) {
      if (this.buf.length > 0) this.pauseClient();
      if (this.resDone) this.finish();
    } else if (this.deadlineKind !== 'response' || this.res === undefined) {
      this.setDeadline('body', this.lst.limits.bodyTimeoutMs);
    }
  }

  onUpstreamDrain(up: UpstreamConn): void {
    if (up === this.up && !this.reqDone) this.resumeClient();
    else if (up === this.up && this.state === St.Tunnel) this.resumeClient();
  }

  onUpstreamData(up: UpstreamConn, chunk: Buffer): void {
    if (up !== this.up) return;
    if (this.state === St.Tunnel) {
      this.bytesOut += chunk.length;
      if (!this.sock.write(chunk)) this.pauseUp();
      this.setDeadline('tunnel', this.ph?.idleTimeoutMs ?? 0);
      return;
    }
    if (this.state !== St.Exchange) return;
    if (this.res === undefined) {
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
      const r = parseResponseHead(this.resBuf, this.lst.upstreamHeadLimits, this.method);
      if (r === null) return;
      if (!r.ok) {
        this.error = 'bad response head: ' + r.reason;
        return this.upstreamFailed(false);
      }
      const rest = this.resBuf.subarray(r.headEnd);
      if (r.status < 200) {
        if (r.status === 101) {
          if (this.req!.upgrade === undefined) {
            this.error = 'unsolicited 101';
            return this.upstreamFailed(false);
          }
          this.res = r;
          return this.startTunnel(r, rest);
        }
        // 1xx informational: relay and keep waiting for the final response.
        this.firstByteMs ||= performance.now() - this.startedAt;
        this.writeClientHead(r, true);
        this.resBuf = rest;
        if (rest.length === 0) return;
        continue;
      }
      this.res = r;
      this.resBuf = EMPTY;
      this.firstByteMs = performance.now() - this.startedAt;
      this.status = r.status;
      const framing = responseFraming(r, this.method);
      if (framing === 'length') {
        this.resMode = BodyMode.Length;
        this.resLeft = r.contentLength;
      } else if (framing === 'chunked') {
        if (this.req!.minor === 0) {
          this.error = 'chunked response to an HTTP/1.0 request';
          return this.upstreamFailed(false);
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
      const sock = this.sock;
      sock.cork();
      this.writeClientHead(r, false);
      this.setDeadline('response', this.ph!.idleTimeoutMs);
      if (this.resMode === BodyMode.None || (this.resMode === BodyMode.Length && this.resLeft === 0)) {
        if (rest.length > 0) this.upReusable = false;
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

  /** Write a response head to the client (final or 1xx). */
  private writeClientHead(r: ResponseHead, informational: boolean): void {
    let h = 'HTTP/1.1 ' + r.status + ' ' + (r.reason === '' ? reasonPhrase(r.status) : r.reason) + '\r\n';
    const names = r.names;
    const lnames = r.lnames;
    const values = r.values;
    const conn = r.connection;
    const route = this.routeRef!;
    const drop = informational ? HOP_BY_HOP : route.responseDrop;
    for (let i = 0; i < names.length; i++) {
      const ln = lnames[i]!;
      if (drop.has(ln)) continue;
      if (conn.length > 0 && conn.includes(ln)) continue;
      h += names[i]! + ': ' + values[i]! + '\r\n';
    }
    if (!informational) {
      h += route.responseAdd;
      const per = this.ph!.persistence;
      if (per !== undefined) h += per.commit(this, r, this.srv!, this.pinned, this.lst.proto === 'https');
      if (r.chunked) h += 'Transfer-Encoding: chunked\r\n';
      if (this.lst.exposeServer) h += 'X-Served-By: ' + this.srv!.name + '\r\n';
      if (!this.keepClient) h += 'Connection: close\r\n';
      else if (this.req!.minor === 0) h += 'Connection: keep-alive\r\n';
    }
    h += '\r\n';
    this.bytesOut += h.length;
    this.sentToClient = true;
    this.sock.write(h, 'latin1');
  }

  private relayResponseBody(chunk: Buffer, start: number): void {
    let end = chunk.length;
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
          this.error = 'bad chunked response: ' + (this.resScanner.error ?? '');
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
    if (n > 0) {
      this.bytesOut += n;
      const part = start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end);
      if (!this.sock.write(part) && !done) this.pauseUp();
    }
    if (done) {
      this.resDone = true;
      if (this.reqDone) this.finish();
      else this.finishEarly();
    } else {
      this.setDeadline('response', this.ph!.idleTimeoutMs);
    }
  }

  onUpstreamEnd(up: UpstreamConn): void {
    if (up !== this.up) return;
    if (this.state === St.Tunnel) {
      this.sock.end();
      return;
    }
    if (this.state === St.Exchange && this.res !== undefined && this.resMode === BodyMode.Close) {
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
      this.error = 'connect: ' + ((err as NodeJS.ErrnoException).code ?? err.message);
      return this.connectFailed();
    }
    if (this.state !== St.Exchange) return;
    if (this.res === undefined) {
      this.error ||= 'reset: ' + ((err as NodeJS.ErrnoException).code ?? err.message);
      return this.upstreamFailed(true);
    }
    if (!this.resDone) {
      this.error ||= 'server closed mid-response';
      this.truncate();
    }
  }

  // ======================================================================
  // failures, retries, completion
  // ======================================================================

  /** Connect error or timeout: nothing was sent, so another server may be tried. */
  private connectFailed(): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.releaseServer(false, 'connect');
    if (this.tries <= this.ph!.retries && this.state !== St.Closed) {
      (this.avoid ??= new Set()).add(this.srv!.id);
      this.state = St.Connecting;
      return this.pickAndConnect();
    }
    this.respondError(502, '');
  }

  /**
   * The server failed before a complete response head. Retry when nothing of the response
   * reached the client and either the request never left Portico or it is idempotent with
   * no body; otherwise 502.
   */
  private upstreamFailed(mayRetry: boolean): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    const stale = this.reusedConn && mayRetry;
    this.releaseServer(false, stale ? '' : 'response');
    const safe = mayRetry && !this.sentToClient && this.reqMode === BodyMode.None && isIdempotent(this.method);
    if (safe && this.tries <= this.ph!.retries) {
      if (stale) this.freshOnly = true;
      else (this.avoid ??= new Set()).add(this.srv!.id);
      if (stale) this.tries--; // a stale keep-alive connection is not a try against the server
      this.state = St.Connecting;
      return this.pickAndConnect();
    }
    if (this.sentToClient) return this.truncate();
    this.respondError(502, '');
  }

  /** The response started and cannot complete: cut the client connection so it sees the truncation. */
  private truncate(): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.releaseServer(false, 'response');
    this.finishRecord();
    // What was relayed so far is flushed, then the connection closes before the framing
    // completes: the client sees an incomplete response, never a wrong one.
    this.closeClient();
  }

  /** The request failed after being (partly) sent: answer if possible and close. */
  private failMidRequest(status: number): void {
    this.dropUpstream();
    this.keepClient = false;
    if (!this.sentToClient) this.respondError(status, '');
    else {
      this.finishRecord();
      this.closeClient();
    }
  }

  private abort(why: string): void {
    this.error ||= why;
    this.dropUpstream();
    this.status ||= 499;
    this.finishRecord();
    this.state = St.Closed;
    this.sock.destroy();
  }

  /** Let go of the upstream connection without reuse and release the server. */
  private dropUpstream(): void {
    if (this.queued) {
      this.queued = false;
      this.ph!.pool.leaveQueue(this);
    }
    const up = this.up;
    this.up = undefined;
    if (up !== undefined) up.destroy();
    this.releaseServer(true, '');
  }

  private releaseServer(ok: boolean, failure: FailureKind): void {
    const rt = this.rt;
    if (rt === undefined) return;
    this.rt = undefined;
    if (failure !== '') rt.failures++;
    else if (this.status >= 500) rt.serverErrors++;
    rt.bytesIn += this.bytesIn;
    rt.bytesOut += this.bytesOut;
    this.ph!.pool.release(rt, { ok, latencyMs: this.firstByteMs, bytes: this.bytesIn + this.bytesOut });
    this.ph!.onOutcome?.(rt, failure, this.status);
  }

  /** Sends a response Portico made (no server involved), records the exchange, then keeps or closes the connection. */
  private sendAnswer(text: string, keep: boolean): void {
    this.bytesOut += text.length;
    this.sentToClient = true;
    this.sock.write(text, 'latin1');
    this.finishRecord();
    if (keep) this.nextRequest();
    else this.closeClient();
  }

  /** Portico answers the request itself (error or refusal) and ends or keeps the connection. */
  private respondError(status: number, extra: string): void {
    this.status = status;
    const keep = this.keepClient && this.reqMode === BodyMode.None && this.buf.length === 0;
    const text = errorResponse(status, this.requestId(), keep, extra);
    this.sendAnswer(text, keep);
  }

  /** Over the listener's rate limit: 429 with the seconds until the key has a token again. */
  private limited(waitSec: number): void {
    this.error = 'rate limited';
    this.lst.onRejected('rate-limit');
    this.respondError(429, 'Retry-After: ' + waitSec + '\r\n');
  }

  /** A request refused before it had an exchange (malformed, too large ...): answer and close. */
  private refuse(status: number, reason: string): void {
    this.status = status;
    this.error = reason;
    this.lst.onRejected(reasonKey(status));
    const text = errorResponse(status, this.requestId(), false);
    this.sentToClient = true;
    this.bytesOut += text.length;
    this.sock.write(text, 'latin1');
    if (this.method !== '') this.finishRecord();
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
    this.releaseServer(true, '');
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
    if (this.startedAt === 0) return;
    this.totalMs = performance.now() - this.startedAt;
    this.lst.onDone(this);
    this.startedAt = 0;
  }

  /** Reset the per-request state and look at what the client already sent. */
  private nextRequest(): void {
    this.state = St.Head;
    this.req = undefined;
    this.res = undefined;
    this.routeRef = undefined;
    this.ph = undefined;
    this.srv = undefined;
    this.pinned = undefined;
    this.pinWait = false;
    this.avoid = undefined;
    this.freshOnly = false;
    this.tries = 0;
    this.status = 0;
    this.error = '';
    this.rid = '';
    this.sentToClient = false;
    this.reqSentAny = false;
    this.queueMs = 0;
    this.connectMs = 0;
    this.firstByteMs = 0;
    this.method = '';
    if (this.clientEnded) {
      this.closeClient();
      return;
    }
    if (this.buf.length > 0) {
      this.setDeadline('header', this.lst.limits.headerTimeoutMs);
      this.tryHead();
      if (this.state === St.Head) this.resumeClient();
      return;
    }
    this.setDeadline('idle', this.lst.limits.keepAliveTimeoutMs);
    this.resumeClient();
  }

  private startTunnel(r: ResponseHead, rest: Buffer): void {
    this.state = St.Tunnel;
    this.status = 101;
    this.firstByteMs = performance.now() - this.startedAt;
    let h = 'HTTP/1.1 101 ' + (r.reason === '' ? 'Switching Protocols' : r.reason) + '\r\n';
    for (let i = 0; i < r.names.length; i++) h += r.names[i]! + ': ' + r.values[i]! + '\r\n';
    h += '\r\n';
    this.sentToClient = true;
    this.bytesOut += h.length + rest.length;
    this.sock.write(h, 'latin1');
    if (rest.length > 0) this.sock.write(rest);
    if (this.buf.length > 0) {
      const b = this.buf;
      this.buf = EMPTY;
      this.bytesIn += b.length;
      this.up!.socket.write(b);
    }
    this.reqDone = true;
    this.resumeClient();
    this.setDeadline('tunnel', this.ph!.idleTimeoutMs);
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
        else this.refuse(408, 'request head timeout');
        return;
      case 'body':
        this.error = 'request body timeout';
        this.failMidRequest(408);
        return;
      case 'queue':
        if (this.queued) {
          this.queued = false;
          this.ph!.pool.leaveQueue(this);
          this.queueMs = performance.now() - this.startedAt;
          this.error = 'queue timeout';
          this.respondError(503, 'Retry-After: ' + this.ph!.retryAfterSec + '\r\n');
        }
        return;
      case 'connect':
        if (this.state === St.Connecting) {
          this.error = 'connect timeout';
          this.connectFailed();
        }
        return;
      case 'response':
        this.error = this.res === undefined ? 'response timeout' : 'idle timeout';
        if (this.res === undefined && !this.sentToClient) {
          const up = this.up;
          this.up = undefined;
          up?.destroy();
          this.releaseServer(false, 'response');
          this.keepClient = false;
          this.respondError(504, '');
        } else {
          this.truncate();
        }
        return;
      case 'linger':
        this.sock.destroy();
        return;
      case 'tunnel':
        this.error = 'tunnel idle timeout';
        this.dropUpstream();
        this.finishRecord();
        this.state = St.Closed;
        this.sock.destroy();
        return;
    }
  }

  /** Graceful shutdown: an idle connection is closed now; a busy one after its response. */
  shutdown(): void {
    if (this.idle) this.closeClient();
    else this.keepClient = false;
  }
}

function reasonKey(status: number): string {
  switch (status) {
    case 400:
      return 'bad-request';
    case 408:
      return 'timeout';
    case 413:
      return 'body-too-large';
    case 414:
      return 'uri-too-long';
    case 431:
      return 'header-too-large';
    default:
      return String(status);
  }
}
