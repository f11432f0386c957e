import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { H2FieldGuard, HUFFMAN_CODES, HUFFMAN_LENGTHS } from './field-guard.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

function huffman(s: string): Buffer {
  const lengths = HUFFMAN_LENGTHS;
  let bits = '';
  for (const ch of Buffer.from(s, 'latin1')) bits += HUFFMAN_CODES[ch]!.toString(2).padStart(lengths[ch]!, '0');
  while (bits.length % 8 !== 0) bits += '1';
  const out = Buffer.alloc(bits.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return out;
}

function str(s: string, useHuffman: boolean): Buffer {
  const b = useHuffman ? huffman(s) : Buffer.from(s, 'latin1');
  assert.ok(b.length < 127);
  return Buffer.concat([Buffer.from([(useHuffman ? 0x80 : 0) | b.length]), b]);
}

/** Literal with incremental indexing (0x40) or without (0x00), new name. */
const lit = (n: string, v: string, h = false, indexing = false): Buffer => Buffer.concat([Buffer.from([indexing ? 0x40 : 0]), str(n, h), str(v, h)]);
const REQ = Buffer.from([0x82, 0x87, 0x84, 0x41, 0x01, 0x61]); // :method GET, :scheme https, :path /, :authority a

function guarded(...blocks: Buffer[]): H2FieldGuard {
  const g = new H2FieldGuard();
  const bytes = Buffer.concat([PREFACE, ...blocks.map((b, i) => frame(1, 5, 2 * i + 1, Buffer.concat([REQ, b])))]);
  // fed one byte at a time: frames and blocks split anywhere
  for (let i = 0; i < bytes.length; i++) g.feed(bytes.subarray(i, i + 1));
  return g;
}

describe('H2FieldGuard', () => {
  it('derives the RFC 7541 Huffman code from its lengths', () => {
    // known codes from RFC 7541 Appendix B
    assert.equal(HUFFMAN_CODES[0x30], 0x0); // '0', 5 bits
    assert.equal(HUFFMAN_CODES[0x61], 0x3); // 'a', 5 bits
    assert.equal(HUFFMAN_CODES[0x20], 0x14); // ' ', 6 bits
    assert.equal(HUFFMAN_CODES[0], 0x1ff8); // 13 bits
    assert.equal(HUFFMAN_CODES[0x0a], 0x3ffffffc); // LF, 30 bits
    assert.equal(HUFFMAN_CODES[0x0d], 0x3ffffffd); // CR, 30 bits
    assert.equal(HUFFMAN_CODES[256], 0x3fffffff); // EOS
    // Kraft: a complete prefix code
    let sum = 0;
    for (let s = 0; s <= 256; s++) sum += 2 ** -HUFFMAN_LENGTHS[s]!;
    assert.equal(sum, 1);
  });

  for (const h of [false, true]) {
    const how = h ? 'Huffman' : 'plain';
    it(`marks CR, LF, NUL, controls and edge whitespace in values (${how})`, () => {
      for (const v of ['a\rb', 'a\nb', 'a\x00b', 'a\x7fb', 'a\x01b', ' a', 'a ', '\ta']) {
        const g = guarded(lit('x-a', v, h));
        assert.equal(g.take(1), true, JSON.stringify(v));
      }
    });
    it(`marks names that are not tokens (${how})`, () => {
      for (const n of ['x a', 'x:a', 'x\x00a', '']) assert.equal(guarded(lit(n, 'v', h)).take(1), true, JSON.stringify(n));
    });
    it(`passes valid fields (${how})`, () => {
      const g = guarded(lit('x-a', 'a\tb c', h), lit('user-agent', 'curl/8 (x)', h), lit('x-obs', '\xe9t\xe9', h), lit('x-empty', '', h));
      assert.equal(g.take(1), false);
    });
  }

  it('follows the dynamic table: an invalid entry is caught when referenced by index later', () => {
    // stream 1 inserts a valid entry, stream 3 an invalid one, stream 5 references both (62 = newest)
    const g = guarded(lit('x-good', 'v', false, true), lit('x-bad', 'a\rb', false, true), Buffer.from([0xbf]), Buffer.from([0xbe]));
    assert.equal(g.take(1), false);
    assert.equal(g.take(3), true);
    assert.equal(g.take(5), true, 'index 62: x-bad');
    assert.equal(g.take(7), false, 'index 63: x-good');
  });

  it('take() drops marks of lower streams and each mark is taken once', () => {
    const g = guarded(lit('x-a', 'a\rb'), lit('x-a', 'ok'), lit('x-a', 'a\nb'));
    assert.equal(g.take(3), false);
    assert.equal(g.take(1), false, 'mark of stream 1 dropped when stream 3 was taken');
    assert.equal(g.take(5), true);
    assert.equal(g.take(5), false);
  });

  it('stops on a block it cannot decode (nghttp2 ends the connection)', () => {
    const g = guarded(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), lit('x-a', 'a\rb'));
    assert.equal(g.take(3), false);
  });

  it('a header block over 256 KB is fatal', () => {
    const g = new H2FieldGuard();
    g.feed(PREFACE);
    const big = Buffer.alloc(16_000, 0x41);
    g.feed(frame(1, 0, 1, big));
    for (let i = 0; i < 20 && !g.fatal; i++) g.feed(frame(9, 0, 1, big));
    assert.equal(g.fatal, true);
  });
});
