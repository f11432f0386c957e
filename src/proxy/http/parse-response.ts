/**
 * Strict HTTP/1.x response-head parser for the server side of Portico's data path (RFC 9112 §4, §6).
 *
 * Same contract as parseRequestHead: stateless, `null` until the head is complete, a failure as soon
 * as bytes seen are invalid. A failure here means the server broke framing: the caller destroys that
 * server connection and answers 502, whatever `status` the failure carries.
 */
import {
  CR,
  F_BARE_CR,
  F_BARE_LF,
  FIELD_VALUE,
  LF,
  SP,
  TE_MALFORMED,
  TE_NOT_CHUNKED_FINAL,
  failure,
  latin1,
  parseTransferEncoding,
  scanFields,
} from './http-chars.js';
import {
  F_CL_TE,
  F_TE_MALFORMED,
  HTTP_SLASH,
  connectionOptions,
  headFields,
  incomplete,
  persists,
  readFields,
} from './parse-headers.js';
import type { HeadLimits, ParseFailure } from './http-chars.js';

export type { HeadLimits, ParseFailure } from './http-chars.js';

export interface ResponseHead {
  readonly ok: true;
  /** 100-999. */
  status: number;
  /** Reason phrase as sent (may be empty). */
  reason: string;
  minor: 0 | 1;
  names: string[];
  lnames: string[];
  values: string[];
  /** Offset just past the CRLFCRLF that ends the head. */
  headEnd: number;
  /** -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding is present and ends with chunked. */
  chunked: boolean;
  /**
   * The server's connection may be reused after this response: the server did not ask to close, the
   * body is not delimited by close, and the connection was not switched (101, or 2xx to CONNECT).
   * Without the request method a response to HEAD that lacks Content-Length counts as close-delimited.
   */
  keepAlive: boolean;
  /** Lowercased tokens of all Connection headers. */
  connection: string[];
}

export type ResponseFraming = 'none' | 'length' | 'chunked' | 'close';

const F_VERSION = failure(400, 'malformed status-line version');
const F_VERSION_UNSUPPORTED = failure(505, 'HTTP version not supported');
const F_STATUS = failure(400, 'status code is not 3 digits (100-999)');
const F_1XX_FRAMING = failure(400, 'Content-Length above 0 or Transfer-Encoding on a 1xx response');
const F_REASON = failure(400, 'invalid reason-phrase character');
const F_TE_HTTP10 = failure(400, 'Transfer-Encoding on an HTTP/1.0 response');

/**
 * Parses a response head from `buf` (bytes from the start of a response). `requestMethod`, when
 * given, lets `keepAlive` account for HEAD and CONNECT; responseFraming() always needs it.
 *
 * The status-line is `HTTP/1.x SP 3DIGIT SP reason CRLF`; `HTTP/1.x SP 3DIGIT CRLF` (no SP, no reason)
 * is accepted too, as servers send it and it is unambiguous. Transfer-Encoding follows the same
 * syntax rule as requests (see parseTransferEncoding); a final coding other than chunked means the
 * body runs until the server closes, and unknown codings before chunked are the client's business.
 */
export function parseResponseHead(buf: Buffer, limits: HeadLimits, requestMethod?: string): ResponseHead | ParseFailure | null {
  const len = buf.length;
  const maxHeaderBytes = limits.maxHeaderBytes;
  const limit = len < maxHeaderBytes ? len : maxHeaderBytes;
  let i = 0;
  let c = 0;

  // "HTTP/" DIGIT "." DIGIT SP 3DIGIT
  for (; i < 12; i++) {
    if (i >= limit) return incomplete(len, limits);
    c = buf[i]!;
    if (i < 5) {
      if (c !== HTTP_SLASH[i]) return c === LF ? F_BARE_LF : F_VERSION;
    } else if (i === 5 || i === 7) {
      if (c < 0x30 || c > 0x39) return F_VERSION;
    } else if (i === 6) {
      if (c !== 0x2e) return F_VERSION;
    } else if (i === 8) {
      if (c !== SP) return F_VERSION;
    } else if (c < 0x30 || c > 0x39 || (i === 9 && c === 0x30)) {
      return F_STATUS;
    }
  }
  if (buf[5] !== 0x31) return F_VERSION_UNSUPPORTED;
  const minor: 0 | 1 = buf[7] === 0x30 ? 0 : 1;
  const status = (buf[9]! - 0x30) * 100 + (buf[10]! - 0x30) * 10 + (buf[11]! - 0x30);

  // [ SP reason-phrase ] CRLF
  if (i >= limit) return incomplete(len, limits);
  c = buf[i]!;
  let reasonStart = i;
  if (c === SP) {
    reasonStart = ++i;
    if (i >= limit) return incomplete(len, limits);
    c = buf[i]!;
    while (FIELD_VALUE[c] === 1) {
      if (++i >= limit) return incomplete(len, limits);
      c = buf[i]!;
    }
    if (c !== CR) return c === LF ? F_BARE_LF : F_REASON;
  } else if (c !== CR) {
    return c === LF ? F_BARE_LF : F_STATUS;
  }
  const reasonEnd = i;
  if (++i >= limit) return incomplete(len, limits);
  if (buf[i] !== LF) return F_BARE_CR;
  i++;

  const headEnd = scanFields(buf, i, limit, limits.maxHeaders);
  if (typeof headEnd !== 'number') return headEnd;
  if (headEnd < 0) return incomplete(len, limits);

  const s = latin1(buf, 0, headEnd);
  const reason = reasonEnd === reasonStart ? '' : s.substring(reasonStart, reasonEnd);
  const names: string[] = [];
  const lnames: string[] = [];
  const values: string[] = [];
  const connection: string[] = [];
  const failed = readFields(buf, s, false, names, lnames, values, connection);
  if (failed !== null) return failed;
  const contentLength = headFields.contentLength;
  const te = headFields.te;

  // RFC 9110 §8.6, §6.1: a 1xx has no content and must not carry framing fields; a client that
  // honoured them would take the next response's bytes as this one's body (Content-Length: 0 is
  // harmless either way, and some servers send it).
  if (status < 200 && (contentLength > 0 || te !== undefined)) return F_1XX_FRAMING;

  let chunked = false;
  if (te !== undefined) {
    if (minor === 0) return F_TE_HTTP10;
    if (contentLength !== -1) return F_CL_TE;
    const r = parseTransferEncoding(te);
    if (r === TE_MALFORMED) return F_TE_MALFORMED;
    chunked = r !== TE_NOT_CHUNKED_FINAL;
  }

  let keepAlive = persists(connectionOptions(connection), minor);
  if (keepAlive) {
    if (status === 101) keepAlive = false;
    else if (requestMethod === 'CONNECT' && status >= 200 && status < 300) keepAlive = false;
    else if (!chunked && contentLength < 0 && requestMethod !== 'HEAD' && status >= 200 && status !== 204 && status !== 304) {
      keepAlive = false; // body delimited by close
    }
  }

  return {
    ok: true,
    status,
    reason,
    minor,
    names,
    lnames,
    values,
    headEnd,
    contentLength,
    chunked,
    keepAlive,
    connection,
  };
}

/**
 * Body framing of a response, RFC 9112 §6.3: 'none' (HEAD, 1xx, 204, 304, and 2xx to CONNECT, after
 * which the connection is a tunnel), 'length', 'chunked', or 'close' (read until the server closes).
 */
export function responseFraming(head: ResponseHead, requestMethod: string): ResponseFraming {
  const status = head.status;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) return 'none';
  if (requestMethod === 'CONNECT' && status < 300) return 'none';
  if (head.chunked) return 'chunked';
  if (head.contentLength >= 0) return 'length';
  return 'close';
}
