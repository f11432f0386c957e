/**
 * The compression phase (SPEC §11): a route's `compress:`. The rules are src/compress's
 * (negotiate.ts: Accept-Encoding, the never-compress cases, the header edits; engine.ts: the
 * streaming compressor); this module is the glue to the exchange:
 *
 *   onResponseHead  the response may be compressed (whyNotCompress) and the client accepts a coding
 *                   the route offers: the body is replaced (ex.bodyReplaced), Content-Encoding,
 *                   `Vary: Accept-Encoding` (merged with the server's) and a weakened ETag are
 *                   added; otherwise the server's own Content-Encoding, ETag and Vary are re-added unchanged (the
 *                   phase owns those names, so the session does not relay them), with
 *                   Accept-Encoding added to Vary when the response is one that is compressed for
 *                   clients that accept it
 *   onResponseBody  each chunk compressed and flushed, the coding's trailer at the end
 *   onDone          the compressor released (also when the response did not complete)
 *
 *   onStreamedAnswer an answer from the cache (stored identity: a hit, a request joined to a
 *                   fetch) compressed on delivery by the same rules; for a stored object's whole
 *                   body, the compressed variant kept with it (by coding and level) is sent
 *                   instead, or the one made now is kept
 *
 * On a route with `cache:` too, this phase runs after the cache's (route-phases.ts): the cache
 * keeps the server's identity response, and every client gets it compressed by its own
 * Accept-Encoding, on a miss and on a hit alike; a hit's compressed form is kept with the object
 * (AnswerVariants), so that the next hits with that coding are not compressed again.
 */
import { Compressor } from '../../../compress/engine.js';
import { chooseCoding, DEFAULT_COMPRESS, varyWithAcceptEncoding, weakenEtag, whyNotCompress, type Coding, type CompressOptions } from '../../../compress/negotiate.js';
import type { Exchange } from '../exchange.js';
import type { ResponseHead } from '../parse-response.js';
import type { AnswerSink, HttpPhase, StreamedAnswer } from '../phases.js';
import type { RouteSpec } from '../router.js';

/** The route's `compress:` as options; undefined when it is off. */
export function compressOptions(spec: RouteSpec['compress']): CompressOptions | undefined {
  if (spec === undefined || spec === false) return undefined;
  if (spec === true) return DEFAULT_COMPRESS;
  return { algorithms: spec.algorithms, minSize: spec.minSize, types: spec.types ?? DEFAULT_COMPRESS.types, level: spec.level };
}

/**
 * Bytes compressed, by listener and coding (in: the servers' bytes, out: toward the clients), for
 * `portico_compressed_bytes_total`; one object for the process, kept across reloads.
 */
export class CompressCounters {
  /** Keyed `listener \0 coding`. */
  readonly bytes = new Map<string, { in: number; out: number }>();

  add(listener: string, coding: Coding, bytesIn: number, bytesOut: number): void {
    const k = listener + '\u0000' + coding;
    const t = this.bytes.get(k);
    if (t === undefined) this.bytes.set(k, { in: bytesIn, out: bytesOut });
    else {
      t.in += bytesIn;
      t.out += bytesOut;
    }
  }
}

/** The response fields whyNotCompress and the header edits read (one pass over the head). */
interface Fields {
  'content-length'?: string;
  'content-type'?: string;
  'content-encoding'?: string;
  'content-range'?: string;
  'cache-control'?: string;
  etag?: string;
  vary?: string;
}

function fieldsOf(res: ResponseHead): Fields {
  const out: Record<string, string> = {};
  const n = res.lnames;
  const v = res.values;
  for (let i = 0; i < n.length; i++) {
    const k = n[i]!;
    switch (k) {
      case 'content-type':
      case 'content-encoding':
      case 'content-range':
      case 'cache-control':
      case 'etag':
      case 'vary': {
        const prev = out[k];
        out[k] = prev === undefined ? v[i]! : prev + ', ' + v[i]!;
      }
    }
  }
  // The parsed length (repeated equal fields are one value there).
  if (res.contentLength >= 0) out['content-length'] = String(res.contentLength);
  return out as Fields;
}

/** The server's own lines of `lname`, as received. */
function serverLines(res: ResponseHead, lname: string): string {
  let h = '';
  const n = res.lnames;
  for (let i = 0; i < n.length; i++) if (n[i] === lname) h += res.names[i]! + ': ' + res.values[i]! + '\r\n';
  return h;
}

function acceptEncoding(ex: Exchange): string | undefined {
  const n = ex.lnames;
  let out: string | undefined;
  for (let i = 0; i < n.length; i++) if (n[i] === 'accept-encoding') out = out === undefined ? ex.values[i]! : out + ', ' + ex.values[i]!;
  return out;
}

/** The header lines of a head text (status line first), split once: names lower-cased, values trimmed. */
function headLines(head: string): { lines: string[]; lnames: string[]; values: string[] } {
  const lines = head.split('\r\n');
  const lnames: string[] = [];
  const values: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    const c = l.indexOf(':');
    lnames.push(c < 0 ? '' : l.slice(0, c).trim().toLowerCase());
    values.push(c < 0 ? '' : l.slice(c + 1).trim());
  }
  return { lines, lnames, values };
}

/** A streamed answer's head read for compression: its lines, fields, and why it is not compressed. */
interface HeadReading {
  readonly head: string;
  readonly method: string;
  readonly status: number;
  readonly lines: string[];
  readonly lnames: string[];
  readonly f: Record<string, string | undefined>;
  readonly why: string | undefined;
  /** The head sent when no coding is chosen (made on first use). */
  identityHead: string | undefined;
}

function readHead(head: string, method: string, status: number, opts: CompressOptions): HeadReading {
  const { lines, lnames, values } = headLines(head);
  const f: Record<string, string | undefined> = {};
  for (let i = 0; i < lnames.length; i++) {
    const k = lnames[i]!;
    if (k === '') continue;
    const prev = f[k];
    f[k] = prev === undefined ? values[i]! : prev + ', ' + values[i]!;
  }
  return { head, method, status, lines, lnames, f, why: whyNotCompress(method, status, f, opts), identityHead: undefined };
}

/** The status line and the header lines whose names are not in `drop`. */
function rewriteHead(lines: readonly string[], lnames: readonly string[], drop: ReadonlySet<string>): string {
  let h = lines[0]! + '\r\n';
  for (let i = 0; i < lnames.length; i++) {
    if (lnames[i] === '' || drop.has(lnames[i]!)) continue;
    h += lines[i + 1]! + '\r\n';
  }
  return h;
}

/**
 * A streamed answer (a cache hit, a request joined to a fetch) compressed on its way out: the
 * inner answer writes into this sink, which compresses each piece (flushed) into the session's.
 * Back-pressure passes through: the session's verdict on the compressed bytes is the inner
 * answer's, and `resume` goes back to it.
 */
class CompressedAnswer implements StreamedAnswer, AnswerSink {
  readonly sized = false;
  readonly hasBody: boolean;
  readonly status: number;
  private sink: AnswerSink | undefined;
  /** The compressed pieces, kept when the inner answer takes the variant (a whole stored body). */
  private kept: Buffer[] | undefined;

  constructor(
    private readonly inner: StreamedAnswer,
    private readonly headText: string,
    private readonly c: Compressor,
    private readonly counters: CompressCounters,
    private readonly listener: string,
    private readonly variant?: string,
  ) {
    this.status = inner.status;
    this.hasBody = inner.hasBody;
    if (variant !== undefined && inner.variants !== undefined) this.kept = [];
  }
  head(): string {
    return this.headText;
  }
  start(sink: AnswerSink): void {
    this.sink = sink;
    this.inner.start(this);
  }
  resume(): void {
    this.inner.resume();
  }
  cancel(): void {
    this.sink = undefined;
    this.inner.cancel();
    this.release();
  }
  answerData(data: Buffer): boolean {
    const sink = this.sink;
    if (sink === undefined) return false;
    const out = this.c.push(data);
    if (out.length === 0) return true;
    this.kept?.push(out);
    return sink.answerData(out);
  }
  answerEnd(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    this.sink = undefined;
    const tail = this.c.end();
    this.counters.add(this.listener, this.c.coding, this.c.bytesIn, this.c.bytesOut);
    if (tail.length > 0) sink.answerData(tail);
    const kept = this.kept;
    if (kept !== undefined) {
      // One exact copy: the pieces are views into the compressor's larger output buffers.
      kept.push(tail);
      this.kept = undefined;
      this.inner.variants!.keepVariant(this.variant!, Buffer.concat(kept));
    }
    sink.answerEnd();
  }
  answerAbort(): void {
    const sink = this.sink;
    this.sink = undefined;
    this.kept = undefined;
    this.release();
    sink?.answerAbort();
  }
  private release(): void {
    if (this.c.closed) return;
    this.c.close();
    this.counters.add(this.listener, this.c.coding, this.c.bytesIn, this.c.bytesOut);
  }
}

/** Header names a compressed answer replaces, and the one an identity answer that could have been compressed extends. */
const REPLACED: ReadonlySet<string> = new Set(['content-length', 'content-encoding', 'etag', 'vary']);
const VARY_ONLY: ReadonlySet<string> = new Set(['vary']);

/** A compressed variant kept with a stored object, sent as it is (sized: it carries Content-Length). */
class KeptAnswer implements StreamedAnswer {
  readonly sized = true;
  readonly hasBody = true;
  constructor(
    readonly status: number,
    private readonly headText: string,
    private readonly body: Buffer,
  ) {}
  head(): string {
    return this.headText;
  }
  start(sink: AnswerSink): void {
    sink.answerData(this.body);
    sink.answerEnd();
  }
  resume(): void {}
  cancel(): void {}
}

/** A streamed answer with another head (Vary extended), its body untouched. */
class HeadOnly implements StreamedAnswer {
  readonly sized: boolean;
  readonly hasBody: boolean;
  readonly status: number;
  constructor(
    private readonly inner: StreamedAnswer,
    private readonly headText: string,
  ) {
    this.sized = inner.sized;
    this.hasBody = inner.hasBody;
    this.status = inner.status;
  }
  head(): string {
    return this.headText;
  }
  start(sink: AnswerSink): void {
    this.inner.start(sink);
  }
  resume(): void {
    this.inner.resume();
  }
  cancel(): void {
    this.inner.cancel();
  }
}

export class CompressPhase implements HttpPhase {
  readonly name = 'compress';
  /**
   * Rewritten when the body is compressed (re-added as received when it is not); Content-Encoding
   * so that a server's `identity` does not stand next to the coding.
   */
  readonly responseHeaders: readonly string[] = ['etag', 'vary', 'content-encoding'];
  /** The last streamed answer's head as read (onStreamedAnswer). */
  private lastHead: HeadReading | undefined = undefined;
  /** The names of this route's compressed variants in a cache (coding and level: routes may differ). */
  private readonly brName: string;
  private readonly gzipName: string;
  constructor(
    readonly opts: CompressOptions,
    private readonly counters: CompressCounters,
  ) {
    this.brName = 'br/' + opts.level;
    this.gzipName = 'gzip/' + opts.level;
  }

  onResponseHead(ex: Exchange, res: ResponseHead): string {
    const f = fieldsOf(res);
    const why = whyNotCompress(ex.method, res.status, f as Record<string, string | undefined>, this.opts);
    const coding = why === undefined ? chooseCoding(acceptEncoding(ex), this.opts.algorithms) : undefined;
    let h = '';
    if (coding === undefined) {
      // Sent as the server sent it; a compressible response still varies with Accept-Encoding.
      h += serverLines(res, 'content-encoding');
      h += serverLines(res, 'etag');
      if (why === undefined) h += 'Vary: ' + varyWithAcceptEncoding(f.vary) + '\r\n';
      else h += serverLines(res, 'vary');
      return h;
    }
    // Another body phase replaced it already: its length is not the server's.
    const hint = ex.bodyReplaced ? -1 : res.contentLength;
    ex.compressState = new Compressor(coding, this.opts.level, hint);
    ex.bodyReplaced = true;
    h += 'Content-Encoding: ' + coding + '\r\n';
    h += 'Vary: ' + varyWithAcceptEncoding(f.vary) + '\r\n';
    if (f.etag !== undefined) h += 'ETag: ' + weakenEtag(f.etag) + '\r\n';
    return h;
  }

  onResponseBody(ex: Exchange, data: Buffer, end: boolean): Buffer {
    const c = ex.compressState as Compressor | undefined;
    if (c === undefined) return data;
    const out = c.push(data);
    if (!end) return out;
    ex.compressState = undefined;
    const tail = c.end();
    this.counters.add(ex.listener, c.coding, c.bytesIn, c.bytesOut);
    return out.length === 0 ? tail : Buffer.concat([out, tail]);
  }

  /**
   * An answer from the cache (stored identity) is compressed on delivery by the same rules as a
   * server's response; one that may not be compressed is sent as it is.
   */
  onStreamedAnswer(ex: Exchange, a: StreamedAnswer): StreamedAnswer {
    const head = a.head();
    // The cache answers hits of one object with the same head string for a second: its reading is kept.
    let m = this.lastHead;
    if (m === undefined || m.head !== head || m.method !== ex.method || m.status !== a.status) {
      m = readHead(head, ex.method, a.status, this.opts);
      this.lastHead = m;
    }
    if (m.why !== undefined || !a.hasBody) return a;
    const { lines, lnames, f } = m;
    const coding = chooseCoding(acceptEncoding(ex), this.opts.algorithms);
    if (coding === undefined) {
      // Not compressed: the head gains `Vary: Accept-Encoding` (made once per head read).
      const vh = (m.identityHead ??= rewriteHead(lines, lnames, VARY_ONLY) + 'Vary: ' + varyWithAcceptEncoding(f['vary']) + '\r\n');
      return a.withHead?.(vh) ?? new HeadOnly(a, vh);
    }
    let h = rewriteHead(lines, lnames, REPLACED);
    h += 'Vary: ' + varyWithAcceptEncoding(f['vary']) + '\r\n';
    h += 'Content-Encoding: ' + coding + '\r\n';
    if (f['etag'] !== undefined) h += 'ETag: ' + weakenEtag(f['etag']) + '\r\n';
    const cl = f['content-length'];
    // A stored object's whole body: its variant at this coding and level, when one was kept, is
    // sent as it is; otherwise the body is compressed on its way out and the result kept with it.
    const variants = a.variants;
    const name = variants === undefined ? undefined : coding === 'br' ? this.brName : this.gzipName;
    if (variants !== undefined) {
      const kept = variants.variant(name!);
      if (kept !== undefined) {
        this.counters.add(ex.listener, coding, cl === undefined ? 0 : Number(cl) || 0, kept.length);
        return new KeptAnswer(a.status, h + 'Content-Length: ' + kept.length + '\r\n', kept);
      }
    }
    return new CompressedAnswer(a, h, new Compressor(coding, this.opts.level, cl === undefined ? -1 : Number(cl) || -1), this.counters, ex.listener, name);
  }

  onDone(ex: Exchange): void {
    const c = ex.compressState as Compressor | undefined;
    if (c === undefined) return;
    ex.compressState = undefined;
    c.close();
    this.counters.add(ex.listener, c.coding, c.bytesIn, c.bytesOut);
  }
}
