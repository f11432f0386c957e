/**
 * The phases of an HTTP exchange: where a feature (rate limit, persistence, forwarding headers,
 * a cache, compression ...) joins the request flow without an edit to the session. In the spirit of
 * Pingora's `ProxyHttp`, HAProxy's filters and Fastify's hooks, sized for a proxy that relays
 * bytes: a phase sees the parsed heads and returns its decision; the session keeps the transport
 * (framing, back-pressure, deadlines) and applies what the phases decided.
 *
 * In order, for one request (HttpSession runs them; h2 streams reach it through H2StreamSocket, so
 * the phases see h2 and HTTP/1.1 requests alike):
 *
 *   listener.phases   onRequest        before routing (rate limit)
 *   route.phases      onRequest        after routing: continue, answer, or wait for a promise
 *                     upstreamHead     header lines added to the request toward the server (once;
 *                                      every try sends the same head)
 *                     onPicked         a server was picked (each try): go on to it, or answer instead
 *                     onResponseHead   header lines added to the response, or answer instead
 *                     onResponseBody   body bytes toward the client: observe or replace
 *                     onStreamedAnswer a phase's streamed answer (a cache hit) on its way out: wrap it
 *                     onAttemptDone    a try on a server ended (passive health)
 *                     onDone           the exchange ended, answered or failed
 *
 * Phases are compiled once at config load into a PhaseList per listener and per route
 * (`compilePhases`); a route without phases shares NO_PHASES and the session skips every hook.
 * A phase object is shared by all requests of its route: per-request state lives on the Exchange.
 */
import { Outcome } from '../../core/outcome.js';
import type { FailureKind } from '../../health/outlier.js';
import type { ServerRuntime } from '../../pool/server-runtime.js';
import type { Exchange } from './exchange.js';
import type { ResponseHead } from './parse-response.js';
import type { AnswerRequest } from './route-actions.js';

/** A response Portico renders itself (a route's redirect or respond): the whole response, head and body. */
export interface RenderedAnswer {
  readonly status: number;
  /** The response as a latin1 string of its bytes; `keepAlive` false: it ends with `Connection: close`. */
  render(req: AnswerRequest, scheme: string, keepAlive: boolean): string;
}

/** An error page Portico makes (errorResponse) for a request that failed with `outcome`. */
export interface ErrorAnswer {
  readonly render?: undefined;
  /** How the request failed: its status, access-log text and metric reason label (core/outcome.ts). */
  readonly outcome: Outcome;
  /** Extra header lines (each ending in CRLF), e.g. Retry-After; '' for none. */
  readonly headers: string;
  /** Counted as a refusal (portico_rejected_total, under the outcome's reason label). */
  readonly rejected?: boolean | undefined;
}

/**
 * Where a streamed answer's body goes. The session frames it (Content-Length from the head, or
 * chunked to an HTTP/1.1 client, close-delimited to HTTP/1.0) and applies back-pressure.
 */
export interface AnswerSink {
  /** Payload bytes; false when the client's buffer is full: send more after `resume()`. */
  answerData(data: Buffer): boolean;
  /** The body is complete. */
  answerEnd(): void;
  /** The body cannot be completed (its source failed): the client connection is cut. */
  answerAbort(): void;
}

/**
 * An answer whose body is sent as it becomes available (a cache hit, a request joined to a fetch
 * in progress): the head at once, then bytes through an AnswerSink.
 */
export interface StreamedAnswer {
  readonly status: number;
  readonly render?: undefined;
  /** Status line and header lines (each ending in CRLF), without Transfer-Encoding or Connection. */
  head(): string;
  /** The head carries Content-Length (the body's size is known); false: the session frames the body. */
  readonly sized: boolean;
  /** There is a body to send (false for HEAD, 304, 204). */
  readonly hasBody: boolean;
  /** Set when the answer is a stored object's whole body (not a range, not HEAD): its kept variants. */
  readonly variants?: AnswerVariants | undefined;
  /**
   * The whole response as one buffer, when the source has it at hand: `head()`, the blank line
   * and the body (a cache hit). Asked only where the session adds no field of its own (a
   * keep-alive HTTP/1.1 client, `sized`); the session then sends it in one write instead of
   * calling `start`. Undefined: send as usual.
   */
  wire?(): Buffer | undefined;
  /**
   * The same answer under another head (for a phase that rewrites header fields only), keeping
   * what the answer can do (`wire`); undefined when it cannot.
   */
  withHead?(head: string): StreamedAnswer | undefined;
  /** Start sending into `sink` (after the head was written). */
  start(sink: AnswerSink): void;
  /** The client drained: send more. */
  resume(): void;
  /** The client left before the end: stop, release what was held. */
  cancel(): void;
}

/**
 * The whole stored body of an answer in other forms (the cache's compressed variants): a phase
 * that transforms the body the same way every time (compression at one coding and level) sends
 * a kept one instead of transforming again, or keeps the one it made.
 */
export interface AnswerVariants {
  /** The body kept under `name` (e.g. `gzip/5`), or undefined. */
  variant(name: string): Buffer | undefined;
  /** Keep `body` under `name` (the owner may refuse it: too large, or the object is gone). */
  keepVariant(name: string, body: Buffer): void;
}

/** What a phase may answer with instead of forwarding (or instead of the server's response). */
export type Answer = RenderedAnswer | ErrorAnswer | StreamedAnswer;

/** The answer streams its body (a StreamedAnswer). */
export function isStreamed(a: Answer): a is StreamedAnswer {
  return typeof (a as StreamedAnswer).start === 'function';
}

/**
 * What `onRequest` decides: `undefined` continues, an Answer is sent in place of forwarding, a
 * promise makes the exchange wait (no deadline runs meanwhile, so the promise must settle on its
 * own timeout); the session then calls the phase's `onResume` with what it resolved to.
 */
export type RequestDecision = Answer | PromiseLike<unknown> | undefined;

export interface HttpPhase {
  /** For errors and the docs ('rate-limit', 'persistence' ...). */
  readonly name: string;
  /**
   * Request header names (lower-case) the phase writes itself in `upstreamHead`: the client's are
   * not relayed. Compiled into the route's drop set at load, so the relay loop stays one pass.
   */
  readonly requestHeaders?: readonly string[] | undefined;
  /** The same for the response and `onResponseHead`. */
  readonly responseHeaders?: readonly string[] | undefined;

  /** The request head is parsed (and, for route phases, routed). */
  onRequest?(ex: Exchange): RequestDecision;
  /** The promise `onRequest` returned settled with `value`: continue (undefined) or answer. */
  onResume?(ex: Exchange, value: unknown): Answer | undefined;
  /**
   * `ex.picked` was picked for this try: undefined connects to it; an Answer is sent instead and
   * the server is not contacted (a redirect to the picked server).
   */
  onPicked?(ex: Exchange): Answer | undefined;
  /** Header lines (each ending in CRLF) added to the request head toward the server; '' for none. */
  upstreamHead?(ex: Exchange): string;
  /**
   * The server's final response head (`ex.response`, also `res`): header lines (each ending in CRLF)
   * added toward the client, '' for none; or an Answer sent instead of it (the server connection is
   * then closed, not reused). A phase that will replace the body sets `ex.bodyReplaced` here.
   */
  onResponseHead?(ex: Exchange, res: ResponseHead): string | Answer;
  /**
   * Response body bytes on their way to the client, in order; `end` is true once, last (with the
   * remaining bytes, possibly none). The bytes are the payload: chunked framing removed.
   *
   * While `ex.bodyReplaced` is false the phase observes (a cache's tee) and its return value is
   * ignored; the session relays the server's bytes unchanged. When a phase set `ex.bodyReplaced` in
   * `onResponseHead`, what each phase returns is the next one's input and the last one's output is
   * sent: the session drops the server's Content-Length and frames the new body itself (chunked to
   * an HTTP/1.1 client, close-delimited to HTTP/1.0), so the framing holds whatever the phase
   * produces. Return an empty buffer to hold bytes back (a compressor's window), everything left
   * when `end` is true.
   */
  onResponseBody?(ex: Exchange, data: Buffer, end: boolean): Buffer;
  /**
   * A phase answers with a StreamedAnswer (a cache hit, a request joined to a fetch): the route's
   * phases may wrap it before it is sent (compression on delivery), in their order. Returns the
   * answer to send, `a` itself to leave it alone.
   */
  onStreamedAnswer?(ex: Exchange, a: StreamedAnswer): StreamedAnswer;
  /**
   * A try on server `rt` ended: `failure` is how it failed ('' when the server answered), `ex.status`
   * the status it gave (0 when none). Called once per try, retries included.
   */
  onAttemptDone?(ex: Exchange, rt: ServerRuntime, failure: FailureKind): void;
  /**
   * The request failed with `o` before anything was sent to the client (no server, connect
   * failure, a timeout, a bad response head): an Answer is sent instead of the error page
   * (a cache's stale-if-error), undefined lets the error stand.
   */
  onFailure?(ex: Exchange, o: Outcome): Answer | undefined;
  /** The exchange ended (answered, relayed or failed); the record is complete. */
  onDone?(ex: Exchange): void;
}

/** A listener's or route's phases, split by hook once at load so the session runs only those that have one. */
export interface PhaseList {
  readonly all: readonly HttpPhase[];
  readonly request: readonly HttpPhase[];
  readonly picked: readonly HttpPhase[];
  readonly upstreamHead: readonly HttpPhase[];
  readonly responseHead: readonly HttpPhase[];
  readonly responseBody: readonly HttpPhase[];
  readonly streamedAnswer: readonly HttpPhase[];
  readonly attemptDone: readonly HttpPhase[];
  readonly failure: readonly HttpPhase[];
  readonly done: readonly HttpPhase[];
  /** Request header names the phases write (for the route's drop set). */
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
}

const NONE: readonly HttpPhase[] = Object.freeze([]);
const NO_NAMES: readonly string[] = Object.freeze([]);

/** No phase: what a route without any feature gets; the session tests `length` and does nothing else. */
export const NO_PHASES: PhaseList = Object.freeze({
  all: NONE,
  request: NONE,
  picked: NONE,
  upstreamHead: NONE,
  responseHead: NONE,
  responseBody: NONE,
  streamedAnswer: NONE,
  attemptDone: NONE,
  failure: NONE,
  done: NONE,
  requestHeaders: NO_NAMES,
  responseHeaders: NO_NAMES,
});

function having(phases: readonly HttpPhase[], hook: keyof HttpPhase): readonly HttpPhase[] {
  const out = phases.filter((p) => typeof p[hook] === 'function');
  return out.length === 0 ? NONE : out;
}

/** Compile a phase list, in the order given; an empty list is NO_PHASES. */
export function compilePhases(phases: readonly (HttpPhase | undefined)[]): PhaseList {
  const all = phases.filter((p): p is HttpPhase => p !== undefined);
  if (all.length === 0) return NO_PHASES;
  const req: string[] = [];
  const res: string[] = [];
  for (const p of all) {
    if (p.requestHeaders !== undefined) req.push(...p.requestHeaders);
    if (p.responseHeaders !== undefined) res.push(...p.responseHeaders);
  }
  return Object.freeze({
    all,
    request: having(all, 'onRequest'),
    picked: having(all, 'onPicked'),
    upstreamHead: having(all, 'upstreamHead'),
    responseHead: having(all, 'onResponseHead'),
    responseBody: having(all, 'onResponseBody'),
    streamedAnswer: having(all, 'onStreamedAnswer'),
    attemptDone: having(all, 'onAttemptDone'),
    failure: having(all, 'onFailure'),
    done: having(all, 'onDone'),
    requestHeaders: req.length === 0 ? NO_NAMES : req,
    responseHeaders: res.length === 0 ? NO_NAMES : res,
  });
}

/** The phase's decision is an Answer (not continue, not a promise). */
export function isAnswer(d: unknown): d is Answer {
  if (d === undefined || d === null || typeof (d as { then?: unknown }).then === 'function') return false;
  return (
    typeof (d as { render?: unknown }).render === 'function' ||
    (d as { outcome?: unknown }).outcome instanceof Outcome ||
    typeof (d as { start?: unknown }).start === 'function'
  );
}
