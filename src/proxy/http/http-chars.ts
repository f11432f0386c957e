/**
 * Character tables and the field-line scanner shared by Portico's HTTP/1.x wire parsers
 * (request head, response head, chunked trailers). Everything here works on raw bytes with
 * precomputed 256-entry tables: no regular expressions, no closures, and the scanner allocates
 * nothing.
 *
 * Grammar references are RFC 9110 (semantics) and RFC 9112 (HTTP/1.1 message syntax).
 */

export const HT = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;
export const DQUOTE = 0x22;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const EQUALS = 0x3d;
export const BACKSLASH = 0x5c;

/** Limits on a message head. Defaults follow SPEC.md §3 `limits`. */
export interface HeadLimits {
  maxHeaderBytes: number;
  maxHeaders: number;
  maxUriBytes: number;
  /** Request heads: the Upgrade protocols (lowercase names) a client may switch to; default websocket only. */
  upgrades?: ReadonlySet<string> | undefined;
}

export const DEFAULT_HEAD_LIMITS: Readonly<HeadLimits> = Object.freeze({
  maxHeaderBytes: 16384,
  maxHeaders: 100,
  maxUriBytes: 8192,
});

/**
 * A head that must not be forwarded. For a request, `status` is the answer the client gets before the
 * connection is closed; for a response the caller answers 502 whatever the status says.
 */
export interface ParseFailure {
  readonly ok: false;
  readonly status: 400 | 414 | 431 | 501 | 505;
  /** Short, stable description for logs; never sent to a client. */
  readonly reason: string;
}

/** Failures are preallocated and frozen: refusing a request allocates nothing. */
export function failure(status: ParseFailure['status'], reason: string): ParseFailure {
  return Object.freeze({ ok: false as const, status, reason });
}

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~" / DIGIT / ALPHA. */
export const TCHAR = table((c) => isDigit(c) || isAlpha(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));

/** 1 for 'A'..'Z': marks a name that needs lowercasing. */
export const UPPER = table((c) => c >= 0x41 && c <= 0x5a);

/** 1 for 'a'..'z'. */
export const LOWER = table((c) => c >= 0x61 && c <= 0x7a);

/**
 * Bytes allowed inside a field value (RFC 9110 §5.5): HTAB, SP, VCHAR and obs-text (0x80-0xFF).
 * NUL, CR, LF, DEL and the other control characters are refused.
 */
export const FIELD_VALUE = table((c) => c === HT || (c >= 0x20 && c <= 0x7e) || c >= 0x80);

/**
 * Bytes allowed in a request-target: visible US-ASCII (0x21-0x7E) except '#', since a fragment is
 * never part of a request-target (RFC 9112 §3.2). Space, controls and non-ASCII bytes are refused.
 */
export const TARGET = table((c) => c >= 0x21 && c <= 0x7e && c !== 0x23);

/** Characters of a reg-name or IPv4 address (RFC 3986 §3.2.2): unreserved / pct-encoded ('%') / sub-delims. */
export const REG_NAME = table((c) => isDigit(c) || isAlpha(c) || "-._~%!$&'()*+,;=".includes(String.fromCharCode(c)));

/** Characters inside an IP-literal's brackets: IPv6address, plus IPvFuture's unreserved / sub-delims / ':'. */
export const IP_LITERAL = table((c) => isDigit(c) || isAlpha(c) || "-._~!$&'()*+,;=:".includes(String.fromCharCode(c)));

/** Hex digit value, or -1. */
export const HEX = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let c = 0; c < 256; c++) {
    if (isDigit(c)) t[c] = c - 0x30;
    else if (c >= 0x41 && c <= 0x46) t[c] = c - 0x41 + 10;
    else if (c >= 0x61 && c <= 0x66) t[c] = c - 0x61 + 10;
  }
  return t;
})();

/** qdtext (RFC 9110 §5.6.4): HTAB / SP / 0x21 / 0x23-0x5B / 0x5D-0x7E / obs-text. */
export const QDTEXT = table((c) => c === HT || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80);

// ---------------------------------------------------------------------------------------------
// Field-line scanner (pass 1 of a head parse): validates bytes and records offsets, makes no strings.

/** Offsets recorded per field line, four slots each: nameStart, nameEnd, valueStart, valueEnd. */
export const FIELD_SLOTS = 4;

/**
 * Scratch written by {@link scanFields}. Parsers are synchronous and never re-entered, so one
 * module-level buffer serves every call; it grows only when `maxHeaders` asks for more room.
 */
export const fieldScan = {
  count: 0,
  /** nameStart, nameEnd, valueStart, valueEnd of field i at [i * FIELD_SLOTS ...]; values are OWS-trimmed. */
  offsets: new Int32Array(128 * FIELD_SLOTS),
  /** Hash of the exact bytes of name i, for {@link internName}. */
  hashes: new Int32Array(128),
};

export const F_BARE_LF = failure(400, 'bare LF line ending');
export const F_BARE_CR = failure(400, 'CR not followed by LF');
export const F_OBS_FOLD = failure(400, 'obs-fold (line starting with whitespace)');
export const F_EMPTY_NAME = failure(400, 'empty field name');
export const F_NAME_WS = failure(400, 'whitespace before colon');
export const F_NAME_CHAR = failure(400, 'invalid field name character');
export const F_NO_COLON = failure(400, 'field line without colon');
export const F_VALUE_CHAR = failure(400, 'invalid field value character');
export const F_TOO_MANY = failure(431, 'too many header fields');
export const F_TOO_LARGE = failure(431, 'head larger than maxHeaderBytes');

/**
 * Scans field lines starting at `pos` up to and including the empty line that ends the head,
 * looking at bytes before `limit` only. Returns the offset just past that empty line's CRLF,
 * -1 when more bytes are needed, or a failure as soon as a byte already seen is invalid.
 * On success `fieldScan.count` fields are recorded in `fieldScan.offsets`/`fieldScan.hashes`.
 */
export function scanFields(buf: Uint8Array, pos: number, limit: number, maxHeaders: number): number | ParseFailure {
  if (fieldScan.hashes.length < maxHeaders) {
    fieldScan.hashes = new Int32Array(maxHeaders);
    fieldScan.offsets = new Int32Array(maxHeaders * FIELD_SLOTS);
  }
  const offsets = fieldScan.offsets;
  const hashes = fieldScan.hashes;
  const tchar = TCHAR;
  const fieldValue = FIELD_VALUE;
  let i = pos;
  let n = 0;
  for (;;) {
    if (i >= limit) return -1;
    let c = buf[i]!;
    if (tchar[c] !== 1) {
      if (c === CR) {
        if (i + 1 >= limit) return -1;
        if (buf[i + 1] !== LF) return F_BARE_CR;
        fieldScan.count = n;
        return i + 2;
      }
      if (c === LF) return F_BARE_LF;
      if (c === SP || c === HT) return F_OBS_FOLD;
      if (c === COLON) return F_EMPTY_NAME;
      return F_NAME_CHAR;
    }
    if (n === maxHeaders) return F_TOO_MANY;
    const nameStart = i;
    let h = 0;
    do {
      h = (Math.imul(h, 31) + c) | 0;
      if (++i >= limit) return -1;
      c = buf[i]!;
    } while (tchar[c] === 1);
    if (c !== COLON) {
      if (c === SP || c === HT) return F_NAME_WS;
      if (c === LF) return F_BARE_LF;
      if (c === CR) return F_NO_COLON;
      return F_NAME_CHAR;
    }
    const nameEnd = i;
    // Leading OWS.
    do {
      if (++i >= limit) return -1;
      c = buf[i]!;
    } while (c === SP || c === HT);
    const valueStart = i;
    // Four bytes at a time while they are all value bytes, then byte by byte to the end of the line.
    const limit4 = limit - 4;
    while (i <= limit4 && (fieldValue[buf[i]!]! & fieldValue[buf[i + 1]!]! & fieldValue[buf[i + 2]!]! & fieldValue[buf[i + 3]!]!) === 1) i += 4;
    if (i >= limit) return -1;
    c = buf[i]!;
    while (fieldValue[c] === 1) {
      if (++i >= limit) return -1;
      c = buf[i]!;
    }
    if (c !== CR) return c === LF ? F_BARE_LF : F_VALUE_CHAR;
    if (i + 1 >= limit) return -1;
    if (buf[i + 1] !== LF) return F_BARE_CR;
    let valueEnd = i;
    while (valueEnd > valueStart && ((c = buf[valueEnd - 1]!) === SP || c === HT)) valueEnd--;
    const o = n * FIELD_SLOTS;
    offsets[o] = nameStart;
    offsets[o + 1] = nameEnd;
    offsets[o + 2] = valueStart;
    offsets[o + 3] = valueEnd;
    hashes[n] = h;
    n++;
    i += 2;
  }
}

// ---------------------------------------------------------------------------------------------
// Field names: a small cache of recently seen names, keyed by a hash of their exact bytes, so that a
// typical head allocates no name strings and lowercases nothing. Names are copied out of the head
// (never sliced from it), so the cache retains at most NAME_CACHE_SIZE * MAX_CACHED_NAME bytes.

/** Field names whose meaning a parser acts on. */
export const K_OTHER = 0;
export const K_HOST = 1;
export const K_CONTENT_LENGTH = 2;
export const K_TRANSFER_ENCODING = 3;
export const K_CONNECTION = 4;
export const K_UPGRADE = 5;
export const K_EXPECT = 6;
/**
 * A name that reads as a framing or forwarding field once '_' is taken for '-' (CGI and WSGI
 * servers map both to the same variable): Content_Length, Transfer_Encoding, X_Forwarded_For ...
 */
export const K_UNDERSCORE_ALIAS = 7;

const UNDERSCORE_ALIASES: ReadonlySet<string> = new Set([
  'content_length',
  'transfer_encoding',
  'x_forwarded_for',
  'x_forwarded_proto',
  'x_forwarded_host',
  'x_forwarded_client_cert',
  'x_client_verify',
]);

export function nameKind(lname: string): number {
  switch (lname) {
    case 'host': return K_HOST;
    case 'content-length': return K_CONTENT_LENGTH;
    case 'transfer-encoding': return K_TRANSFER_ENCODING;
    case 'connection': return K_CONNECTION;
    case 'upgrade': return K_UPGRADE;
    case 'expect': return K_EXPECT;
    default: return lname.includes('_') && UNDERSCORE_ALIASES.has(lname.replace(/-/g, '_')) ? K_UNDERSCORE_ALIAS : K_OTHER;
  }
}

const NAME_CACHE_SIZE = 512;
const MAX_CACHED_NAME = 64;

/** Name as sent, its lowercase form and its kind, per slot; read them after {@link internName}. */
export const nameCache = {
  names: new Array<string>(NAME_CACHE_SIZE).fill(''),
  lnames: new Array<string>(NAME_CACHE_SIZE).fill(''),
  kinds: new Uint8Array(NAME_CACHE_SIZE),
};
/** The bytes of each cached name (MAX_CACHED_NAME per slot) and its length: comparing bytes is cheaper than charCodeAt. */
const cachedBytes = new Uint8Array(NAME_CACHE_SIZE * MAX_CACHED_NAME);
const cachedLengths = new Uint8Array(NAME_CACHE_SIZE);

interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

/** One latin1 string of buf[start..end): the fastest way Node offers to turn head bytes into a string. */
export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as Latin1Buffer).latin1Slice(start, end);
}

/**
 * Puts the name at buf[start..end) (with the hash scanFields computed) in the name cache and
 * returns its slot, or -1 when the name is too long to cache (the caller builds its own strings).
 */
export function internName(buf: Buffer, start: number, end: number, hash: number): number {
  const slot = (hash ^ (hash >>> 9)) & (NAME_CACHE_SIZE - 1);
  const n = end - start;
  if (cachedLengths[slot] === n) {
    const bytes = cachedBytes;
    const base = slot * MAX_CACHED_NAME - start;
    let k = start;
    while (k < end && bytes[base + k] === buf[k]) k++;
    if (k === end) return slot;
  }
  if (n > MAX_CACHED_NAME) return -1;
  const name = latin1(buf, start, end);
  const lname = name.toLowerCase();
  cachedBytes.set(buf.subarray(start, end), slot * MAX_CACHED_NAME);
  cachedLengths[slot] = n;
  nameCache.names[slot] = name;
  nameCache.lnames[slot] = lname;
  nameCache.kinds[slot] = nameKind(lname);
  return slot;
}

// ---------------------------------------------------------------------------------------------
// Field values with framing meaning. These run on raw bytes [start, end) of a field value that
// scanFields has already checked and trimmed.

/** Largest Content-Length (and chunk size) Portico accepts: 2^53 - 1, exactly representable. */
export const MAX_LENGTH = Number.MAX_SAFE_INTEGER;

/** Content-Length = 1*DIGIT, at most 2^53-1. Returns -1 when malformed (empty, sign, list, hex, spaces, too big). */
export function parseContentLength(buf: Uint8Array, start: number, end: number): number {
  if (start === end || end - start > 16) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v > MAX_LENGTH ? -1 : v;
}

/**
 * Connection options (RFC 9110 §7.6.1) in buf[start..end): a comma list of tokens, appended
 * lowercased to `out` (cut from `s`, the latin1 string of the same bytes). Empty list elements are
 * skipped as the RFC asks; a non-token element makes it return false.
 */
export function parseConnection(buf: Uint8Array, s: string, start: number, end: number, out: string[]): boolean {
  const tchar = TCHAR;
  const upperTable = UPPER;
  let i = start;
  while (i < end) {
    let c = buf[i]!;
    while (c === SP || c === HT || c === COMMA) {
      if (++i >= end) return true;
      c = buf[i]!;
    }
    const a = i;
    let upper = 0;
    while (i < end && tchar[(c = buf[i]!)] === 1) {
      upper |= upperTable[c]!;
      i++;
    }
    if (i === a) return false;
    const known = knownConnectionToken(buf, a, i);
    if (known !== undefined) out.push(known);
    else {
      const tok = s.substring(a, i);
      out.push(upper === 0 ? tok : tok.toLowerCase());
    }
    while (i < end && ((c = buf[i]!) === SP || c === HT)) i++;
    if (i < end && buf[i] !== COMMA) return false;
  }
  return true;
}

/** Matches buf[start..end) case-insensitively against lowercase `word` (letters and '-' only). */
function equalsLower(buf: Uint8Array, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if ((buf[start + k]! | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}

/** The common Connection options as constant strings, so that the usual header allocates nothing. */
function knownConnectionToken(buf: Uint8Array, start: number, end: number): string | undefined {
  switch (end - start) {
    case 5: return equalsLower(buf, start, end, 'close') ? 'close' : undefined;
    case 7: return equalsLower(buf, start, end, 'upgrade') ? 'upgrade' : undefined;
    case 10: return equalsLower(buf, start, end, 'keep-alive') ? 'keep-alive' : undefined;
    default: return undefined;
  }
}

/** Result of {@link parseTransferEncoding}. */
export const TE_CHUNKED = 0; // well-formed, chunked exactly once and last, every other coding registered
export const TE_NOT_CHUNKED_FINAL = 1; // well-formed, chunked absent, final coding something else
export const TE_UNKNOWN_CODING = 2; // well-formed, chunked last, an earlier coding is not a registered one
export const TE_MALFORMED = 3; // syntax Portico refuses, or chunked repeated / not last

/** Registered transfer codings (IANA HTTP Transfer Coding registry) other than chunked. */
function isKnownCoding(s: string): boolean {
  switch (s) {
    case 'gzip':
    case 'deflate':
    case 'compress':
    case 'x-gzip':
    case 'x-compress':
      return true;
    default:
      return false;
  }
}

/**
 * Transfer-Encoding, strict (the value of every Transfer-Encoding field line joined with ", "):
 * - elements are bare tokens separated by ',' with optional SP around it; a tab, an empty element
 *   (",,", leading/trailing comma, empty value), a parameter (";x") or a quoted string is MALFORMED;
 * - coding names compare case-insensitively; chunked more than once, or anywhere but last, is MALFORMED;
 * - otherwise a final coding other than chunked is NOT_CHUNKED_FINAL;
 * - otherwise a coding before chunked that is not registered (gzip, deflate, compress, x-gzip,
 *   x-compress) is UNKNOWN_CODING; else CHUNKED.
 */
export function parseTransferEncoding(s: string): number {
  const end = s.length;
  let i = 0;
  let sawChunked = false;
  let unknown = false;
  let lastChunked = false;
  for (;;) {
    while (i < end && s.charCodeAt(i) === SP) i++;
    const a = i;
    while (i < end && TCHAR[s.charCodeAt(i)] === 1) i++;
    if (i === a) return TE_MALFORMED; // empty element, or a non-token character
    const coding = s.substring(a, i).toLowerCase();
    while (i < end && s.charCodeAt(i) === SP) i++;
    if (coding === 'chunked') {
      if (sawChunked) return TE_MALFORMED;
      sawChunked = true;
      lastChunked = true;
    } else {
      if (sawChunked) return TE_MALFORMED; // chunked not last
      lastChunked = false;
      if (!isKnownCoding(coding)) unknown = true;
    }
    if (i === end) break;
    if (s.charCodeAt(i) !== COMMA) return TE_MALFORMED;
    i++;
  }
  if (!lastChunked) return TE_NOT_CHUNKED_FINAL;
  return unknown ? TE_UNKNOWN_CODING : TE_CHUNKED;
}

/**
 * Host (RFC 9110 §7.2) or an authority without userinfo, in buf[start..end): uri-host [ ":" port ],
 * where uri-host is an IP-literal in brackets or a reg-name/IPv4 address (pct-encoding checked), and
 * port is up to 5 digits. Empty is valid for a Host field (RFC 9112 §3.2); callers that need a host
 * check for it.
 */
export function isValidHost(buf: Uint8Array, start: number, end: number): boolean {
  const regName = REG_NAME;
  const hex = HEX;
  let i = start;
  if (i < end && buf[i] === 0x5b) {
    // IP-literal
    i++;
    const a = i;
    while (i < end && IP_LITERAL[buf[i]!] === 1) i++;
    if (i === a || i >= end || buf[i] !== 0x5d) return false;
    i++;
  } else {
    while (i < end) {
      const c = buf[i]!;
      if (c === COLON) break;
      if (regName[c] !== 1) return false;
      if (c === 0x25) {
        if (i + 2 >= end || hex[buf[i + 1]!]! < 0 || hex[buf[i + 2]!]! < 0) return false;
        i += 2;
      }
      i++;
    }
  }
  if (i === end) return true;
  if (buf[i] !== COLON) return false;
  i++;
  if (end - i > 5) return false;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
