/**
 * Strict HTTP/1.x request-head parser for Portico's data path (RFC 9112 §2-§3, §6).
 *
 * It is pure and stateless: the caller passes every byte received so far for this request and
 * gets `null` (need more), a failure (refuse, close, forward nothing) or the parsed head. Pass 1
 * walks the raw bytes with lookup tables and records offsets; pass 2 runs only on a complete head,
 * takes one latin1 string of it and cuts names and values out of that string.
 */
import {
  CR,
  F_BARE_CR,
  F_BARE_LF,
  LF,
  LOWER,
  SP,
  TARGET,
  TCHAR,
  TE_CHUNKED,
  TE_MALFORMED,
  TE_NOT_CHUNKED_FINAL,
  failure,
  latin1,
  isValidHost,
  parseTransferEncoding,
  scanFields,
} from './http-chars.js';
import {
  CONN_UPGRADE,
  F_CL_TE,
  F_TE_MALFORMED,
  HTTP_SLASH,
  connectionOptions,
  headFields,
  incomplete,
  persists,
  readFields,
} from './parse-headers.js';
import { PROTECTED_FROM_CONNECTION } from './headers.js';
import type { HeadLimits, ParseFailure } from './http-chars.js';

export type { HeadLimits, ParseFailure } from './http-chars.js';
export { DEFAULT_HEAD_LIMITS } from './http-chars.js';

/** The four shapes of request-target (RFC 9112 §3.2). */
export type TargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';

export interface RequestHead {
  readonly ok: true;
  /** Token, as sent (case-sensitive). */
  method: string;
  /** Raw request-target. */
  target: string;
  /** Which form `target` has: origin (`/p?q`), absolute (`http://h/p`), authority (CONNECT `h:443`), asterisk (OPTIONS `*`). */
  form: TargetForm;
  /** The target in origin-form, for the head sent to a server: absolute-form loses scheme and authority (`/` when empty); other forms are `target`. */
  path: string;
  minor: 0 | 1;
  /** Header names as sent (case kept), in order. */
  names: string[];
  /** Lowercased names, parallel to `names`. */
  lnames: string[];
  /** Values with leading/trailing OWS trimmed, parallel to `names`. */
  values: string[];
  /** Offset just past the CRLFCRLF that ends the head. */
  headEnd: number;
  /** The Host header value; for absolute-form the authority of the target instead (RFC 9112 §3.2.2). */
  host: string | undefined;
  /** -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding is present, valid and ends with chunked. */
  chunked: boolean;
  /** HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`. */
  keepAlive: boolean;
  /** Lowercased tokens of all Connection headers. */
  connection: string[];
  /** The Upgrade header value when Connection contains `upgrade` (never on HTTP/1.0, RFC 9110 §7.8). */
  upgrade: string | undefined;
  /** `Expect: 100-continue` on an HTTP/1.1 request. */
  expectContinue: boolean;
}

const F_METHOD = failure(400, 'invalid method');
const F_METHOD_CASE = failure(400, 'method differs from a standard method only in case');
const F_TARGET_EMPTY = failure(400, 'empty request-target or repeated space');
const F_TARGET_CHAR = failure(400, 'invalid request-target character');
const F_NO_VERSION = failure(400, 'request-line without HTTP version');
const F_VERSION = failure(400, 'malformed HTTP version');
const F_VERSION_UNSUPPORTED = failure(505, 'HTTP version not supported');
const F_URI_TOO_LONG = failure(414, 'request-target longer than maxUriBytes');
const F_TARGET_FORM = failure(400, 'request-target form not allowed for this method');
const F_ABSOLUTE = failure(400, 'malformed absolute-form request-target');
const F_AUTHORITY = failure(400, 'malformed authority-form request-target');
const F_HOST_MISSING = failure(400, 'missing Host header');
const F_TE_HTTP10 = failure(400, 'Transfer-Encoding on an HTTP/1.0 request');
const F_TE_NOT_CHUNKED = failure(400, 'Transfer-Encoding does not end with chunked');
const F_TE_UNKNOWN = failure(501, 'unsupported transfer coding');
const F_CONNECTION_NOMINATES = failure(400, 'Connection nominates a field that frames or routes the request');

const STANDARD_METHODS: ReadonlySet<string> = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
]);

/**
 * Parses a request head from `buf`, which holds the bytes from the start of a request (empty lines
 * before the request-line are skipped, RFC 9112 §2.2, and count toward `headEnd`). Returns null when
 * the head is incomplete and still within `maxHeaderBytes`, a failure as soon as the bytes seen are
 * invalid, otherwise the head.
 */
export function parseRequestHead(buf: Buffer, limits: HeadLimits): RequestHead | ParseFailure | null {
  const len = buf.length;
  const maxHeaderBytes = limits.maxHeaderBytes;
  const limit = len < maxHeaderBytes ? len : maxHeaderBytes;
  let i = 0;
  let c = 0;

  // Empty lines before the request-line.
  while (i < limit && (c = buf[i]!) === CR) {
    if (i + 1 >= limit) return incomplete(len, limits);
    if (buf[i + 1] !== LF) return F_BARE_CR;
    i += 2;
  }
  if (i >= limit) return incomplete(len, limits);

  // method SP
  const methodStart = i;
  let lower = 0;
  const tchar = TCHAR;
  while (tchar[c] === 1) {
    lower |= LOWER[c]!;
    if (++i >= limit) return incomplete(len, limits);
    c = buf[i]!;
  }
  if (c !== SP || i === methodStart) return c === LF ? F_BARE_LF : F_METHOD;
  const methodEnd = i;

  // request-target SP
  const targetStart = ++i;
  const uriStop = targetStart + limits.maxUriBytes + 1; // reaching this index means one byte too many
  const stop = uriStop < limit ? uriStop : limit;
  const target4 = stop - 4;
  const targetChars = TARGET;
  while (i <= target4 && (targetChars[buf[i]!]! & targetChars[buf[i + 1]!]! & targetChars[buf[i + 2]!]! & targetChars[buf[i + 3]!]!) === 1) i += 4;
  if (i >= stop) return i >= uriStop ? F_URI_TOO_LONG : incomplete(len, limits);
  c = buf[i]!;
  while (targetChars[c] === 1) {
    if (++i >= stop) return i >= uriStop ? F_URI_TOO_LONG : incomplete(len, limits);
    c = buf[i]!;
  }
  if (c !== SP) return c === CR || c === LF ? F_NO_VERSION : F_TARGET_CHAR;
  if (i === targetStart) return F_TARGET_EMPTY;
  const targetEnd = i;

  // HTTP-version CRLF: exactly "HTTP/" DIGIT "." DIGIT
  const versionStart = ++i;
  if (
    i + 10 <= limit &&
    buf[i] === 0x48 && buf[i + 1] === 0x54 && buf[i + 2] === 0x54 && buf[i + 3] === 0x50 && buf[i + 4] === 0x2f &&
    buf[i + 5] === 0x31 && buf[i + 6] === 0x2e && (buf[i + 7] === 0x31 || buf[i + 7] === 0x30) &&
    buf[i + 8] === CR && buf[i + 9] === LF
  ) {
    i += 10; // the common case, "HTTP/1.1" or "HTTP/1.0"
  } else for (let k = 0; k < 10; k++, i++) {
    if (i >= limit) return incomplete(len, limits);
    c = buf[i]!;
    if (k < 5) {
      if (c !== HTTP_SLASH[k]) return F_VERSION;
    } else if (k === 5 || k === 7) {
      if (c < 0x30 || c > 0x39) return F_VERSION;
    } else if (k === 6) {
      if (c !== 0x2e) return F_VERSION;
    } else if (k === 8) {
      if (c !== CR) return c === LF ? F_BARE_LF : F_VERSION;
    } else if (c !== LF) {
      return F_BARE_CR;
    }
  }
  if (buf[versionStart + 5] !== 0x31) return F_VERSION_UNSUPPORTED;
  // RFC 9110 §2.5: a higher minor version of HTTP/1 is processed as the highest one we implement.
  const minor: 0 | 1 = buf[versionStart + 7] === 0x30 ? 0 : 1;

  const headEnd = scanFields(buf, i, limit, limits.maxHeaders);
  if (typeof headEnd !== 'number') return headEnd;
  if (headEnd < 0) return incomplete(len, limits);

  // Pass 2: the head is complete and its bytes valid; build strings and check semantics.
  const s = latin1(buf, 0, headEnd);
  const method = commonMethod(buf, methodStart, methodEnd) ?? s.substring(methodStart, methodEnd);
  // A lowercase variant of a standard method ("get", "Head") could be taken for the method by a
  // server but not by responseFraming(): refuse it rather than risk a framing mismatch.
  if (lower !== 0 && STANDARD_METHODS.has(method.toUpperCase())) return F_METHOD_CASE;
  const target = s.substring(targetStart, targetEnd);

  const names: string[] = [];
  const lnames: string[] = [];
  const values: string[] = [];
  const connection: string[] = [];
  const failed = readFields(buf, s, true, names, lnames, values, connection);
  if (failed !== null) return failed;
  // RFC 9110 §7.6.1 lets Connection name any field for removal; one that frames or routes the
  // message would make the server read a request other than the one Portico parsed and routed.
  for (let t = 0; t < connection.length; t++) {
    if (PROTECTED_FROM_CONNECTION.has(connection[t]!)) return F_CONNECTION_NOMINATES;
  }
  const fields = headFields;
  let host = fields.host;
  const contentLength = fields.contentLength;
  const te = fields.te;
  const upgradeValue = fields.upgrade;
  const expectContinue = fields.expectContinue;
  if (fields.hostCount === 0 && minor === 1) return F_HOST_MISSING;

  // request-target form (RFC 9112 §3.2)
  let form: TargetForm = 'origin';
  let path = target;
  const t0 = buf[targetStart];
  if (t0 === 0x2f) {
    if (method === 'CONNECT') return F_TARGET_FORM;
  } else if (targetEnd - targetStart === 1 && t0 === 0x2a) {
    if (method !== 'OPTIONS') return F_TARGET_FORM;
    form = 'asterisk';
  } else if (method === 'CONNECT') {
    if (!isAuthorityWithPort(buf, targetStart, targetEnd)) return F_AUTHORITY;
    form = 'authority';
  } else {
    // absolute-form: "http" / "https" "://" authority path-abempty [ "?" query ]
    let j = targetStart;
    while (j < targetEnd && s.charCodeAt(j) !== 0x3a) j++;
    const scheme = s.substring(targetStart, j).toLowerCase();
    if ((scheme !== 'http' && scheme !== 'https') || !s.startsWith('//', j + 1)) return F_ABSOLUTE;
    const authorityStart = j + 3;
    let k = authorityStart;
    while (k < targetEnd) {
      const ch = s.charCodeAt(k);
      if (ch === 0x2f || ch === 0x3f) break;
      k++;
    }
    if (k === authorityStart || !isValidHost(buf, authorityStart, k)) return F_ABSOLUTE;
    host = s.substring(authorityStart, k);
    // RFC 9112 §3.2.2: the Host sent on is generated from the target, which is also what routes.
    const at = lnames.indexOf('host');
    if (at >= 0) values[at] = host;
    else {
      names.push('Host');
      lnames.push('host');
      values.push(host);
    }
    path = k === targetEnd ? '/' : s.charCodeAt(k) === 0x3f ? `/${s.substring(k, targetEnd)}` : s.substring(k, targetEnd);
    form = 'absolute';
  }

  let chunked = false;
  if (te !== undefined) {
    if (minor === 0) return F_TE_HTTP10;
    if (contentLength !== -1) return F_CL_TE;
    const r = parseTransferEncoding(te);
    if (r !== TE_CHUNKED) {
      return r === TE_MALFORMED ? F_TE_MALFORMED : r === TE_NOT_CHUNKED_FINAL ? F_TE_NOT_CHUNKED : F_TE_UNKNOWN;
    }
    chunked = true;
  }

  const options = connectionOptions(connection);

  return {
    ok: true,
    method,
    target,
    form,
    path,
    minor,
    names,
    lnames,
    values,
    headEnd,
    host,
    contentLength,
    chunked,
    keepAlive: persists(options, minor),
    connection,
    upgrade: (options & CONN_UPGRADE) !== 0 && minor === 1 && upgradeValue !== undefined
      ? allowedUpgrades(upgradeValue, limits.upgrades ?? DEFAULT_UPGRADES)
      : undefined,
    expectContinue: expectContinue && minor === 1,
  };
}

/** The protocols a client may switch to when nothing is configured. */
export const DEFAULT_UPGRADES: ReadonlySet<string> = new Set(['websocket']);

/**
 * The elements of an Upgrade value (RFC 9110 §7.8: protocol-name ["/" protocol-version], comma
 * separated) whose protocol name is in `allowed` (lowercase), joined again; undefined when none is.
 * h2c is never in `allowed` (the config refuses it): an HTTP/2 connection opened through a tunnel
 * would carry requests that no route, limit or header rule sees.
 */
export function allowedUpgrades(value: string, allowed: ReadonlySet<string>): string | undefined {
  let out: string | undefined;
  let from = 0;
  while (from <= value.length) {
    let to = value.indexOf(',', from);
    if (to < 0) to = value.length;
    const el = value.substring(from, to).trim();
    from = to + 1;
    if (el === '') continue;
    const slash = el.indexOf('/');
    const name = (slash < 0 ? el : el.substring(0, slash)).toLowerCase();
    if (!allowed.has(name)) continue;
    out = out === undefined ? el : out + ', ' + el;
  }
  return out;
}

/** authority-form for CONNECT (RFC 9112 §3.2.3): uri-host ":" port, port not empty. */
function isAuthorityWithPort(buf: Buffer, start: number, end: number): boolean {
  let j = end;
  while (j > start && isDigit(buf[j - 1]!)) j--;
  if (j === end || j - 1 <= start || buf[j - 1] !== 0x3a) return false;
  return isValidHost(buf, start, end);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The most frequent methods as constant strings: no allocation, and cheap comparisons downstream. */
function commonMethod(buf: Buffer, start: number, end: number): string | undefined {
  const n = end - start;
  const c0 = buf[start];
  if (n === 3) {
    if (c0 === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return 'GET';
    if (c0 === 0x50 && buf[start + 1] === 0x55 && buf[start + 2] === 0x54) return 'PUT';
  } else if (n === 4) {
    if (c0 === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53 && buf[start + 3] === 0x54) return 'POST';
    if (c0 === 0x48 && buf[start + 1] === 0x45 && buf[start + 2] === 0x41 && buf[start + 3] === 0x44) return 'HEAD';
  }
  return undefined;
}
