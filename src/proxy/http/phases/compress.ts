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
 * On a route with `cache:` too, this phase runs after the cache's (route-phases.ts): the cache
 * keeps the server's identity response, and a miss is compressed on its way to the client; an
 * answer from the cache (a hit, a coalesced request) is sent as it was stored.
 */
import { Compressor } from '../../../compress/engine.js';
import { chooseCoding, DEFAULT_COMPRESS, varyWithAcceptEncoding, weakenEtag, whyNotCompress, type Coding, type CompressOptions } from '../../../compress/negotiate.js';
import type { Exchange } from '../exchange.js';
import type { ResponseHead } from '../parse-response.js';
import type { HttpPhase } from '../phases.js';
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

export class CompressPhase implements HttpPhase {
  readonly name = 'compress';
  /**
   * Rewritten when the body is compressed (re-added as received when it is not); Content-Encoding
   * so that a server's `identity` does not stand next to the coding.
   */
  readonly responseHeaders: readonly string[] = ['etag', 'vary', 'content-encoding'];
  constructor(
    readonly opts: CompressOptions,
    private readonly counters: CompressCounters,
  ) {}

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

  onDone(ex: Exchange): void {
    const c = ex.compressState as Compressor | undefined;
    if (c === undefined) return;
    ex.compressState = undefined;
    c.close();
    this.counters.add(ex.listener, c.coding, c.bytesIn, c.bytesOut);
  }
}
