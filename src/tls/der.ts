/**
 * The little of ASN.1 DER that OCSP needs: reading tag-length-value elements (definite lengths
 * only, as DER requires) and writing them.
 */

export interface Tlv {
  /** The tag byte (class, constructed bit and number; multi-byte tags are not used by OCSP). */
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly body: number;
  /** Offset just past the element. */
  readonly end: number;
}

export class DerError extends Error {
  constructor(what: string) {
    super(`malformed DER: ${what}`);
    this.name = 'DerError';
  }
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  SEQUENCE: 0x30,
  GENERALIZED_TIME: 0x18,
} as const;

/** The element at `off`, which must end by `limit`. */
export function readTlv(buf: Buffer, off: number, limit: number = buf.length): Tlv {
  if (off + 2 > limit) throw new DerError('truncated element');
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tag');
  let len = buf[off + 1]!;
  let body = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported length');
    if (body + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[body + i]!;
    body += n;
  }
  const end = body + len;
  if (end > limit) throw new DerError('element longer than its container');
  return { tag, start: off, body, end };
}

/** The elements inside a constructed element. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let off = parent.body;
  for (let i = 0; off < parent.end; i++) {
    if (i >= 10_000) throw new DerError('too many elements');
    const t = readTlv(buf, off, parent.end);
    out.push(t);
    off = t.end;
  }
  return out;
}

/** An element expected to have `tag`. */
export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined || t.tag !== tag) throw new DerError(`expected ${what}`);
  return t;
}

export const content = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.body, t.end);
export const whole = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

/** A dotted object identifier. */
export function oid(buf: Buffer, t: Tlv): string {
  const b = content(buf, t);
  if (b.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  const first = b[0]!;
  parts.push(first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80);
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if ((b[i]! & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** A GeneralizedTime (YYYYMMDDHHMMSS[.fff]Z) as milliseconds since 1970. */
export function generalizedTime(buf: Buffer, t: Tlv): number {
  const s = content(buf, t).toString('latin1');
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3})\d*)?Z$/.exec(s);
  if (m === null) throw new DerError(`bad GeneralizedTime ${JSON.stringify(s)}`);
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0'));
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
}

/** A DER element: tag, length, content. */
export function encode(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  let head: Buffer;
  if (n < 0x80) head = Buffer.from([tag, n]);
  else if (n < 0x100) head = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) head = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else head = Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([head, body]);
}

/** A dotted object identifier, encoded. */
export function encodeOid(dotted: string): Buffer {
  const p = dotted.split('.').map(Number);
  const bytes: number[] = [p[0]! * 40 + p[1]!];
  for (const v of p.slice(2)) {
    const enc: number[] = [v & 0x7f];
    let x = Math.floor(v / 128);
    while (x > 0) {
      enc.unshift((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    bytes.push(...enc);
  }
  return encode(TAG.OID, Buffer.from(bytes));
}
