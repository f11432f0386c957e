/**
 * A `redirect` listener: every request is answered with a redirect to the chosen server's own
 * URL (its `url`, else http://host:port) followed by the request's path and query. The server is
 * picked by the pool's balancer among its available servers; a pool with none answers 503.
 *
 * It reads requests on raw sockets with the data path's strict parser, so a malformed request
 * gets the same 4xx as on an http listener and the connection is closed. Requests carry no body
 * to anyone: a request with a body is answered and its connection closed. With `tls`, the
 * connections are TLS, terminated as on an https listener (src/tls/termination.ts).
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../observability/logger.js';
import { TlsTermination, type TlsTerminationSettings } from '../../tls/termination.js';
import type { AccessList } from '../../net/access.js';
import { admit, drain, listen, type AcceptObserver } from '../../net/accept.js';
import type { Server } from '../../core/server.js';
import { placeSticky, type Persistence } from '../../persistence/index.js';
import type { Pool } from '../../pool/pool.js';
import { errorResponse } from '../http/error-response.js';
import { parseRequestHead, type HeadLimits, type RequestHead } from '../http/parse-request.js';
import type { RequestView } from '../http/router.js';
import type { ExchangeRecord } from '../../observability/records.js';

export type RedirectStatus = 301 | 302 | 307 | 308;

export interface RedirectLimits extends HeadLimits {
  readonly headerTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxConnections: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
}

export interface RedirectListenerSettings {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly pool: Pool;
  readonly status: RedirectStatus;
  readonly limits: RedirectLimits;
  /** Who may connect; undefined admits every address (and checks nothing). */
  readonly access: AccessList | undefined;
  /** The hash key of a request, for `balance: hash`. */
  readonly hashKey?: ((req: RequestView) => string | undefined) | undefined;
  readonly retryAfterSec: number;
  /** The pool's persistence: a pinned client is sent to its server again (a cookie, a stick table). */
  readonly persistence?: Persistence | undefined;
}

/**
 * Told of connections, refusals and answered requests: the same counters, metrics and access log
 * as the http listener's (RequestStats).
 */
export interface RedirectObserver extends AcceptObserver {
  requestDone(rec: ExchangeRecord): void;
}

const REASON: Record<RedirectStatus, string> = {
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
};

/** Response bytes a client may leave unread before its further requests wait. */
const MAX_UNREAD_OUTPUT = 256 * 1024;
const EMPTY = Buffer.alloc(0);

let requestSeq = 0;
const idPrefix = `r${process.pid.toString(36)}-${Date.now().toString(36)}-`;
const nextRequestId = (): string => idPrefix + (++requestSeq).toString(36);

export class RedirectListener {
  readonly protocol = 'redirect';
  readonly name: string;
  private s: RedirectListenerSettings;
  private readonly observer: RedirectObserver | undefined;
  private server: NetServer | undefined;
  private port: number;
  private readonly sessions = new Set<RedirectSession>();
  /** TLS termination (a `tls` section); undefined: plain HTTP. */
  private readonly tls: TlsTermination | undefined;
  /** Redirects sent, by server name; and requests answered 503. */
  readonly redirects = new Map<string, number>();
  unavailable = 0;

  /** With `tls`, the certificates are loaded now: a CertificateError names a file that does not load. */
  constructor(settings: RedirectListenerSettings, observer?: RedirectObserver, tls?: TlsTerminationSettings, log?: Logger) {
    this.name = settings.name;
    this.s = settings;
    this.port = settings.port;
    this.observer = observer;
    this.tls =
      tls === undefined
        ? undefined
        : new TlsTermination(tls, {
            listener: settings.name,
            alpn: ['http/1.1'],
            handshakeTimeoutMs: settings.limits.headerTimeoutMs,
            onSecure: this.onSecure,
            onHandshakeError: () => this.rejected('tls-handshake'),
            log,
          });
  }

  /** Re-read the certificate files if they changed (what the `reloadCheck` timer does); false without TLS. */
  reloadCertificates(): Promise<boolean> {
    return this.tls === undefined ? Promise.resolve(false) : this.tls.reloadCertificates();
  }

  get address(): { host: string; port: number } {
    return { host: this.s.host, port: this.port };
  }

  /** New pool, status, limits and access lists (reload); the socket and open connections are kept. */
  update(settings: RedirectListenerSettings): void {
    this.s = { ...settings, host: this.s.host, port: this.s.port };
  }

  get settings(): RedirectListenerSettings {
    return this.s;
  }

  async start(): Promise<void> {
    await this.tls?.start();
    const server = createServer({ allowHalfOpen: false, noDelay: true }, this.accept);
    try {
      this.port = await listen(server, this.s.host, this.s.port);
    } catch (err) {
      this.tls?.stop();
      throw err;
    }
    this.server = server;
  }

  private readonly accept = (sock: Socket): void => {
    const s = this.s;
    if (!admit(sock, this.name, this.observer, this.sessions.size + (this.tls?.pending ?? 0), s.limits.maxConnections, s.access, false)) return;
    if (this.tls !== undefined) this.tls.accept(sock);
    else this.open(sock, undefined);
  };

  /** A TLS connection whose handshake is done. */
  private readonly onSecure = (s: TLSSocket): void => {
    s.on('error', noop);
    const n = s.servername;
    this.open(s, typeof n === 'string' && n !== '' ? n.toLowerCase() : undefined);
  };

  private open(sock: Socket, sni: string | undefined): void {
    const session = new RedirectSession(sock, sock.remoteAddress ?? '', this, sni);
    this.sessions.add(session);
    sock.on('close', () => {
      session.clearTimer();
      this.sessions.delete(session);
    });
  }

  /**
   * The response to one parsed request (a redirect, or 503 when no server is available); `rec`
   * is the request, and takes the pool, server and status of the answer. A Promise only when the
   * pool's persistence has to ask a shared store; it never rejects.
   */
  respond(rec: RedirectSession, head: RequestHead, keepAlive: boolean): string | Promise<string> {
    if (head.form === 'authority' || head.form === 'asterisk') {
      this.observer?.rejected(this.name, 'method');
      rec.status = 405;
      rec.error = 'nothing to redirect';
      return errorResponse(405, rec.requestId(), keepAlive, 'Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n');
    }
    rec.pool = this.s.pool.name;
    const per = this.s.persistence;
    if (per === undefined) return this.redirect(rec, head, keepAlive, this.choose(rec), '');
    const placed = placeSticky(per, rec, this.s.pool.current.set, rec.pick, this.tls !== undefined);
    if (placed instanceof Promise) return placed.then((p) => this.redirect(rec, head, keepAlive, p.server, p.headers));
    return this.redirect(rec, head, keepAlive, placed.server, placed.headers);
  }

  /** A redirect to `server` with the header lines `extra` (a cookie that pins the client), or 503 without a server. */
  private redirect(rec: RedirectSession, head: RequestHead, keepAlive: boolean, server: Server | undefined, extra: string): string {
    if (server === undefined) {
      this.unavailable++;
      rec.status = 503;
      rec.error = 'no server available';
      return errorResponse(503, rec.requestId(), keepAlive, `Retry-After: ${this.s.retryAfterSec}\r\n`);
    }
    this.redirects.set(server.name, (this.redirects.get(server.name) ?? 0) + 1);
    // The server's request counter (admin API, live statistics): the clients sent to it.
    const rt = this.s.pool.runtime(server.id);
    if (rt !== undefined) rt.requests++;
    const status = this.s.status;
    rec.server = server.name;
    rec.status = status;
    const location = baseUrlOf(server) + head.path;
    const text = `${status} ${REASON[status]}: ${location}\n`;
    return (
      `HTTP/1.1 ${status} ${REASON[status]}\r\n` +
      `Location: ${location}\r\n` +
      'Cache-Control: no-store\r\n' +
      extra +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n` +
      (keepAlive ? '' : 'Connection: close\r\n') +
      '\r\n' +
      (head.method === 'HEAD' ? '' : text)
    );
  }

  /** The server a request is sent to: the pool's balancer over its available servers. */
  choose(view: RequestView): Server | undefined {
    const hashKey = this.s.hashKey?.(view);
    return this.s.pool.pick({ hashKey, path: view.path });
  }

  rejected(reason: string): void {
    this.observer?.rejected(this.name, reason);
  }

  requestDone(rec: RedirectSession): void {
    this.observer?.requestDone(rec);
  }

  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.tls?.stop();
    for (const s of this.sessions) s.closeWhenIdle();
    // Connections still in their TLS handshake are cut with the rest at the end of the grace period.
    const cut = this.tls === undefined ? undefined : setTimeout(() => this.tls?.cutHandshakes(), graceMs);
    await drain(server, this.sessions, graceMs, destroySession);
    clearTimeout(cut);
  }
}

function destroySession(s: RedirectSession): void {
  s.sock.destroy();
}

function noop(): void {}

const baseUrls = new WeakMap<Server, string>();

/**
 * The base URL a server's redirects point to, without a trailing slash: its `url` in the
 * normalised form of WHATWG URL (punycode host, percent-encoded path), else http://host:port.
 * Computed once per server definition.
 */
export function baseUrlOf(server: Server): string {
  let base = baseUrls.get(server);
  if (base !== undefined) return base;
  const url = server.meta['url'];
  if (url !== undefined) {
    const u = new URL(url);
    base = `${u.protocol}//${u.host}${u.pathname}`;
    if (base.endsWith('/')) base = base.slice(0, -1);
  } else {
    const host = server.host.includes(':') ? `[${server.host}]` : server.host;
    base = `http://${host}:${server.port}`;
  }
  baseUrls.set(server, base);
  return base;
}

/**
 * One client connection: request heads parsed in turn, each answered at once. The session is
 * also the current request's view (for the balancer and persistence) and its record (for the
 * statistics and the access log), as an http session is: nothing is allocated per request for them.
 */
class RedirectSession implements ExchangeRecord, RequestView {
  private buf: Buffer = Buffer.alloc(0);
  private requests = 0;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;
  /** Waiting for the rest of a head that has started (header timeout) rather than for a new request. */
  private inHead = false;
  /** An answer waits for the shared store (persistence); later requests wait in `buf`. */
  private waiting = false;

  // ---- the current request (RequestView and ExchangeRecord) ----
  method = '';
  target = '';
  path = '';
  query = '';
  host = '';
  lnames: readonly string[] = [];
  values: readonly string[] = [];
  readonly route = '';
  pool = '';
  server = '';
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  startedAt = 0;
  readonly queueMs = 0;
  readonly connectMs = 0;
  readonly firstByteMs = 0;
  totalMs = 0;
  readonly tries = 0;
  error = '';
  httpVersion = '1.1';
  private rid = '';
  /** The balancer's pick for this request (persistence calls it when the client is not pinned). */
  readonly pick = (): Server | undefined => this.lst.choose(this);

  constructor(
    readonly sock: Socket,
    readonly clientAddress: string,
    private readonly lst: RedirectListener,
    /** The TLS server name of the connection (TLS listeners), lower-case. */
    readonly sni: string | undefined,
  ) {
    sock.on('data', this.onData);
    this.arm();
  }

  get listener(): string {
    return this.lst.name;
  }

  requestId(): string {
    if (this.rid === '') this.rid = nextRequestId();
    return this.rid;
  }

  header(lname: string): string {
    const names = this.lnames;
    for (let i = 0; i < names.length; i++) if (names[i] === lname) return this.values[i]!;
    return '';
  }

  /** A new request: its record starts (the previous one was handed to the observer). */
  private begin(r: RequestHead): void {
    this.startedAt = performance.now();
    this.method = r.method;
    this.target = r.target;
    const q = r.path.indexOf('?');
    this.path = q < 0 ? r.path : r.path.slice(0, q);
    this.query = q < 0 ? '' : r.path.slice(q + 1);
    this.host = hostOnly(r.host ?? '');
    this.lnames = r.lnames;
    this.values = r.values;
    this.httpVersion = r.minor === 0 ? '1.0' : '1.1';
    this.pool = '';
    this.server = '';
    this.status = 0;
    this.error = '';
    this.rid = '';
    this.bytesIn = r.headEnd;
    this.bytesOut = 0;
  }

  /** The answer `out` is written: the request is recorded. */
  private done(out: string): void {
    this.bytesOut = out.length;
    this.totalMs = performance.now() - this.startedAt;
    this.lst.requestDone(this);
  }

  private arm(): void {
    this.clearTimer();
    const l = this.lst.settings.limits;
    const ms = this.inHead ? l.headerTimeoutMs : l.keepAliveTimeoutMs;
    this.timer = setTimeout(() => {
      if (this.inHead) {
        this.lst.rejected('header-timeout');
        this.sock.end(errorResponse(408, nextRequestId(), false));
        this.sock.destroySoon();
      } else {
        this.sock.destroy();
      }
    }, ms);
    this.timer.unref();
  }

  clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Close now if no request is in progress, else after its response. */
  closeWhenIdle(): void {
    this.closing = true;
    if (!this.inHead && !this.waiting) this.sock.end();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing && !this.inHead && !this.waiting) return; // after a final response: discard the rest
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.waiting) return;
    const limits = this.lst.settings.limits;
    const wasInHead = this.inHead;
    while (this.buf.length > 0 && !this.sock.destroyed) {
      if (this.sock.writableLength > MAX_UNREAD_OUTPUT) {
        // A client that pipelines without reading its responses: read no more until it does.
        this.sock.pause();
        this.sock.once('drain', () => {
          this.sock.resume();
          this.onData(EMPTY);
        });
        return;
      }
      const r = parseRequestHead(this.buf, limits);
      if (r === null) {
        this.inHead = true;
        if (!wasInHead) this.arm(); // the header timeout runs from the first byte of a head
        return;
      }
      this.inHead = false;
      if (!r.ok) {
        this.lst.rejected(`parse-${r.status}`);
        this.finish(errorResponse(r.status, nextRequestId(), false));
        return;
      }
      this.buf = this.buf.subarray(r.headEnd);
      this.requests++;
      const max = limits.maxRequestsPerConnection;
      const hasBody = r.chunked || r.contentLength > 0;
      const keepAlive = r.keepAlive && !hasBody && !this.closing && (max === 0 || this.requests < max);
      this.begin(r);
      const out = this.lst.respond(this, r, keepAlive);
      if (typeof out !== 'string') {
        this.await(out, keepAlive);
        return;
      }
      if (!keepAlive) {
        this.finish(out);
        this.done(out);
        return;
      }
      this.sock.write(out);
      this.done(out);
    }
    this.inHead = false;
    this.arm();
  };

  /** The answer comes from the shared store: read nothing more until it is sent, then go on. */
  private await(out: Promise<string>, keepAlive: boolean): void {
    this.waiting = true;
    this.clearTimer();
    this.sock.pause();
    void out.then((text) => {
      this.waiting = false;
      if (this.sock.destroyed) {
        // The client left while the store answered: recorded as the http listener records it.
        this.status = 499;
        this.error = 'client aborted';
        this.done('');
        return;
      }
      if (!keepAlive) {
        this.finish(text);
        this.done(text);
        return;
      }
      this.sock.write(text);
      this.done(text);
      if (this.closing) return void this.sock.end();
      this.sock.resume();
      this.onData(EMPTY);
    });
  }

  /** Send a last response and close; what the client still sends is read and discarded. */
  private finish(out: string): void {
    this.closing = true;
    this.inHead = false;
    this.buf = Buffer.alloc(0);
    this.clearTimer();
    this.sock.end(out);
    // Linger so that a body still arriving does not turn the close into a reset; then cut.
    this.timer = setTimeout(() => this.sock.destroy(), 2000);
    this.timer.unref();
  }
}

function hostOnly(h: string): string {
  let s = h.toLowerCase();
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    return end < 0 ? s : s.slice(1, end);
  }
  const colon = s.indexOf(':');
  if (colon >= 0) s = s.slice(0, colon);
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

