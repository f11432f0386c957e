/**
 * What makes an http (or https) listener a `redirect` listener: two phases of the one HTTP
 * session (src/proxy/http/phases.ts). The session parses, normalises, routes, picks the server
 * (the pool's balancer, its hash key and persistence pin) and answers; these phases only say
 * that the answer is a redirect to the picked server's own URL instead of a forwarded request.
 */
import { Outcome } from '../../core/outcome.js';
import type { Server } from '../../core/server.js';
import type { Exchange } from '../http/exchange.js';
import type { ErrorAnswer, HttpPhase, RenderedAnswer } from '../http/phases.js';

export type RedirectStatus = 301 | 302 | 307 | 308;

const REASON: Readonly<Record<RedirectStatus, string>> = {
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
};

/** `OPTIONS *` names no resource: there is nothing to redirect (405, counted under `method`). */
const NOTHING_TO_REDIRECT: ErrorAnswer = Object.freeze({
  outcome: Outcome.of('method-not-allowed', 'nothing to redirect'),
  headers: 'Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n',
  rejected: true,
});

/**
 * Before routing: a request whose target is no path (`OPTIONS *`) is answered 405. Run at the
 * listener's level so the record names no pool, as no server was considered.
 */
export const REDIRECT_TARGET_PHASE: HttpPhase = Object.freeze({
  name: 'redirect-target',
  onRequest(ex: Exchange): ErrorAnswer | undefined {
    return ex.head!.form === 'asterisk' ? NOTHING_TO_REDIRECT : undefined;
  },
});

/**
 * The route's answer: once the session picked a server (`onPicked`), a redirect to its URL
 * followed by the request's normalised path and query, with the pool's persistence headers (a
 * cookie that pins the client) and `Cache-Control: no-store`. The server is never contacted (the
 * session gives it back at once); its request counter (admin API, live statistics) counts the
 * clients sent to it. The phase is its own RenderedAnswer: nothing is allocated per request but
 * the response text.
 */
export class RedirectPhase implements HttpPhase, RenderedAnswer {
  readonly name = 'redirect';
  readonly status: RedirectStatus;
  private readonly statusLine: string;

  constructor(status: RedirectStatus) {
    this.status = status;
    this.statusLine = `HTTP/1.1 ${status} ${REASON[status]}`;
  }

  onPicked(): RenderedAnswer {
    return this;
  }

  /** The session passes its Exchange (an AnswerRequest) with the server it picked. */
  render(ex: Exchange, _scheme: string, keepAlive: boolean): string {
    const server = ex.picked!;
    const per = ex.poolHandle!.persistence;
    const pin = per === undefined ? '' : per.commit(ex, undefined, server, ex.pinned, ex.scheme === 'https');
    const location = baseUrlOf(server) + ex.path + (ex.query === '' ? '' : '?' + ex.query);
    const text = this.statusLine.slice(9) + ': ' + location + '\n';
    return (
      this.statusLine +
      '\r\nLocation: ' +
      location +
      '\r\nCache-Control: no-store\r\n' +
      pin +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      'Content-Length: ' +
      Buffer.byteLength(text) +
      '\r\n' +
      (keepAlive ? '' : 'Connection: close\r\n') +
      '\r\n' +
      (ex.method === 'HEAD' ? '' : text)
    );
  }
}

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
