import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { CertificateStore } from '../tls/cert-store.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { AdminError, badRequest } from './admin-error.js';
import { AdminRouter, type AdminContext, type AdminHandler, type AdminMethod } from './router.js';

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  /** Bearer token that mutations must carry; '' = none required. */
  readonly token: string;
  /** Host names (besides IP literals and `localhost`) that the Host header may carry. */
  readonly allowedHosts?: readonly string[];
  /** Largest request body accepted (bytes). */
  readonly maxBodyBytes?: number;
  readonly logger?: Logger;
  /** Serve HTTPS with this certificate (re-read when its files change); undefined = plain HTTP. */
  readonly tls?: AdminTlsOptions | undefined;
  /** Reads (GET, HEAD) need the token too, except the paths in `openReads`. */
  readonly protectReads?: boolean | undefined;
  /** Paths (exact) readable without the token when `protectReads` is on. */
  readonly openReads?: readonly string[] | undefined;
  /** Deadlines on client connections; DEFAULT_ADMIN_TIMEOUTS when absent. */
  readonly timeouts?: AdminTimeouts | undefined;
}

/**
 * Deadlines on the admin API's client connections (ms), kept by Portico's own timers: Node.js's
 * `headersTimeout` and `requestTimeout` are checked only every 30 s, so a client that never
 * finished its head stayed 35 to 40 s.
 */
export interface AdminTimeouts {
  /** To finish the TLS handshake, then each request head, from the connection's start or the end of the previous response. */
  readonly headerMs: number;
  /** To send a request's whole body once its head has arrived. */
  readonly bodyMs: number;
  /** Idle time between two requests on one connection. */
  readonly keepAliveMs: number;
}

export const DEFAULT_ADMIN_TIMEOUTS: AdminTimeouts = { headerMs: 10_000, bodyMs: 30_000, keepAliveMs: 5_000 };

/** A client connection's deadline: the timer for its next request head, and its requests not yet answered. */
interface ConnectionDeadline {
  timer: NodeJS.Timeout | undefined;
  inflight: number;
}

/** The admin API's certificate: PEM files, and how often they are checked for changes (0 = never). */
export interface AdminTlsOptions {
  readonly cert: string;
  readonly key: string;
  readonly reloadCheckMs: number;
}

/** What is readable without the token when reads are protected: the readiness check (keepalived). */
export const ALWAYS_OPEN_READS = ['/api/v1/status/ready'] as const;

/** A JSON answer with a status other than 200 (for example 201 or 202). */
export class JsonReply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/**
 * The admin HTTP server (node:http; not on the data path), a ListenerService of the app. Other parts of Portico mount
 * their endpoints with `route(method, pattern, handler)`; see src/admin/README.md.
 *
 * Every request passes, in order: the Host allowlist (against DNS rebinding), then for a
 * mutation (any method but GET/HEAD) the bearer token (constant-time compare) and the
 * Origin check (against cross-site form posts), for a read with `protectReads` the bearer
 * token (but on the open paths), then the route's handler. With `tls` it is an HTTPS server
 * whose certificate comes from src/tls's CertificateStore and is re-read when its files change.
 */
export class AdminServer {
  readonly name = 'admin';
  readonly protocol: 'http' | 'https';
  readonly router = new AdminRouter();
  private readonly host: string;
  private port: number;
  private tokenDigest: Buffer | undefined;
  private allowed: Set<string>;
  private protectReads: boolean;
  private openReads: ReadonlySet<string>;
  /** With admin.tls: the certificate (src/tls's store, as an https listener loads it). */
  readonly certificates: CertificateStore | undefined;
  private readonly tls: AdminTlsOptions | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private maxBodyBytes: number;
  private timeouts: AdminTimeouts;
  private readonly deadlines = new WeakMap<Socket, ConnectionDeadline>();
  private readonly log: Logger;
  private server: HttpServer | undefined;
  /** The same server when it speaks HTTPS (its certificate is replaced on reload). */
  private secure: HttpsServer | undefined;
  /** Aborted on stop, so long-lived handlers (SSE) end. */
  private lifetime = new AbortController();

  constructor(options: AdminServerOptions) {
    this.host = options.host;
    this.port = options.port;
    this.maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.timeouts = options.timeouts ?? DEFAULT_ADMIN_TIMEOUTS;
    this.log = options.logger ?? silentLogger;
    this.tokenDigest = digestOf(options.token);
    this.allowed = allowedSet(options.host, options.allowedHosts ?? []);
    this.protectReads = options.protectReads === true;
    this.openReads = new Set([...ALWAYS_OPEN_READS, ...(options.openReads ?? [])]);
    this.tls = options.tls;
    this.protocol = options.tls === undefined ? 'http' : 'https';
    // Loaded now: a CertificateError names the file that does not load.
    if (options.tls !== undefined) {
      this.certificates = new CertificateStore([{ cert: options.tls.cert, key: options.tls.key }], { minVersion: 'TLSv1.2' }, 'portico:admin');
    }
  }

  /** Mount a handler: `admin.route('GET', '/metrics', handler)`. Patterns may hold `{param}` segments. */
  route(method: AdminMethod, pattern: string, handler: AdminHandler): void {
    this.router.route(method, pattern, handler);
  }

  /** Replace the token, the Host allowlist, what reads need, the deadlines and the body limit (reload); the socket is kept. */
  update(options: {
    token: string;
    allowedHosts?: readonly string[];
    protectReads?: boolean;
    openReads?: readonly string[];
    timeouts?: AdminTimeouts | undefined;
    maxBodyBytes?: number | undefined;
  }): void {
    if (options.timeouts !== undefined) {
      this.timeouts = options.timeouts;
      if (this.server !== undefined) this.server.keepAliveTimeout = options.timeouts.keepAliveMs;
    }
    if (options.maxBodyBytes !== undefined) this.maxBodyBytes = options.maxBodyBytes;
    this.tokenDigest = digestOf(options.token);
    this.allowed = allowedSet(this.host, options.allowedHosts ?? []);
    this.protectReads = options.protectReads === true;
    this.openReads = new Set([...ALWAYS_OPEN_READS, ...(options.openReads ?? [])]);
  }

  /** True when mutations need a bearer token. */
  get hasToken(): boolean {
    return this.tokenDigest !== undefined;
  }

  get address(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  /** The base URL, e.g. `http://127.0.0.1:9090`. */
  get url(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.protocol}://${h}:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return;
    this.lifetime = new AbortController();
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      this.onRequestDeadlines(req, res);
      void this.handle(req, res);
    };
    const store = this.certificates;
    // Node.js's own head and request timeouts are off: they are checked only every 30 s. Portico's timers keep them (onConnection).
    const own = { requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: this.timeouts.keepAliveMs };
    let server: HttpServer;
    if (store === undefined) {
      server = createServer(own, onRequest);
      server.on('connection', this.onConnection);
    } else {
      await store.remember();
      const def = store.defaultCertificate;
      server = this.secure = createHttpsServer(
        {
          ...own,
          ...store.sharedOptions,
          cert: def.cert,
          key: def.key,
          handshakeTimeout: this.timeouts.headerMs,
        },
        onRequest,
      );
      // The head deadline starts once the handshake (under handshakeTimeout) is done.
      server.on('secureConnection', this.onConnection);
      // A handshake that fails (plain HTTP on this port, a client that does not trust the certificate) closes the connection.
      server.on('tlsClientError', (_err, sock) => sock.destroy());
    }
    server.on('clientError', (_err, sock) => sock.destroy());
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: NodeJS.ErrnoException): void => {
        const hint = err.code === 'EADDRINUSE' ? ' (set admin.listen to another address, or admin.enabled: false)' : '';
        reject(new Error(`admin API cannot listen on ${this.url}: ${err.code ?? err.message}${hint}`, { cause: err }));
      };
      server.once('error', onErr);
      server.listen({ host: this.host, port: this.port }, () => {
        server.off('error', onErr);
        resolve();
      });
    });
    server.on('error', (err) => this.log.warn('admin API socket error', { error: String(err) }));
    const a = server.address();
    if (a !== null && typeof a === 'object') this.port = a.port;
    this.server = server;
    if (store !== undefined && this.tls !== undefined && this.tls.reloadCheckMs > 0) {
      this.reloadTimer = setInterval(() => void this.reloadCertificate(), this.tls.reloadCheckMs);
      this.reloadTimer.unref();
    }
  }

  /**
   * Re-read the certificate files if they changed: new connections get the new certificate at
   * once (connections already made keep theirs). Files that do not load keep the old one.
   */
  async reloadCertificate(): Promise<boolean> {
    const store = this.certificates;
    const server = this.secure;
    if (store === undefined || server === undefined) return false;
    try {
      if (!(await store.reloadIfChanged())) return false;
      const def = store.defaultCertificate;
      server.setSecureContext({ ...store.sharedOptions, cert: def.cert, key: def.key });
      this.log.info('admin API: certificate reloaded', { names: def.names.join(','), notAfter: def.notAfter });
      return true;
    } catch (err) {
      this.log.error('admin API: certificate not reloaded (the previous one stays)', { error: (err as Error).message });
      return false;
    }
  }

  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.secure = undefined;
    if (this.reloadTimer !== undefined) clearInterval(this.reloadTimer);
    this.reloadTimer = undefined;
    this.lifetime.abort();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), Math.max(0, graceMs));
    await closed;
    clearTimeout(timer);
  }

  /** A new client connection (after its handshake with TLS): it has `headerMs` to send a whole request head. */
  private readonly onConnection = (sock: Socket): void => {
    const d: ConnectionDeadline = { timer: undefined, inflight: 0 };
    this.deadlines.set(sock, d);
    this.armHead(sock, d);
    sock.once('close', () => clearTimeout(d.timer));
  };

  private armHead(sock: Socket, d: ConnectionDeadline): void {
    clearTimeout(d.timer);
    d.timer = setTimeout(() => sock.destroy(), this.timeouts.headerMs);
    d.timer.unref();
  }

  /**
   * A request head arrived: the head deadline stops until its response (and those of requests
   * pipelined behind it) are done; the body must arrive within `bodyMs`.
   */
  private onRequestDeadlines(req: IncomingMessage, res: ServerResponse): void {
    const sock = req.socket;
    const d = this.deadlines.get(sock);
    if (d !== undefined) {
      clearTimeout(d.timer);
      d.timer = undefined;
      d.inflight++;
      res.once('close', () => {
        d.inflight--;
        if (d.inflight === 0 && !sock.destroyed) this.armHead(sock, d);
      });
    }
    const body = setTimeout(() => {
      if (!req.complete) sock.destroy();
    }, this.timeouts.bodyMs);
    body.unref();
    res.once('close', () => clearTimeout(body));
    req.once('end', () => clearTimeout(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const method = req.method ?? 'GET';
      const refused = refusedTarget(req.url ?? '');
      if (refused !== undefined) throw badRequest(refused);
      const hostname = hostnameOf(req.headers.host);
      if (hostname === undefined) throw badRequest('the request has no valid Host header');
      if (!this.isAllowedHost(hostname)) {
        throw new AdminError(403, 'LB_ADMIN_FORBIDDEN', `Host ${JSON.stringify(hostname)} is not allowed (admin.allowedHosts lists the names this API answers to)`);
      }
      const mutation = method !== 'GET' && method !== 'HEAD';
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      if (mutation) this.checkMutation(req);
      else if (this.protectReads && !this.openReads.has(url.pathname) && !isDashboardAsset(url.pathname)) this.checkToken(req, 'this read');
      const m = this.router.match(method, url.pathname);
      if (m.kind === 'not-found') throw new AdminError(404, 'LB_ADMIN_NOT_FOUND', `no endpoint ${url.pathname}`);
      if (m.kind === 'bad-path') throw badRequest(`malformed path ${url.pathname}`);
      if (m.kind === 'method-not-allowed') {
        res.setHeader('allow', m.allow.join(', '));
        throw new AdminError(405, 'LB_ADMIN_METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname} (allowed: ${m.allow.join(', ')})`);
      }
      const request = new AbortController();
      const onStop = (): void => request.abort();
      this.lifetime.signal.addEventListener('abort', onStop, { once: true });
      res.once('close', () => {
        request.abort();
        this.lifetime.signal.removeEventListener('abort', onStop);
      });
      const ctx: AdminContext = { url, params: m.params, signal: request.signal, body: () => this.readJson(req) };
      const out = await m.handler(req, res, ctx);
      if (out === undefined) {
        if (!mutation) req.resume();
        return; // the handler wrote (or is writing) the response itself
      }
      if (out instanceof JsonReply) sendJson(res, out.status, out.body, method === 'HEAD');
      else sendJson(res, 200, out, method === 'HEAD');
    } catch (err) {
      const e =
        err instanceof AdminError ? err : new AdminError(500, 'LB_ADMIN_INTERNAL', 'internal error in the admin API (see the log)');
      if (!(err instanceof AdminError)) this.log.error('admin API handler failed', { path: req.url, error: String((err as Error)?.stack ?? err) });
      if (e.status === 401) res.setHeader('www-authenticate', 'Bearer realm="portico"');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, e.status, e.toJSON(), req.method === 'HEAD');
    }
  }

  private isAllowedHost(hostname: string): boolean {
    // An IP literal cannot be rebound; a name must be localhost, the listen host or listed.
    return isIP(hostname) !== 0 || this.allowed.has(hostname);
  }

  /** The bearer token, when admin.token is set (constant-time compare of digests). */
  private checkToken(req: IncomingMessage, what: string): void {
    const want = this.tokenDigest;
    if (want === undefined) return;
    const h = req.headers.authorization;
    const given = h !== undefined && /^bearer /i.test(h) ? h.slice(7).trim() : undefined;
    if (given === undefined) throw new AdminError(401, 'LB_ADMIN_UNAUTHORIZED', `${what} needs Authorization: Bearer TOKEN (admin.token)`);
    if (!timingSafeEqual(digestOf(given) ?? EMPTY_DIGEST, want)) {
      throw new AdminError(401, 'LB_ADMIN_UNAUTHORIZED', 'the bearer token is not the admin token');
    }
  }

  private checkMutation(req: IncomingMessage): void {
    this.checkToken(req, 'this change');
    // A browser page on another site may POST here (a "simple" request needs no preflight):
    // browsers say where it comes from, and only pages served under an allowed host may change anything.
    if (req.headers['sec-fetch-site'] === 'cross-site') throw new AdminError(403, 'LB_ADMIN_FORBIDDEN', 'cross-site requests may not change anything');
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let host: string | undefined;
      try {
        host = origin === 'null' ? undefined : hostnameOf(new URL(origin).host);
      } catch {
        host = undefined;
      }
      if (host === undefined || !this.isAllowedHost(host)) {
        throw new AdminError(403, 'LB_ADMIN_FORBIDDEN', `requests from origin ${origin} may not change anything`);
      }
    }
  }

  private async readJson(req: IncomingMessage): Promise<unknown> {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > this.maxBodyBytes) throw new AdminError(413, 'LB_ADMIN_TOO_LARGE', `the body is larger than ${this.maxBodyBytes} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > this.maxBodyBytes) throw new AdminError(413, 'LB_ADMIN_TOO_LARGE', `the body is larger than ${this.maxBodyBytes} bytes`);
      chunks.push(c);
    }
    if (size === 0) return undefined;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && !type.endsWith('+json')) {
      throw new AdminError(415, 'LB_ADMIN_UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (Content-Type: application/json)');
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch (err) {
      throw badRequest(`the body is not valid JSON: ${(err as Error).message}`);
    }
  }
}

/**
 * Why a request target is refused, or undefined when it is a plain path: the admin API takes
 * origin-form targets only (not starting with `//`), and no dot segment (`.`, `..`, also percent-encoded as `%2e`), no
 * encoded slash or backslash, no backslash and no NUL in any segment. The URL parser would
 * otherwise resolve `/api/v1/%2e%2e/x` to `/api/x`, and a `{param}` would carry `../`.
 */
export function refusedTarget(target: string): string | undefined {
  if (!target.startsWith('/')) return 'the request target must be a path starting with /';
  // `//host/x` would be read as a network-path reference (another host) by the URL parser.
  if (target.startsWith('//')) return 'the path must not start with //';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (path.includes('\\')) return 'a backslash in the path';
  for (const seg of path.split('/')) {
    if (seg === '') continue;
    let d: string;
    try {
      d = seg.includes('%') ? decodeURIComponent(seg) : seg;
    } catch {
      return 'malformed percent-encoding in the path';
    }
    if (d === '.' || d === '..') return 'a dot segment (. or ..) in the path';
    if (d.includes('/') || d.includes('\\') || d.includes('\0')) return 'an encoded /, \\ or NUL in the path';
  }
  return undefined;
}

/**
 * The dashboard's page and its static files (`/`, `/dashboard/{file}`): the same for everyone and
 * holding no state of this node, they load without the token so that the page can ask for it.
 */
function isDashboardAsset(path: string): boolean {
  return path === '/' || path.startsWith('/dashboard/');
}

/** Write `body` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text) });
  res.end(headOnly ? undefined : text);
}

const EMPTY_DIGEST = createHash('sha256').update('').digest();

function digestOf(token: string): Buffer | undefined {
  const t = token.trim();
  return t === '' ? undefined : createHash('sha256').update(t).digest();
}

function allowedSet(listenHost: string, extra: readonly string[]): Set<string> {
  const out = new Set(['localhost', ...extra.map((h) => h.toLowerCase())]);
  if (isIP(listenHost) === 0) out.add(listenHost.toLowerCase());
  return out;
}

/** The host name of a Host header value (`a.b:9090` → `a.b`, `[::1]:9090` → `::1`); undefined when malformed. */
export function hostnameOf(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return h.slice(1, end);
  }
  const colon = h.indexOf(':');
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(h.slice(colon + 1))) return undefined;
    h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h === '' ? undefined : h;
}
