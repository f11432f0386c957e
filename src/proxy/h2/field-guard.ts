/**
 * Finds HTTP/2 requests whose header fields are malformed (RFC 9113 §8.2.1): a name that is not a
 * token, or a value with NUL, CR, LF or another control character, or with whitespace at either
 * end. Node's HTTP/2 (nghttp2) drops such fields silently and hands the rest of the request on;
 * the request then reaches the server without the field, which is not what the client sent. RFC
 * 9113 says the stream is malformed: it must be reset with PROTOCOL_ERROR and nothing passed on.
 *
 * The guard reads the client's bytes before nghttp2 does (H2GuardedSocket), follows the frames,
 * decodes each complete header block with its own HPACK decoder (RFC 7541, the dynamic table kept
 * in step with nghttp2's) and marks the streams whose blocks hold a malformed field. DATA and the
 * other frames are only skipped over. Pseudo-header fields and uppercase names are left to
 * nghttp2, which resets those streams itself. A block the decoder cannot read is left to nghttp2
 * too (it ends the connection with COMPRESSION_ERROR), and the guard stops.
 */
import { FIELD_VALUE, HT, SP, TCHAR } from '../http/http-chars.js';

const HEADERS = 0x1;
const CONTINUATION = 0x9;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const PREFACE_LENGTH = 24;

/** Name lengths of the HPACK static table (RFC 7541 Appendix A), index 1..61; a dynamic entry with an indexed name takes its size from them. */
const STATIC_NAME_LENGTHS = new Uint8Array([
  0, 10, 7, 7, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 14, 15, 15, 13, 6, 27, 3, 5, 13, 13, 19, 16, 16, 14, 16, 13, 12, 6, 4, 4, 6,
  7, 4, 4, 8, 17, 13, 8, 19, 13, 4, 8, 12, 18, 19, 5, 7, 7, 11, 6, 10, 25, 17, 10, 4, 3, 16,
]);
const STATIC_COUNT = 61;

/**
 * Code lengths of the HPACK Huffman code (RFC 7541 Appendix B), symbols 0..255 then EOS (256). The
 * code is canonical: codes of one length are consecutive in symbol order, so the lengths alone
 * define it.
 */
export const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;
const MAX_CODE_LENGTH = 30;

/** Canonical decoding tables: per length, the first code, how many codes, and where their symbols start in SYMBOLS. */
const FIRST_CODE = new Int32Array(MAX_CODE_LENGTH + 2);
const CODE_COUNT = new Int32Array(MAX_CODE_LENGTH + 2);
const SYMBOL_START = new Int32Array(MAX_CODE_LENGTH + 2);
const SYMBOLS = new Uint16Array(257);
/** The code of each symbol (for tests and the check below). */
export const HUFFMAN_CODES = new Uint32Array(257);
(() => {
  let k = 0;
  let code = 0;
  for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
    FIRST_CODE[len] = code;
    SYMBOL_START[len] = k;
    for (let sym = 0; sym <= EOS; sym++) {
      if (HUFFMAN_LENGTHS[sym] !== len) continue;
      SYMBOLS[k++] = sym;
      HUFFMAN_CODES[sym] = code++;
      CODE_COUNT[len]!++;
    }
    code <<= 1;
  }
})();

/** Field validity bits. */
const NAME_OK = 1;
const VALUE_OK = 2;
const PSEUDO = 4;

/** Most compressed bytes in one header block; a larger block ends the connection (no server would take its fields). */
const MAX_BLOCK_BYTES = 256 * 1024;
/** Most marks held at once (nghttp2 and Node bound the streams a client can open and have refused). */
const MAX_MARKS = 1024;

export class H2FieldGuard {
  /** The guard stopped following the connection (a block it could not decode: nghttp2 ends the connection). */
  private broken = false;
  /** The connection must be closed (a block over MAX_BLOCK_BYTES). */
  fatal = false;
  private prefaceLeft = PREFACE_LENGTH;
  private readonly head = Buffer.alloc(9);
  private headLen = 0;
  private frameType = 0;
  private frameFlags = 0;
  private frameStream = 0;
  private frameLeft = 0;
  /** Bytes of the current HEADERS/CONTINUATION payload (padding and priority included until the frame ends). */
  private payload: Buffer[] = [];
  private payloadLen = 0;
  /** The block in progress (HEADERS then CONTINUATION fragments). */
  private block: Buffer[] = [];
  private blockLen = 0;
  private blockStream = 0;
  private highestStream = 0;
  private readonly marks = new Set<number>();
  // HPACK dynamic table: a ring of entries, newest last.
  private entrySizes: number[] = [];
  private entryBits: number[] = [];
  private entryNameLengths: number[] = [];
  private tableSize = 0;
  private maxTableSize: number;
  private readonly settingsTableSize: number;
  private scratch = Buffer.alloc(256);

  /** `headerTableSize`: SETTINGS_HEADER_TABLE_SIZE as the server announces it (Node's default 4096). */
  constructor(headerTableSize = 4096) {
    this.settingsTableSize = headerTableSize;
    this.maxTableSize = headerTableSize;
  }

  /**
   * Whether stream `id`'s request had a malformed field; marks of lower streams are dropped (streams
   * open in increasing order, so nghttp2 refused them itself).
   */
  take(id: number): boolean {
    if (this.marks.size === 0) return false;
    for (const m of this.marks) {
      if (m > id) break;
      this.marks.delete(m);
      if (m === id) return true;
    }
    return false;
  }

  /** Reads the next bytes the client sent. */
  feed(chunk: Buffer): void {
    if (this.broken || this.fatal) return;
    let i = 0;
    const n = chunk.length;
    if (this.prefaceLeft > 0) {
      const skip = Math.min(this.prefaceLeft, n);
      this.prefaceLeft -= skip;
      i = skip;
    }
    while (i < n) {
      if (this.frameLeft === 0 && this.headLen < 9) {
        const take = Math.min(9 - this.headLen, n - i);
        chunk.copy(this.head, this.headLen, i, i + take);
        this.headLen += take;
        i += take;
        if (this.headLen < 9) return;
        this.frameLeft = this.head.readUIntBE(0, 3);
        this.frameType = this.head[3]!;
        this.frameFlags = this.head[4]!;
        this.frameStream = this.head.readUInt32BE(5) & 0x7fffffff;
        this.payloadLen = 0;
        if (this.frameLeft === 0) {
          this.endFrame();
          if (this.broken || this.fatal) return;
          continue;
        }
      }
      const take = Math.min(this.frameLeft, n - i);
      if (this.frameType === HEADERS || this.frameType === CONTINUATION) {
        if (this.blockLen + this.payloadLen + take > MAX_BLOCK_BYTES) {
          this.fatal = true;
          return;
        }
        this.payload.push(chunk.subarray(i, i + take));
        this.payloadLen += take;
      }
      this.frameLeft -= take;
      i += take;
      if (this.frameLeft === 0) {
        this.endFrame();
        if (this.broken || this.fatal) return;
      }
    }
  }

  private endFrame(): void {
    this.headLen = 0;
    const type = this.frameType;
    if (type !== HEADERS && type !== CONTINUATION) return;
    let p = this.payload.length === 1 ? this.payload[0]! : Buffer.concat(this.payload, this.payloadLen);
    this.payload = [];
    if (type === HEADERS) {
      let start = 0;
      let end = p.length;
      if ((this.frameFlags & FLAG_PADDED) !== 0) {
        if (p.length < 1) return this.stop();
        end -= p[0]!;
        start = 1;
      }
      if ((this.frameFlags & FLAG_PRIORITY) !== 0) start += 5;
      if (start > end) return this.stop();
      p = p.subarray(start, end);
      this.block = [];
      this.blockLen = 0;
      this.blockStream = this.frameStream;
    } else if (this.frameStream !== this.blockStream) {
      return this.stop(); // nghttp2 ends the connection: CONTINUATION out of place
    }
    // The bytes were not copied: they are held only until the block ends (bounded above).
    this.block.push(p);
    this.blockLen += p.length;
    if ((this.frameFlags & FLAG_END_HEADERS) === 0) return;
    const block = this.block.length === 1 ? this.block[0]! : Buffer.concat(this.block, this.blockLen);
    this.block = [];
    this.blockLen = 0;
    const bad = this.decodeBlock(block);
    if (bad < 0) return this.stop();
    const id = this.blockStream;
    if (id > this.highestStream) {
      this.highestStream = id;
      if (bad > 0) {
        if (this.marks.size >= MAX_MARKS) this.marks.delete(this.marks.values().next().value!);
        this.marks.add(id);
      }
    }
  }

  private stop(): void {
    this.broken = true;
    this.marks.clear();
  }

  /** Decodes one header block: 1 when a regular field is malformed, 0 when none is, -1 when the block cannot be decoded. */
  private decodeBlock(b: Buffer): number {
    let i = 0;
    let bad = 0;
    const n = b.length;
    while (i < n) {
      const c = b[i]!;
      if ((c & 0x80) !== 0) {
        // indexed field
        const idx = this.int(b, i, 7);
        if (idx < 0) return -1;
        i = this.at;
        const bits = this.bitsOf(idx);
        if (bits < 0) return -1;
        if ((bits & PSEUDO) === 0 && (bits & (NAME_OK | VALUE_OK)) !== (NAME_OK | VALUE_OK)) bad = 1;
        continue;
      }
      if ((c & 0xe0) === 0x20) {
        // dynamic table size update
        const size = this.int(b, i, 5);
        if (size < 0 || size > this.settingsTableSize) return -1;
        i = this.at;
        this.maxTableSize = size;
        this.evict(0);
        continue;
      }
      const indexing = (c & 0xc0) === 0x40;
      const nameIdx = this.int(b, i, indexing ? 6 : 4);
      if (nameIdx < 0) return -1;
      i = this.at;
      let nameBits: number;
      let nameLen: number;
      if (nameIdx === 0) {
        const len = this.str(b, i);
        if (len < 0) return -1;
        i = this.at;
        nameLen = len;
        nameBits = nameCheck(this.scratch, len);
      } else {
        const bits = this.bitsOf(nameIdx);
        if (bits < 0) return -1;
        nameBits = bits & (NAME_OK | PSEUDO);
        nameLen = nameIdx <= STATIC_COUNT ? STATIC_NAME_LENGTHS[nameIdx]! : this.entryNameLengths[this.entryNameLengths.length - (nameIdx - STATIC_COUNT)]!;
      }
      const valueLen = this.str(b, i);
      if (valueLen < 0) return -1;
      i = this.at;
      const bits = nameBits | (valueOk(this.scratch, valueLen) ? VALUE_OK : 0);
      if ((bits & PSEUDO) === 0 && (bits & (NAME_OK | VALUE_OK)) !== (NAME_OK | VALUE_OK)) bad = 1;
      if (indexing) this.insert(nameLen, valueLen, bits);
    }
    return bad;
  }

  /** Offset after the last integer or string read. */
  private at = 0;

  /** An HPACK integer with an N-bit prefix at b[i] (RFC 7541 §5.1); -1 when truncated or too large. */
  private int(b: Buffer, i: number, prefix: number): number {
    const max = (1 << prefix) - 1;
    let v = b[i]! & max;
    i++;
    if (v === max) {
      let m = 0;
      let c: number;
      do {
        if (i >= b.length || m > 21) return -1;
        c = b[i++]!;
        v += (c & 0x7f) * 2 ** m;
        m += 7;
      } while ((c & 0x80) !== 0);
    }
    this.at = i;
    return v;
  }

  /** A string literal at b[i], decoded into `scratch`; its length, or -1. */
  private str(b: Buffer, i: number): number {
    const huffman = (b[i]! & 0x80) !== 0;
    const len = this.int(b, i, 7);
    if (len < 0) return -1;
    const start = this.at;
    const end = start + len;
    if (end > b.length) return -1;
    this.at = end;
    if (!huffman) {
      this.room(len);
      b.copy(this.scratch, 0, start, end);
      return len;
    }
    this.room(Math.ceil((len * 8) / 5));
    return this.huffman(b, start, end);
  }

  private room(n: number): void {
    if (this.scratch.length < n) this.scratch = Buffer.alloc(Math.max(n, this.scratch.length * 2));
  }

  /** Canonical Huffman decoding of b[start..end) into scratch; the length, or -1 (EOS, or padding that is not a prefix of EOS). */
  private huffman(b: Buffer, start: number, end: number): number {
    const out = this.scratch;
    let o = 0;
    let code = 0;
    let len = 0;
    for (let i = start; i < end; i++) {
      const byte = b[i]!;
      for (let bit = 7; bit >= 0; bit--) {
        code = (code << 1) | ((byte >> bit) & 1);
        len++;
        const k = code - FIRST_CODE[len]!;
        if (k >= 0 && k < CODE_COUNT[len]!) {
          const sym = SYMBOLS[SYMBOL_START[len]! + k]!;
          if (sym === EOS) return -1;
          out[o++] = sym;
          code = 0;
          len = 0;
        } else if (len >= MAX_CODE_LENGTH) {
          return -1;
        }
      }
    }
    // Padding: at most 7 bits, all ones (the most significant bits of EOS).
    if (len > 7 || code !== (1 << len) - 1) return -1;
    return o;
  }

  /** Validity bits of table entry `idx` (static 1..61, dynamic after), or -1 when there is none. */
  private bitsOf(idx: number): number {
    if (idx === 0) return -1;
    if (idx <= STATIC_COUNT) return NAME_OK | VALUE_OK | (idx <= 14 ? PSEUDO : 0);
    const k = this.entryBits.length - (idx - STATIC_COUNT);
    return k >= 0 ? this.entryBits[k]! : -1;
  }

  private insert(nameLen: number, valueLen: number, bits: number): void {
    const size = nameLen + valueLen + 32;
    this.evict(size);
    if (size > this.maxTableSize) return; // RFC 7541 §4.4: the table is emptied and the entry not added
    this.entrySizes.push(size);
    this.entryBits.push(bits);
    this.entryNameLengths.push(nameLen);
    this.tableSize += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit (or the table is empty). */
  private evict(room: number): void {
    let drop = 0;
    while (drop < this.entrySizes.length && this.tableSize + room > this.maxTableSize) {
      this.tableSize -= this.entrySizes[drop]!;
      drop++;
    }
    if (drop > 0) {
      this.entrySizes.splice(0, drop);
      this.entryBits.splice(0, drop);
      this.entryNameLengths.splice(0, drop);
    }
  }
}

/** NAME_OK for a token, PSEUDO for a name starting with ':' (left to nghttp2). */
function nameCheck(s: Buffer, len: number): number {
  if (len === 0) return 0;
  if (s[0] === 0x3a) return PSEUDO;
  for (let k = 0; k < len; k++) if (TCHAR[s[k]!] !== 1) return 0;
  return NAME_OK;
}

/** A field value as RFC 9110 §5.5 and RFC 9113 §8.2.1 allow: no control characters but HTAB, no whitespace at either end. */
function valueOk(s: Buffer, len: number): boolean {
  if (len === 0) return true;
  const first = s[0]!;
  const last = s[len - 1]!;
  if (first === SP || first === HT || last === SP || last === HT) return false;
  for (let k = 0; k < len; k++) if (FIELD_VALUE[s[k]!] !== 1) return false;
  return true;
}
