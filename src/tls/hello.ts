/**
 * Reading TLS hellos without terminating TLS: the ClientHello a client sends (SNI, offered
 * session id, ALPN) and the ServerHello a server answers (the session id it assigned, the
 * version it chose). Used by `tcp` listeners with `inspect: tls`.
 *
 * The parsers take everything received so far and parse from the start; a hello is small
 * (hundreds of bytes to a few KiB), may be split over TCP segments at any byte and over
 * several TLS records (RFC 8446 §5.1: a handshake message may span records). A hello larger
 * than `maxBytes`, a record of another type, or any structure that does not add up is an error.
 */

export interface ClientHello {
  /** server_name (host_name), lower case, without a trailing dot; undefined when absent. */
  readonly serverName: string | undefined;
  /** legacy_session_id in hex; '' when empty. */
  readonly sessionId: string;
  /** ALPN protocol names offered, in order. */
  readonly alpn: readonly string[];
  /** supported_versions lists TLS 1.3. */
  readonly offersTls13: boolean;
  /** A non-empty session_ticket extension (TLS 1.2 ticket resumption). */
  readonly hasTicket: boolean;
  /** A pre_shared_key extension (TLS 1.3 resumption). */
  readonly hasPsk: boolean;
}

export interface ServerHello {
  /** legacy_session_id in hex; '' when empty. */
  readonly sessionId: string;
  /** The negotiated version: 0x0303 for TLS 1.2, 0x0304 for TLS 1.3 (from supported_versions). */
  readonly version: number;
  /** A TLS 1.3 HelloRetryRequest (a second ClientHello follows). */
  readonly isRetry: boolean;
}

export type HelloParse<T> =
  | { readonly kind: 'more' }
  | { readonly kind: 'error'; readonly reason: string }
  | { readonly kind: 'done'; readonly hello: T; readonly length: number };

const MORE = { kind: 'more' } as const;
const fail = (reason: string): { kind: 'error'; reason: string } => ({ kind: 'error', reason });

const REC_HANDSHAKE = 22;
const HS_CLIENT_HELLO = 1;
const HS_SERVER_HELLO = 2;
/** RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes. */
const MAX_RECORD = 16384;

const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SESSION_TICKET = 35;
const EXT_PRE_SHARED_KEY = 41;
const EXT_SUPPORTED_VERSIONS = 43;

/** SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest (RFC 8446 §4.1.3). */
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

/**
 * The first handshake message of a TLS stream, gathered over as many records as it spans.
 * Returns the message body, its type, and how many stream bytes were read to get it (whole records).
 */
function firstHandshakeMessage(
  buf: Buffer,
  maxBytes: number,
): { kind: 'more' } | { kind: 'error'; reason: string } | { kind: 'done'; type: number; body: Buffer; length: number } {
  let at = 0;
  const parts: Buffer[] = [];
  let have = 0;
  let want = -1; // handshake message length including its 4-byte header, once known
  for (;;) {
    if (at >= maxBytes) return fail(`TLS hello larger than ${maxBytes} bytes`);
    if (buf.length < at + 5) {
      if (buf.length > at && buf[at] !== REC_HANDSHAKE) return fail('not a TLS handshake record');
      return buf.length >= maxBytes ? fail(`TLS hello larger than ${maxBytes} bytes`) : MORE;
    }
    if (buf[at] !== REC_HANDSHAKE) return fail('not a TLS handshake record');
    if (buf[at + 1] !== 3) return fail('not a TLS record version');
    const len = buf.readUInt16BE(at + 3);
    if (len === 0 || len > MAX_RECORD) return fail('bad TLS record length');
    if (at + 5 + len > maxBytes) return fail(`TLS hello larger than ${maxBytes} bytes`);
    if (buf.length < at + 5 + len) return MORE;
    parts.push(buf.subarray(at + 5, at + 5 + len));
    have += len;
    at += 5 + len;
    if (want < 0 && have >= 4) {
      const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      want = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (want > maxBytes) return fail(`TLS hello larger than ${maxBytes} bytes`);
    }
    if (want >= 0 && have >= want) {
      const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      return { kind: 'done', type: all[0]!, body: all.subarray(4, want), length: at };
    }
  }
}

/** A bounds-checked reader over a handshake message body. */
class Reader {
  at = 0;
  ok = true;
  constructor(readonly b: Buffer, readonly end: number = b.length) {}
  left(): number {
    return this.end - this.at;
  }
  u8(): number {
    if (this.at + 1 > this.end) return this.bad();
    return this.b[this.at++]!;
  }
  u16(): number {
    if (this.at + 2 > this.end) return this.bad();
    const v = this.b.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  bytes(n: number): Buffer {
    if (this.at + n > this.end) {
      this.bad();
      return Buffer.alloc(0);
    }
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  sub(n: number): Reader {
    if (this.at + n > this.end) {
      this.bad();
      return new Reader(this.b, this.at);
    }
    const r = new Reader(this.b, this.at + n);
    r.at = this.at;
    this.at += n;
    return r;
  }
  private bad(): number {
    this.ok = false;
    this.at = this.end;
    return 0;
  }
}

/** Host names as SNI carries them: letters, digits, '-', '_' and dots (RFC 6066: no IP literals, no trailing dot). */
function hostName(b: Buffer): string | undefined {
  if (b.length === 0 || b.length > 253) return undefined;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    const okc = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f;
    if (!okc) return undefined;
  }
  let s = b.toString('latin1').toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  return s;
}

/** Parse the ClientHello at the start of a client's TLS stream. */
export function parseClientHello(buf: Buffer, maxBytes = 16384): HelloParse<ClientHello> {
  const m = firstHandshakeMessage(buf, maxBytes);
  if (m.kind !== 'done') return m;
  if (m.type !== HS_CLIENT_HELLO) return fail('the first handshake message is not a ClientHello');
  const r = new Reader(m.body);
  const major = r.u8();
  r.u8();
  if (major !== 3) return fail('bad ClientHello version');
  r.bytes(32); // random
  const sidLen = r.u8();
  if (sidLen > 32) return fail('ClientHello session id longer than 32 bytes');
  const sessionId = r.bytes(sidLen).toString('hex');
  const suites = r.u16();
  if (suites === 0 || suites % 2 !== 0) return fail('bad ClientHello cipher suites');
  r.bytes(suites);
  const comp = r.u8();
  if (comp === 0) return fail('bad ClientHello compression methods');
  r.bytes(comp);
  if (!r.ok) return fail('truncated ClientHello');
  let serverName: string | undefined;
  const alpn: string[] = [];
  let offersTls13 = false;
  let hasTicket = false;
  let hasPsk = false;
  if (r.left() > 0) {
    const extLen = r.u16();
    const ext = r.sub(extLen);
    if (!r.ok || r.left() !== 0) return fail('bad ClientHello extensions length');
    const seen = new Set<number>();
    while (ext.left() > 0) {
      const type = ext.u16();
      const len = ext.u16();
      const data = ext.sub(len);
      if (!ext.ok) return fail('truncated ClientHello extension');
      if (seen.has(type)) return fail('duplicate ClientHello extension');
      seen.add(type);
      switch (type) {
        case EXT_SERVER_NAME: {
          const list = data.sub(data.u16());
          while (list.ok && list.left() > 0) {
            const nameType = list.u8();
            const name = list.bytes(list.u16());
            if (nameType !== 0 || !list.ok) continue;
            if (serverName !== undefined) return fail('two host names in server_name');
            serverName = hostName(name);
            if (serverName === undefined) return fail('bad host name in server_name');
          }
          if (!list.ok || !data.ok || data.left() !== 0) return fail('bad server_name extension');
          break;
        }
        case EXT_ALPN: {
          const list = data.sub(data.u16());
          while (list.ok && list.left() > 0) {
            const p = list.bytes(list.u8());
            if (list.ok) alpn.push(p.toString('latin1'));
          }
          if (!list.ok || !data.ok) return fail('bad ALPN extension');
          break;
        }
        case EXT_SUPPORTED_VERSIONS: {
          const list = data.sub(data.u8());
          while (list.ok && list.left() >= 2) if (list.u16() === 0x0304) offersTls13 = true;
          if (!list.ok || !data.ok) return fail('bad supported_versions extension');
          break;
        }
        case EXT_SESSION_TICKET:
          hasTicket = len > 0;
          break;
        case EXT_PRE_SHARED_KEY:
          hasPsk = true;
          break;
        default:
          break;
      }
    }
  }
  return { kind: 'done', length: m.length, hello: { serverName, sessionId, alpn, offersTls13, hasTicket, hasPsk } };
}

/** Parse the ServerHello at the start of a server's TLS stream. */
export function parseServerHello(buf: Buffer, maxBytes = 16384): HelloParse<ServerHello> {
  const m = firstHandshakeMessage(buf, maxBytes);
  if (m.kind !== 'done') return m;
  if (m.type !== HS_SERVER_HELLO) return fail('the first handshake message is not a ServerHello');
  const r = new Reader(m.body);
  const major = r.u8();
  const minor = r.u8();
  if (major !== 3) return fail('bad ServerHello version');
  const random = r.bytes(32);
  const sidLen = r.u8();
  if (sidLen > 32) return fail('ServerHello session id longer than 32 bytes');
  const sessionId = r.bytes(sidLen).toString('hex');
  r.u16(); // cipher suite
  r.u8(); // compression
  if (!r.ok) return fail('truncated ServerHello');
  let version = 0x0300 | minor;
  if (r.left() > 0) {
    const ext = r.sub(r.u16());
    while (ext.ok && ext.left() > 0) {
      const type = ext.u16();
      const data = ext.sub(ext.u16());
      if (type === EXT_SUPPORTED_VERSIONS && data.left() === 2) version = data.u16();
    }
    if (!ext.ok || !r.ok) return fail('bad ServerHello extensions');
  }
  return { kind: 'done', length: m.length, hello: { sessionId, version, isRetry: random.equals(HRR_RANDOM) } };
}
