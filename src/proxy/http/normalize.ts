/**
 * Normalisation of the request path and Host before routing (RFC 3986 §6.2.2).
 *
 * Routes match the normalised path and the normalised path is what the server receives,
 * so routing and forwarding cannot disagree: `/public/../admin` is `/admin` for both.
 * Encodings that servers resolve differently from one another are refused instead of
 * guessed at (a dot-segment behind an encoded slash, `..;` path parameters, double
 * encoding of a dot or slash, a NUL byte, a malformed escape).
 */

/** Hex digit value by char code, or -1. */
const HEX = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let c = 48; c <= 57; c++) t[c] = c - 48;
  for (let c = 65; c <= 70; c++) t[c] = c - 55;
  for (let c = 97; c <= 102; c++) t[c] = c - 87;
  return t;
})();

const UPPER_HEX = '0123456789ABCDEF';

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

/**
 * The path in normal form, or `undefined` when it must be refused (400).
 *
 * - percent-encoded unreserved characters are decoded (`%7E` → `~`, `%2e` → `.`); every
 *   other escape is kept, with upper-case hex (`%2f` → `%2F`: an encoded slash stays encoded);
 * - a raw backslash is encoded as `%5C` (some servers take it for a slash);
 * - empty segments are folded (`//a` → `/a`);
 * - dot-segments are removed (`/a/./b/../c` → `/a/c`), never above the root;
 * - refused: `%` without two hex digits, `%00`, `%25` followed by the escape of a dot, slash
 *   or backslash (double encoding), a `.` or `..` hidden behind an encoded slash or backslash
 *   (`/admin%2f..`), and a `.` or `..` segment with a path parameter (`/public/..;/admin`).
 *
 * Paths that need none of this (the common case) are returned as the same string, unscanned twice
 * and unallocated. `path` must start with `/`.
 */
export function normalizePath(path: string): string | undefined {
  const n = path.length;
  let i = 0;
  for (; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */ || c === 92 /* \ */) break;
    if (c === 47 /* / */ && i + 1 < n) {
      const d = path.charCodeAt(i + 1);
      if (d === 47 || d === 46 /* . */) break;
    }
  }
  if (i === n) return path;
  return slowNormalize(path);
}

function slowNormalize(path: string): string | undefined {
  // 1. escapes: decode unreserved, upper-case the rest, encode backslashes.
  let s = '';
  const n = path.length;
  let from = 0;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === 92) {
      s += path.slice(from, i) + '%5C';
      from = i + 1;
      continue;
    }
    if (c !== 37) continue;
    if (i + 2 >= n) return undefined;
    const h1 = path.charCodeAt(i + 1);
    const h2 = path.charCodeAt(i + 2);
    const a = h1 < 128 ? HEX[h1]! : -1;
    const b = h2 < 128 ? HEX[h2]! : -1;
    if (a < 0 || b < 0) return undefined;
    const v = a * 16 + b;
    if (v === 0) return undefined;
    if (v === 0x25 && i + 4 < n && isHiddenEscape(path, i + 3)) return undefined;
    s += path.slice(from, i) + (isUnreserved(v) ? String.fromCharCode(v) : '%' + UPPER_HEX[a]! + UPPER_HEX[b]!);
    i += 2;
    from = i + 1;
  }
  s += path.slice(from);

  // 2. segments: fold empty ones, resolve dot-segments, refuse hidden ones.
  const parts = s.split('/');
  const out: string[] = [];
  const last = parts.length - 1;
  let trailingSlash = false;
  for (let k = 1; k <= last; k++) {
    const seg = parts[k]!;
    trailingSlash = false;
    if (seg === '') {
      if (k === last) trailingSlash = true;
      continue;
    }
    if (seg === '.') {
      trailingSlash = true;
      continue;
    }
    if (seg === '..') {
      out.pop();
      trailingSlash = true;
      continue;
    }
    if (hidesDotSegment(seg)) return undefined;
    out.push(seg);
  }
  if (out.length === 0) return '/';
  const joined = '/' + out.join('/');
  return trailingSlash ? joined + '/' : joined;
}

/** After `%25`: `2e`, `2f` or `5c` (any case), i.e. a doubly encoded dot, slash or backslash. */
function isHiddenEscape(p: string, at: number): boolean {
  const a = p.charCodeAt(at);
  const b = p.charCodeAt(at + 1) | 0x20;
  return (a === 50 && (b === 101 || b === 102)) || (a === 53 && b === 99);
}

/** A segment that some server would resolve as `.` or `..`: split at encoded slashes, or before a `;`. */
function hidesDotSegment(seg: string): boolean {
  const semi = seg.indexOf(';');
  if (semi >= 0) {
    const head = seg.slice(0, semi);
    if (head === '.' || head === '..') return true;
  }
  if (seg.indexOf('%2F') < 0 && seg.indexOf('%5C') < 0) return false;
  for (const piece of seg.split(/%2F|%5C/)) {
    const p = piece.indexOf(';') >= 0 ? piece.slice(0, piece.indexOf(';')) : piece;
    if (p === '.' || p === '..') return true;
  }
  return false;
}

/**
 * The Host as routes see it: lower-case, without the port and without a trailing dot
 * (`WWW.Example.COM.:80` → `www.example.com`); an IPv6 literal keeps its brackets.
 */
export function normalizeHost(h: string): string {
  let s = h.toLowerCase();
  if (s.charCodeAt(0) === 91 /* [ */) {
    const e = s.indexOf(']');
    return e > 0 ? s.slice(0, e + 1) : s;
  }
  const c = s.indexOf(':');
  if (c >= 0) s = s.slice(0, c);
  while (s.endsWith('.')) s = s.slice(0, -1);
  return s;
}
