/**
 * How a request or connection ended when it did not end well: one vocabulary for every data
 * path (http, https, tcp, redirect, dns). An `Outcome` is made only on failure; a request that
 * completes has none. Each code maps, here and nowhere else, to what the rest of Portico needs:
 * the HTTP status of the answer, whether it carries `Retry-After`, the metric reason label
 * (`portico_rejected_total{reason}`, or the rcode of `portico_dns_queries_total`), the
 * access-log text, whether another server may be tried (SPEC §4) and how the server's passive
 * health counts it.
 *
 * Codes are stable: they are part of the API (access log, events) and are never renamed.
 */

/**
 * When a failed try may be repeated on another server (SPEC §4: only when nothing of the request
 * reached a server, or the method is idempotent and no byte of the response reached the client).
 * - `unsent`: nothing of the request left Portico (connect failed): always.
 * - `repeatable`: the request may have reached the server: only an idempotent request without a
 *   body, and only while nothing of the response reached the client.
 * - `never`.
 */
export type RetryRule = 'unsent' | 'repeatable' | 'never';

/** How a server's passive health counts the outcome: '' (not the server's fault), or the failure kind. */
export type ServerFailure = '' | 'connect' | 'response';

export interface OutcomeSpec {
  /** The status of the answer Portico sends, or 0 when it sends none (the answer was under way, or not HTTP). */
  readonly status: number;
  /** The answer carries `Retry-After` (the pool's `retryAfter`, or the rate limit's wait). */
  readonly retryAfter: boolean;
  /** The metric reason label (SPEC §6). For DNS, the rcode label. */
  readonly reason: string;
  /** The access-log text (a detail, when there is one, follows after ': '). */
  readonly text: string;
  readonly retry: RetryRule;
  readonly server: ServerFailure;
}

function spec(status: number, reason: string, text: string, more?: Partial<OutcomeSpec>): OutcomeSpec {
  return Object.freeze({ status, retryAfter: false, reason, text, retry: 'never' as RetryRule, server: '' as ServerFailure, ...more });
}

/** The catalogue: every code, with its mapping. */
const CATALOGUE = {
  // ---- the client's request refused before any server (client errors) ----
  'bad-request': spec(400, 'bad-request', 'bad request'),
  'bad-request-body': spec(400, 'bad-request', 'bad chunked request body'),
  'method-not-allowed': spec(405, 'method', 'method not allowed'),
  'request-timeout': spec(408, 'timeout', 'request head timeout'),
  'body-timeout': spec(408, 'timeout', 'request body timeout'),
  'body-too-large': spec(413, 'body-too-large', 'body too large'),
  'uri-too-long': spec(414, 'uri-too-long', 'uri too long'),
  'header-too-large': spec(431, 'header-too-large', 'header too large'),
  'not-implemented': spec(501, 'not-implemented', 'not implemented'),
  'version-not-supported': spec(505, 'version-not-supported', 'HTTP version not supported'),
  'rate-limited': spec(429, 'rate-limit', 'rate limited', { retryAfter: true }),
  /** A phase refused the request (an access rule, a WAF). */
  'forbidden': spec(403, 'forbidden', 'forbidden'),

  // ---- refused at accept, before a request or a byte (every listener kind) ----
  'max-connections': spec(0, 'max-connections', 'max connections'),
  'access-denied': spec(0, 'access', 'access denied'),
  'proxy-header-timeout': spec(0, 'timeout', 'PROXY header timeout'),
  'bad-proxy-header': spec(0, 'bad-proxy-header', 'bad PROXY header'),
  'tls-handshake': spec(0, 'tls-handshake', 'TLS handshake failed'),
  'hello-timeout': spec(0, 'timeout', 'ClientHello timeout'),
  'bad-client-hello': spec(0, 'bad-client-hello', 'bad ClientHello'),

  // ---- no server could be had ----
  /** No route matched; 503, or 404 where the listener says so (`noRouteStatus`). */
  'no-route': spec(503, 'no-route', 'no route'),
  'no-server': spec(503, 'no-server', 'no available server', { retryAfter: true }),
  'queue-full': spec(503, 'queue-full', 'queue full', { retryAfter: true }),
  'queue-timeout': spec(503, 'queue-timeout', 'queue timeout', { retryAfter: true }),

  /** A phase of the exchange failed (its promise rejected): a bug in the phase, answered 500. */
  'phase-failed': spec(500, 'phase-failed', 'phase failed'),

  // ---- the server failed ----
  'connect-failed': spec(502, 'connect-failed', 'connect', { retry: 'unsent', server: 'connect' }),
  'connect-timeout': spec(502, 'connect-failed', 'connect timeout', { retry: 'unsent', server: 'connect' }),
  /** Every try failed and no other server is left to try. */
  'upstream-failed': spec(502, 'connect-failed', 'upstream failed'),
  /** Reset or closed before a complete response head. */
  'upstream-reset': spec(502, 'upstream-reset', 'reset', { retry: 'repeatable', server: 'response' }),
  'bad-response': spec(502, 'bad-response', 'bad response head', { server: 'response' }),
  'unsolicited-upgrade': spec(502, 'bad-response', 'unsolicited 101', { server: 'response' }),
  'chunked-to-http10': spec(502, 'bad-response', 'chunked response to an HTTP/1.0 request', { server: 'response' }),
  'response-timeout': spec(504, 'response-timeout', 'response timeout', { server: 'response' }),
  /** The response started and could not complete: the client connection is cut (status stays the server's). */
  'bad-response-body': spec(0, 'bad-response', 'bad chunked response', { server: 'response' }),
  'response-truncated': spec(0, 'upstream-reset', 'server closed mid-response', { server: 'response' }),
  'idle-timeout': spec(0, 'idle-timeout', 'idle timeout', { server: 'response' }),
  /** tcp: the server connection failed after it was open. */
  'server-reset': spec(0, 'upstream-reset', 'server'),

  // ---- the client went away ----
  'client-aborted': spec(499, 'client-aborted', 'client aborted'),
  'client-closed': spec(499, 'client-aborted', 'client closed'),
  'client-closed-body': spec(499, 'client-aborted', 'client closed during request body'),
  'client-reset': spec(0, 'client-aborted', 'client reset'),
  'tunnel-idle-timeout': spec(0, 'idle-timeout', 'tunnel idle timeout'),

  // ---- DNS: answers that are not answers (the label is the rcode) ----
  'dns-formerr': spec(0, 'FORMERR', 'malformed query'),
  'dns-servfail': spec(0, 'SERVFAIL', 'server failure'),
  'dns-notimp': spec(0, 'NOTIMP', 'opcode not implemented'),
  'dns-refused': spec(0, 'REFUSED', 'refused'),
  'dns-badvers': spec(0, 'BADVERS', 'unsupported EDNS version'),
  'dns-dropped': spec(0, 'DROPPED', 'dropped'),
  'dns-rate-limited': spec(0, 'RATE-LIMITED', 'dropped by response-rate limiting'),
} satisfies Record<string, OutcomeSpec>;

export type OutcomeCode = keyof typeof CATALOGUE;

/** Every code, for documentation and tests. */
export const OUTCOME_CODES: readonly OutcomeCode[] = Object.freeze(Object.keys(CATALOGUE) as OutcomeCode[]);

/**
 * One failure: a code and, for some, a detail (the socket error code, the parser's reason).
 * Immutable; `Outcome.of(code)` without a detail gives a shared instance, so the common
 * failures allocate nothing.
 */
export class Outcome {
  readonly code: OutcomeCode;
  /** What the code does not say ('' when nothing): 'ECONNREFUSED', 'invalid method' ... */
  readonly detail: string;
  readonly spec: OutcomeSpec;

  private constructor(code: OutcomeCode, detail: string) {
    this.code = code;
    this.detail = detail;
    this.spec = CATALOGUE[code];
  }

  private static readonly shared = new Map<OutcomeCode, Outcome>();

  static of(code: OutcomeCode, detail = ''): Outcome {
    if (detail !== '') return new Outcome(code, detail);
    let o = Outcome.shared.get(code);
    if (o === undefined) {
      o = new Outcome(code, '');
      Outcome.shared.set(code, o);
    }
    return o;
  }

  /** A failure of a socket: the detail is its error code ('ECONNREFUSED'), else its message. */
  static ofError(code: OutcomeCode, err: Error): Outcome {
    return Outcome.of(code, (err as Error & { code?: unknown }).code?.toString() ?? err.message);
  }

  /** The metric reason label. */
  get reason(): string {
    return this.spec.reason;
  }

  /** The access-log text: the code's text, then the detail. */
  get text(): string {
    return this.detail === '' ? this.spec.text : this.spec.text + ': ' + this.detail;
  }

  toString(): string {
    return this.text;
  }
}

/** The status of Portico's answer to a request that ended with `o`; `noRouteStatus` is the listener's (404 or 503). */
export function httpStatus(o: Outcome, noRouteStatus: number = 503): number {
  return o.code === 'no-route' ? noRouteStatus : o.spec.status;
}

/** The extra header lines of the answer: `Retry-After` where the outcome carries one, else ''. */
export function answerHeaders(o: Outcome, retryAfterSec: number): string {
  return o.spec.retryAfter ? 'Retry-After: ' + retryAfterSec + '\r\n' : '';
}

/**
 * SPEC §4's retry policy: may the request that failed with `o` be tried on another server?
 * `repeatable`: the request is idempotent, has no body, and nothing of the response reached the
 * client. The number of retries left is the caller's (the pool's `retries`).
 */
export function retryAllowed(o: Outcome, repeatable: boolean): boolean {
  const r = o.spec.retry;
  return r === 'unsent' || (r === 'repeatable' && repeatable);
}

/**
 * The outcome of a request head the parser refused, by the status the parser gave; `reason`
 * (the parser's words) becomes the detail.
 */
export function refusal(status: number, reason: string): Outcome {
  return Outcome.of(REFUSALS.get(status) ?? 'bad-request', reason);
}

const REFUSALS: ReadonlyMap<number, OutcomeCode> = new Map<number, OutcomeCode>([
  [400, 'bad-request'],
  [405, 'method-not-allowed'],
  [408, 'request-timeout'],
  [413, 'body-too-large'],
  [414, 'uri-too-long'],
  [431, 'header-too-large'],
  [501, 'not-implemented'],
  [505, 'version-not-supported'],
]);

/**
 * The outcome of a DNS response by its rcode (RFC 1035 §4.1.1, RFC 6891 §9), or undefined for an
 * answer (NOERROR, NXDOMAIN) and for an rcode Portico never sends.
 */
export function dnsFailure(rcode: number): Outcome | undefined {
  switch (rcode) {
    case 1:
      return Outcome.of('dns-formerr');
    case 2:
      return Outcome.of('dns-servfail');
    case 4:
      return Outcome.of('dns-notimp');
    case 5:
      return Outcome.of('dns-refused');
    case 16:
      return Outcome.of('dns-badvers');
    default:
      return undefined;
  }
}
