/**
 * The part of a head parse that requests and responses share: the incomplete-head rule, and pass 2
 * over the field lines scanFields recorded (names interned, values cut from the head string, the
 * framing fields read). parseRequestHead and parseResponseHead each parse their own start line and
 * judge the framing from what {@link readFields} leaves in {@link headFields}.
 */
import {
  F_TOO_LARGE,
  FIELD_SLOTS,
  failure,
  fieldScan,
  internName,
  isValidHost,
  K_CONNECTION,
  K_CONTENT_LENGTH,
  K_EXPECT,
  K_HOST,
  K_OTHER,
  K_TRANSFER_ENCODING,
  K_UNDERSCORE_ALIAS,
  K_UPGRADE,
  nameCache,
  parseConnection,
  parseContentLength,
} from './http-chars.js';
import type { HeadLimits, ParseFailure } from './http-chars.js';

/** 'HTTP/' as bytes. */
export const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f] as const;

export const F_CL_DUP = failure(400, 'more than one Content-Length header');
export const F_CL_BAD = failure(400, 'malformed Content-Length');
export const F_CL_TE = failure(400, 'both Content-Length and Transfer-Encoding');
export const F_TE_MALFORMED = failure(400, 'malformed Transfer-Encoding');
export const F_CONNECTION = failure(400, 'malformed Connection header');
export const F_HOST_DUP = failure(400, 'more than one Host header');
export const F_HOST_BAD = failure(400, 'invalid Host header');
export const F_UNDERSCORE_ALIAS = failure(400, "field name reads as a framing or forwarding field with '_' for '-'");

/** Incomplete head: wait for more bytes (null), unless the head can no longer fit in maxHeaderBytes. */
export function incomplete(len: number, limits: HeadLimits): ParseFailure | null {
  return len >= limits.maxHeaderBytes ? F_TOO_LARGE : null;
}

/**
 * What {@link readFields} found besides the name and value lists. Parsers are synchronous and never
 * re-entered, so one module-level record serves every call (like fieldScan); each call sets every
 * member, and the caller reads them before it parses another head.
 */
export const headFields = {
  /** -1 when absent. */
  contentLength: -1,
  /** All Transfer-Encoding values joined with ", ", undefined when absent. */
  te: undefined as string | undefined,
  /** Request heads only: how many Host fields, and the value of the one. */
  hostCount: 0,
  host: undefined as string | undefined,
  /** Request heads only: all Upgrade values joined with ", ". */
  upgrade: undefined as string | undefined,
  /** Request heads only: `Expect: 100-continue` was sent. */
  expectContinue: false,
};

/**
 * Pass 2 over the `fieldScan.count` fields of a complete, byte-valid head: appends each name as
 * sent, its lowercase form and its value (cut from `s`, the latin1 string of the head) to `names`,
 * `lnames` and `values`, and the lowercased Connection tokens to `connection`; sets headFields.
 * Host, Expect and Upgrade are read only when `request` (a server's Host field means nothing).
 * Returns the failure of the first field that breaks a framing rule (headFields is then not set),
 * otherwise null.
 */
export function readFields(
  buf: Buffer,
  s: string,
  request: boolean,
  names: string[],
  lnames: string[],
  values: string[],
  connection: string[],
): ParseFailure | null {
  const count = fieldScan.count;
  const offsets = fieldScan.offsets;
  const hashes = fieldScan.hashes;
  const cachedNames = nameCache.names;
  const cachedLnames = nameCache.lnames;
  const cachedKinds = nameCache.kinds;
  let host: string | undefined;
  let hostCount = 0;
  let contentLength = -1;
  let te: string | undefined;
  let upgrade: string | undefined;
  let expectContinue = false;
  for (let f = 0; f < count; f++) {
    const o = f * FIELD_SLOTS;
    const nameStart = offsets[o]!;
    const nameEnd = offsets[o + 1]!;
    const valueStart = offsets[o + 2]!;
    const valueEnd = offsets[o + 3]!;
    const slot = internName(buf, nameStart, nameEnd, hashes[f]!);
    let name: string;
    let lname: string;
    let kind = K_OTHER;
    if (slot >= 0) {
      name = cachedNames[slot]!;
      lname = cachedLnames[slot]!;
      kind = cachedKinds[slot]!;
    } else {
      name = s.substring(nameStart, nameEnd);
      lname = name.toLowerCase();
    }
    const value = s.substring(valueStart, valueEnd);
    names.push(name);
    lnames.push(lname);
    values.push(value);
    switch (kind) {
      case K_CONNECTION:
        if (!parseConnection(buf, s, valueStart, valueEnd, connection)) return F_CONNECTION;
        break;
      case K_CONTENT_LENGTH:
        if (contentLength !== -1) return F_CL_DUP;
        contentLength = parseContentLength(buf, valueStart, valueEnd);
        if (contentLength < 0) return F_CL_BAD;
        break;
      case K_TRANSFER_ENCODING:
        te = te === undefined ? value : `${te}, ${value}`;
        break;
      case K_HOST:
        if (!request) break;
        if (++hostCount > 1) return F_HOST_DUP;
        if (!isValidHost(buf, valueStart, valueEnd)) return F_HOST_BAD;
        host = value;
        break;
      case K_EXPECT:
        if (request && value.length === 12 && value.toLowerCase() === '100-continue') expectContinue = true;
        break;
      case K_UNDERSCORE_ALIAS:
        if (request) return F_UNDERSCORE_ALIAS;
        break;
      case K_UPGRADE:
        if (request) upgrade = upgrade === undefined ? value : `${upgrade}, ${value}`;
        break;
    }
  }
  const out = headFields;
  out.contentLength = contentLength;
  out.te = te;
  out.hostCount = hostCount;
  out.host = host;
  out.upgrade = upgrade;
  out.expectContinue = expectContinue;
  return null;
}

/** Bits of {@link connectionOptions}. */
export const CONN_CLOSE = 1;
export const CONN_KEEP_ALIVE = 2;
export const CONN_UPGRADE = 4;

/** Which of close, keep-alive and upgrade the lowercased Connection tokens name, as CONN_* bits. */
export function connectionOptions(connection: readonly string[]): number {
  let bits = 0;
  for (let t = 0; t < connection.length; t++) {
    const tok = connection[t]!;
    if (tok === 'close') bits |= CONN_CLOSE;
    else if (tok === 'keep-alive') bits |= CONN_KEEP_ALIVE;
    else if (tok === 'upgrade') bits |= CONN_UPGRADE;
  }
  return bits;
}

/** Whether the connection persists after this head (RFC 9112 §9.3): HTTP/1.1 unless close, HTTP/1.0 only with keep-alive. */
export function persists(options: number, minor: 0 | 1): boolean {
  return (options & CONN_CLOSE) === 0 && (minor === 1 || (options & CONN_KEEP_ALIVE) !== 0);
}
