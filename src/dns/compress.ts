/**
 * DNS name compression (RFC 1035 §4.1.4) of an encoded message. The wire encoder writes every
 * name in full; this rewrites the message so that a name, or the tail of a name, that already
 * appears earlier is a two-byte pointer to it. Owner names are compressed, and the names inside
 * the RDATA of the types RFC 1035 defines (NS, CNAME, PTR, MX, SOA); the RDATA of every other type
 * is copied as it is (RFC 3597 §4: SRV targets, for one, must not be compressed). Pointers are
 * made only to bytes that are the same (the case of a name is kept).
 *
 * Pure: the input is not changed. A message that does not parse is returned as it is.
 */

const HEADER = 12;
/** Largest offset a pointer can hold (14 bits). */
const MAX_POINTER = 0x3fff;
/** Pointers followed while reading one name: more is a loop. */
const MAX_JUMPS = 64;

const T_NS = 2;
const T_CNAME = 5;
const T_SOA = 6;
const T_PTR = 12;
const T_MX = 15;

class Malformed extends Error {}

/** A name has at most 127 labels (255 bytes). */
const MAX_LABELS = 128;
/** Where each label of the name being copied starts (its length byte), in the input. Reused. */
const starts = new Int32Array(MAX_LABELS);
/** How many of `starts` are set. */
let nStarts = 0;
/** Hash of the suffix that begins at each label. Reused. */
const hashes = new Uint32Array(MAX_LABELS);
/** Below this many bytes a copy is a loop: Buffer#copy costs more than it saves. */
const SMALL_COPY = 64;

/** Fill `starts` with the labels of the name at `pos` (following pointers); return where it ends at `pos`. */
function readName(buf: Buffer, pos: number): number {
  nStarts = 0;
  let end = -1;
  let jumps = 0;
  let total = 0;
  for (;;) {
    if (pos >= buf.length) throw new Malformed();
    const len = buf[pos]!;
    if (len === 0) return end < 0 ? pos + 1 : end;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length || ++jumps > MAX_JUMPS) throw new Malformed();
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1]!;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new Malformed();
    if (pos + 1 + len > buf.length) throw new Malformed();
    total += len + 1;
    if (total > 255) throw new Malformed();
    starts[nStarts++] = pos;
    pos += 1 + len;
  }
}

class Writer {
  readonly out: Buffer;
  w = 0;
  /** Hash of a name suffix → the offset where it was first written (checked byte by byte on use). */
  private readonly dict = new Map<number, number>();

  constructor(
    private readonly src: Buffer,
    size: number,
  ) {
    this.out = Buffer.allocUnsafe(size);
  }

  copy(start: number, end: number): void {
    const n = end - start;
    if (this.w + n > this.out.length) throw new Malformed();
    if (n < SMALL_COPY) {
      const out = this.out;
      const src = this.src;
      let w = this.w;
      for (let k = start; k < end; k++) out[w++] = src[k]!;
    } else {
      this.src.copy(this.out, this.w, start, end);
    }
    this.w += n;
  }

  u16(v: number): void {
    if (this.w + 2 > this.out.length) throw new Malformed();
    this.out[this.w] = v >>> 8;
    this.out[this.w + 1] = v & 0xff;
    this.w += 2;
  }

  /** Write the name whose labels are in `starts`, its longest suffix already written as a pointer. */
  name(): void {
    const src = this.src;
    const n = nStarts;
    let h = 0x811c9dc5;
    for (let i = n - 1; i >= 0; i--) {
      const at = starts[i]!;
      const end = at + 1 + src[at]!;
      for (let k = at; k < end; k++) h = Math.imul(h ^ src[k]!, 0x01000193);
      hashes[i] = h >>> 0;
    }
    for (let i = 0; i < n; i++) {
      const key = hashes[i]!;
      const at = this.dict.get(key);
      if (at !== undefined && this.sameAt(at, i)) {
        this.u16(0xc000 | at);
        return;
      }
      if (at === undefined && this.w <= MAX_POINTER) this.dict.set(key, this.w);
      const lab = starts[i]!;
      this.copy(lab, lab + 1 + src[lab]!);
    }
    if (this.w + 1 > this.out.length) throw new Malformed();
    this.out[this.w++] = 0;
  }

  /** Whether the name written at `at` (pointers followed) is the same bytes as labels i.. of `starts`. */
  private sameAt(at: number, i: number): boolean {
    const out = this.out;
    const src = this.src;
    let jumps = 0;
    for (let j = i; j < nStarts; j++) {
      let len = out[at]!;
      while ((len & 0xc0) === 0xc0) {
        if (++jumps > MAX_JUMPS) return false;
        at = ((len & 0x3f) << 8) | out[at + 1]!;
        len = out[at]!;
      }
      const s = starts[j]!;
      if (len !== src[s]) return false;
      for (let k = 1; k <= len; k++) if (out[at + k] !== src[s + k]) return false;
      at += 1 + len;
    }
    let len = out[at]!;
    while ((len & 0xc0) === 0xc0) {
      if (++jumps > MAX_JUMPS) return false;
      at = ((len & 0x3f) << 8) | out[at + 1]!;
      len = out[at]!;
    }
    return len === 0;
  }
}

/** `msg` with its names compressed; `msg` itself when it does not parse or nothing was saved. */
export function compressMessage(msg: Buffer): Buffer {
  if (msg.length < HEADER) return msg;
  try {
    const out = compress(msg);
    return out.length < msg.length ? out : msg;
  } catch (err) {
    if (err instanceof Malformed) return msg;
    throw err;
  }
}

function compress(msg: Buffer): Buffer {
  const qd = msg.readUInt16BE(4);
  const records = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  // A pointer never takes more room than the name it replaces: the output is at most as long
  // (a message that holds pointers itself may not fit, and is then returned as it is).
  const wr = new Writer(msg, msg.length);
  wr.copy(0, HEADER);
  let r = HEADER;
  for (let i = 0; i < qd; i++) {
    r = readName(msg, r);
    wr.name();
    if (r + 4 > msg.length) throw new Malformed();
    wr.copy(r, r + 4);
    r += 4;
  }
  for (let i = 0; i < records; i++) {
    r = readName(msg, r);
    wr.name();
    if (r + 10 > msg.length) throw new Malformed();
    const type = msg.readUInt16BE(r);
    const rdlen = msg.readUInt16BE(r + 8);
    wr.copy(r, r + 8);
    r += 10;
    const rdEnd = r + rdlen;
    if (rdEnd > msg.length) throw new Malformed();
    const lenAt = wr.w;
    wr.u16(0);
    const start = wr.w;
    switch (type) {
      case T_NS:
      case T_CNAME:
      case T_PTR:
        r = readName(msg, r);
        wr.name();
        break;
      case T_MX:
        if (r + 2 > rdEnd) throw new Malformed();
        wr.copy(r, r + 2);
        r = readName(msg, r + 2);
        wr.name();
        break;
      case T_SOA:
        r = readName(msg, r);
        wr.name();
        r = readName(msg, r);
        wr.name();
        if (r + 20 > rdEnd) throw new Malformed();
        wr.copy(r, r + 20);
        r += 20;
        break;
      default:
        wr.copy(r, rdEnd);
        r = rdEnd;
    }
    if (r !== rdEnd) throw new Malformed();
    const rd = wr.w - start;
    wr.out[lenAt] = rd >>> 8;
    wr.out[lenAt + 1] = rd & 0xff;
  }
  if (r !== msg.length) throw new Malformed();
  return wr.out.subarray(0, wr.w);
}
