/**
 * Response compression, the pure part: which coding a client accepts (RFC 9110 §12.5.3, q-values),
 * whether a response may be compressed at all (SPEC §11), and the header edits a compressed answer
 * takes (`Vary: Accept-Encoding`, a weak ETag, no Content-Length).
 */

export type Coding = 'br' | 'gzip';

export interface CompressOptions {
  /** Codings Portico offers, in its order of preference (used to break q-value ties). */
  algorithms: readonly Coding[];
  /** Bodies shorter than this (by Content-Length) are sent as they are. */
  minSize: number;
  /** Media types compressed: exact (`application/json`) or a whole type (`text/*`). */
  types: readonly string[];
  /** Compression level: brotli quality 0-11, gzip level 1-9 (clamped per coding). */
  level: number;
}

export const DEFAULT_TYPES: readonly string[] = [
  'text/*',
  'application/json',
  'application/javascript',
  'application/xml',
  'application/xhtml+xml',
  'application/rss+xml',
  'application/atom+xml',
  'application/manifest+json',
  'application/wasm',
  'image/svg+xml',
];

export const DEFAULT_COMPRESS: CompressOptions = { algorithms: ['br', 'gzip'], minSize: 1024, types: DEFAULT_TYPES, level: 5 };

/**
 * The coding to use for a request's `Accept-Encoding`: the offered coding with the highest
 * q-value above 0 (`*` stands for any coding not named), ties broken by the offer's order;
 * undefined for identity (no header, nothing acceptable, or identity preferred).
 */
export function chooseCoding(acceptEncoding: string | undefined, offer: readonly Coding[]): Coding | undefined {
  if (acceptEncoding === undefined || offer.length === 0) return undefined;
  let star = -1;
  let identity = -1;
  const q = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const semi = part.indexOf(';');
    const name = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (name === '') continue;
    let weight = 1;
    if (semi >= 0) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(part.slice(semi + 1));
      if (m === null) continue; // a malformed weight: the member is ignored
      weight = Number(m[1]);
    }
    if (name === '*') star = weight;
    else if (name === 'identity') identity = weight;
    else if (name === 'x-gzip') q.set('gzip', Math.max(q.get('gzip') ?? 0, weight));
    else q.set(name, weight);
  }
  let best: Coding | undefined;
  let bestQ = 0;
  for (const c of offer) {
    const w = q.get(c) ?? (star >= 0 ? star : 0);
    if (w > bestQ) {
      best = c;
      bestQ = w;
    }
  }
  if (best === undefined) return undefined;
  // identity explicitly preferred over the best coding
  if (identity > bestQ) return undefined;
  return best;
}

/** Why a response is sent as it is (for tests and the access log); undefined when it may be compressed. */
export type NotCompressed = 'method' | 'status' | 'encoded' | 'no-transform' | 'small' | 'type' | 'range';

export function whyNotCompress(
  method: string,
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  opts: CompressOptions,
): NotCompressed | undefined {
  if (method === 'HEAD') return 'method';
  if (status < 200 || status === 204 || status === 206 || status === 304) return 'status';
  const ce = headers['content-encoding'];
  if (ce !== undefined && ce.trim().toLowerCase() !== 'identity') return 'encoded';
  if (headers['content-range'] !== undefined) return 'range';
  const cc = headers['cache-control'];
  if (cc !== undefined && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cc)) return 'no-transform';
  const cl = headers['content-length'];
  if (cl !== undefined && Number(cl) < opts.minSize) return 'small';
  if (!typeListed(headers['content-type'], opts.types)) return 'type';
  return undefined;
}

/** `text/html; charset=utf-8` against `text/*` or `text/html`. */
export function typeListed(contentType: string | undefined, types: readonly string[]): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  const mt = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  const slash = mt.indexOf('/');
  if (slash <= 0) return false;
  for (const t of types) {
    if (t === mt) return true;
    if (t.endsWith('/*') && mt.startsWith(t.slice(0, -1))) return true;
  }
  return false;
}

/** A strong ETag made weak (a compressed body is not byte-identical to the server's). */
export function weakenEtag(etag: string): string {
  return etag.startsWith('W/') ? etag : 'W/' + etag;
}

/** `Vary` with Accept-Encoding added, unless it is there or the value is `*`. */
export function varyWithAcceptEncoding(vary: string | undefined): string {
  if (vary === undefined || vary.trim() === '') return 'Accept-Encoding';
  for (const part of vary.split(',')) {
    const n = part.trim().toLowerCase();
    if (n === '*' || n === 'accept-encoding') return vary;
  }
  return vary + ', Accept-Encoding';
}
