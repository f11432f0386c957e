/**
 * Chunked transfer coding (RFC 9112 §7.1), tracked over bytes that Portico forwards unchanged.
 * The scanner never copies or decodes: it only finds where the message ends and refuses framing
 * that a server or client could read differently.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
 *
 * Strictness: the size is hex digits only (no sign, no "0x", no whitespace before it, at most
 * maxChunkSizeDigits digits, at most 2^53-1); whitespace after the size is allowed only before a ';'
 * (BWS); chunk data must be followed by exactly CRLF; trailers are field lines with the same syntax
 * as header fields (no obs-fold); every line ends with CRLF, a bare LF or a CR without LF is an error.
 */
import {
  BACKSLASH,
  CR,
  DQUOTE,
  EQUALS,
  FIELD_VALUE,
  HEX,
  HT,
  LF,
  MAX_LENGTH,
  QDTEXT,
  SEMI,
  SP,
  TCHAR,
  COLON,
} from './http-chars.js';

export interface ChunkedLimits {
  /** Most hex digits in a chunk size, leading zeros included. Default 16. */
  maxChunkSizeDigits?: number;
  /** Most bytes in the trailer section, final CRLF included. Default 16384. */
  maxTrailerBytes?: number;
  /** Most chunk-extension bytes over the whole message (they are not body bytes, so maxBodyBytes would not bound them). Default 16384. */
  maxExtensionBytes?: number;
  /**
   * Trailer fields (lowercase names) left out of what {@link ChunkedScanner.relay} returns. When
   * set, a trailer section with fields is held back until it ends (at most maxTrailerBytes).
   */
  dropTrailers?: ReadonlySet<string>;
}

const EMPTY = Buffer.alloc(0);

// States.
const SIZE_START = 0; // first hex digit of a chunk size
const SIZE = 1; // more hex digits
const SIZE_BWS = 2; // whitespace after the size: only ';' may follow
const EXT_NAME_START = 3; // after ';' (BWS allowed)
const EXT_NAME = 4;
const EXT_NAME_BWS = 5; // whitespace after an extension name
const EXT_VALUE_START = 6; // after '=' (BWS allowed)
const EXT_TOKEN = 7;
const EXT_QUOTED = 8;
const EXT_QUOTED_PAIR = 9;
const EXT_VALUE_BWS = 10; // after a value
const SIZE_LF = 11; // CR seen at the end of the size line
const DATA = 12;
const DATA_CR = 13;
const DATA_LF = 14;
const TRAILER_START = 15; // start of a trailer line, or of the final CRLF
const TRAILER_NAME = 16;
const TRAILER_VALUE = 17;
const TRAILER_LF = 18;
const END_LF = 19;
const DONE = 20;
const FAILED = 21;

/** Told of each run of chunk data as the scanner passes it: the payload without its framing. */
export interface ChunkSink {
  chunkData(buf: Uint8Array, start: number, end: number): void;
}

export class ChunkedScanner {
  /** Told of the chunk data scanned (a response body phase reads the payload); undefined: nothing is told. */
  sink: ChunkSink | undefined = undefined;
  private readonly maxDigits: number;
  private readonly maxTrailerBytes: number;
  private readonly maxExtensionBytes: number;
  private state = SIZE_START;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private trailerBytes = 0;
  private extensionBytes = 0;
  private data = 0;
  private err: string | undefined = undefined;
  // Trailer filtering (dropTrailers): the held trailer bytes, kept lines only once each line ends.
  private readonly dropTrailers: ReadonlySet<string> | undefined;
  private hold: Buffer = EMPTY;
  private holdLen = 0;
  private holding = false;
  /** Offset in the last feed's range from which its bytes were held; -1: none were. */
  private holdFrom = -1;
  /** The held bytes began in an earlier feed. */
  private heldEarlier = false;
  private lineStart = 0;
  private dropLine = false;
  private dropped = false;

  constructor(limits?: ChunkedLimits) {
    this.maxDigits = limits?.maxChunkSizeDigits ?? 16;
    this.maxTrailerBytes = limits?.maxTrailerBytes ?? 16384;
    this.maxExtensionBytes = limits?.maxExtensionBytes ?? 16384;
    this.dropTrailers = limits?.dropTrailers;
  }

  /** Why the last feed returned -2. */
  get error(): string | undefined {
    return this.err;
  }

  /** Body bytes (chunk data only) seen so far, for limits such as maxBodyBytes. */
  get dataBytes(): number {
    return this.data;
  }

  /** The message has ended (a previous feed returned its end offset). */
  get done(): boolean {
    return this.state === DONE;
  }

  /** Ready for the next message. */
  reset(): void {
    this.state = SIZE_START;
    this.size = 0;
    this.digits = 0;
    this.remaining = 0;
    this.trailerBytes = 0;
    this.extensionBytes = 0;
    this.data = 0;
    this.err = undefined;
    this.holdLen = 0;
    this.holding = false;
    this.holdFrom = -1;
    this.heldEarlier = false;
    this.dropLine = false;
    this.dropped = false;
  }

  /**
   * What to pass on of buf[start..end), the range the last feed consumed (its result when it found
   * the end, else the end it was given): the bytes as they are, except that with dropTrailers a
   * trailer section is held back until it ends and then comes without the dropped fields.
   */
  relay(buf: Buffer, start: number, end: number): Buffer {
    const from = this.holdFrom;
    const whole = start === 0 && end === buf.length;
    if (from < 0) return whole ? buf : buf.subarray(start, end);
    if (this.state !== DONE) return buf.subarray(start, from);
    this.holdFrom = -1;
    this.holding = false;
    if (!this.dropped && !this.heldEarlier) return whole ? buf : buf.subarray(start, end);
    return Buffer.concat([buf.subarray(start, from), this.hold.subarray(0, this.holdLen)]);
  }

  private keep(c: number): void {
    if (this.holdLen === this.hold.length) {
      const next = Buffer.allocUnsafe(this.hold.length === 0 ? 256 : this.hold.length * 2);
      this.hold.copy(next, 0, 0, this.holdLen);
      this.hold = next;
    }
    this.hold[this.holdLen++] = c;
  }

  private fail(reason: string): number {
    this.state = FAILED;
    this.err = reason;
    return -2;
  }

  /**
   * Feeds bytes buf[start..end). Returns the offset just past the end of the message (last chunk,
   * trailers and final CRLF) when it ends inside, -1 when all bytes were consumed and more are
   * needed, -2 on a framing error (see `error`; the scanner stays failed until reset()).
   */
  feed(buf: Uint8Array, start: number, end: number): number {
    let state = this.state;
    if (state === FAILED) return -2;
    if (state === DONE) return this.fail('bytes fed after the end of the chunked message');
    let i = start;
    this.holdFrom = -1;
    if (this.holding) {
      this.holdFrom = start;
      this.heldEarlier = true;
    }
    while (i < end) {
      if (state === DATA) {
        const avail = end - i;
        const take = avail < this.remaining ? avail : this.remaining;
        if (take > 0 && this.sink !== undefined) this.sink.chunkData(buf, i, i + take);
        i += take;
        this.remaining -= take;
        this.data += take;
        if (this.remaining === 0) state = DATA_CR;
        continue;
      }
      const c = buf[i]!;
      switch (state) {
        case SIZE_START: {
          const h = HEX[c]!;
          if (h < 0) {
            return this.fail(c === LF ? 'bare LF in chunk framing' : 'chunk size is not a hex number');
          }
          this.size = h;
          this.digits = 1;
          state = SIZE;
          break;
        }
        case SIZE: {
          const h = HEX[c]!;
          if (h >= 0) {
            if (++this.digits > this.maxDigits) return this.fail('chunk size has too many digits');
            this.size = this.size * 16 + h;
            if (this.size > MAX_LENGTH) return this.fail('chunk size too large');
          } else if (c === CR) {
            state = SIZE_LF;
          } else if (c === SEMI) {
            state = EXT_NAME_START;
          } else if (c === SP || c === HT) {
            state = SIZE_BWS;
          } else {
            return this.fail(c === LF ? 'bare LF in chunk framing' : 'invalid character after chunk size');
          }
          break;
        }
        case SIZE_LF:
          if (c !== LF) return this.fail('CR not followed by LF in chunk framing');
          if (this.size === 0) {
            state = TRAILER_START;
          } else {
            this.remaining = this.size;
            state = DATA;
          }
          break;
        case DATA_CR:
          if (c !== CR) return this.fail('chunk data not followed by CRLF');
          state = DATA_LF;
          break;
        case DATA_LF:
          if (c !== LF) return this.fail('chunk data not followed by CRLF');
          state = SIZE_START;
          break;
        case TRAILER_START:
        case TRAILER_NAME:
        case TRAILER_VALUE:
        case TRAILER_LF:
        case END_LF: {
          if (++this.trailerBytes > this.maxTrailerBytes) return this.fail('trailer section too large');
          let lineEnded = false;
          if (state === TRAILER_START) {
            if (c === CR) state = END_LF;
            else if (TCHAR[c] === 1) {
              state = TRAILER_NAME;
              if (this.dropTrailers !== undefined) {
                if (!this.holding) {
                  this.holding = true;
                  this.holdFrom = i;
                }
                this.lineStart = this.holdLen;
              }
            } else return this.fail(trailerStartError(c));
          } else if (state === TRAILER_NAME) {
            if (c === COLON) {
              state = TRAILER_VALUE;
              if (this.holding) this.dropLine = this.dropTrailers!.has(this.hold.toString('latin1', this.lineStart, this.holdLen).toLowerCase());
            } else if (TCHAR[c] !== 1) return this.fail(c === LF ? 'bare LF in trailer section' : 'invalid trailer field name');
          } else if (state === TRAILER_VALUE) {
            if (c === CR) state = TRAILER_LF;
            else if (FIELD_VALUE[c] !== 1) return this.fail(c === LF ? 'bare LF in trailer section' : 'invalid trailer field value');
          } else if (state === TRAILER_LF) {
            if (c !== LF) return this.fail('CR not followed by LF in trailer section');
            state = TRAILER_START;
            lineEnded = true;
          } else {
            if (c !== LF) return this.fail('CR not followed by LF at the end of the chunked message');
            if (this.holding) this.keep(c);
            this.state = DONE;
            return i + 1;
          }
          if (this.holding) {
            this.keep(c);
            if (lineEnded && this.dropLine) {
              this.holdLen = this.lineStart;
              this.dropLine = false;
              this.dropped = true;
            }
          }
          break;
        }
        default: {
          // chunk extensions
          if (++this.extensionBytes > this.maxExtensionBytes) return this.fail('chunk extensions too large');
          state = this.extension(state, c);
          if (state === FAILED) return -2;
          break;
        }
      }
      i++;
    }
    this.state = state;
    return -1;
  }

  /** One byte of chunk-ext; returns the next state, or FAILED with `err` set. */
  private extension(state: number, c: number): number {
    switch (state) {
      case SIZE_BWS:
        if (c === SP || c === HT) return state;
        if (c === SEMI) return EXT_NAME_START;
        break;
      case EXT_NAME_START:
        if (c === SP || c === HT) return state;
        if (TCHAR[c] === 1) return EXT_NAME;
        break;
      case EXT_NAME:
        if (TCHAR[c] === 1) return state;
        if (c === EQUALS) return EXT_VALUE_START;
        if (c === SEMI) return EXT_NAME_START;
        if (c === SP || c === HT) return EXT_NAME_BWS;
        if (c === CR) return SIZE_LF;
        break;
      case EXT_NAME_BWS:
        if (c === SP || c === HT) return state;
        if (c === EQUALS) return EXT_VALUE_START;
        if (c === SEMI) return EXT_NAME_START;
        if (c === CR) return SIZE_LF;
        break;
      case EXT_VALUE_START:
        if (c === SP || c === HT) return state;
        if (c === DQUOTE) return EXT_QUOTED;
        if (TCHAR[c] === 1) return EXT_TOKEN;
        break;
      case EXT_TOKEN:
        if (TCHAR[c] === 1) return state;
        if (c === SEMI) return EXT_NAME_START;
        if (c === SP || c === HT) return EXT_VALUE_BWS;
        if (c === CR) return SIZE_LF;
        break;
      case EXT_QUOTED:
        if (c === DQUOTE) return EXT_VALUE_BWS;
        if (c === BACKSLASH) return EXT_QUOTED_PAIR;
        if (QDTEXT[c] === 1) return state;
        break;
      case EXT_QUOTED_PAIR:
        if (c === HT || (c >= 0x20 && c !== 0x7f)) return EXT_QUOTED;
        break;
      case EXT_VALUE_BWS:
        if (c === SP || c === HT) return state;
        if (c === SEMI) return EXT_NAME_START;
        if (c === CR) return SIZE_LF;
        break;
    }
    this.err = c === LF ? 'bare LF in chunk framing' : 'malformed chunk extension';
    this.state = FAILED;
    return FAILED;
  }
}

function trailerStartError(c: number): string {
  if (c === LF) return 'bare LF in trailer section';
  if (c === SP || c === HT) return 'obs-fold in trailer section';
  if (c === COLON) return 'empty trailer field name';
  return 'invalid trailer field name';
}
