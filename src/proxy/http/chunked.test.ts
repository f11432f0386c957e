import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkedScanner } from './chunked.js';
import type { ChunkedLimits } from './chunked.js';

/** Feeds the whole string at once; returns the feed result and the scanner. */
function scan(raw: string, limits?: ChunkedLimits): { end: number; scanner: ChunkedScanner } {
  const scanner = new ChunkedScanner(limits);
  const buf = Buffer.from(raw, 'latin1');
  return { end: scanner.feed(buf, 0, buf.length), scanner };
}

function ends(raw: string, at: number = raw.length, data?: number): ChunkedScanner {
  const { end, scanner } = scan(raw);
  assert.equal(end, at, `${JSON.stringify(raw)}: ${scanner.error ?? ''}`);
  assert.equal(scanner.error, undefined);
  if (data !== undefined) assert.equal(scanner.dataBytes, data);
  return scanner;
}

function needsMore(raw: string): void {
  const { end, scanner } = scan(raw);
  assert.equal(end, -1, `${JSON.stringify(raw)}: ${scanner.error ?? ''}`);
}

function errors(raw: string, limits?: ChunkedLimits): string {
  const { end, scanner } = scan(raw, limits);
  assert.equal(end, -2, `expected a framing error for ${JSON.stringify(raw)}`);
  assert.ok(scanner.error !== undefined && scanner.error.length > 0);
  return scanner.error;
}

/** Splits at every offset (two feeds) and checks the end offset and data count match one feed. */
function sameAtEverySplit(raw: string): void {
  const buf = Buffer.from(raw, 'latin1');
  const one = new ChunkedScanner();
  const expected = one.feed(buf, 0, buf.length);
  for (let k = 0; k <= buf.length; k++) {
    const s = new ChunkedScanner();
    let r = s.feed(buf, 0, k);
    if (r === -1) r = s.feed(buf, k, buf.length);
    assert.equal(r, expected, `split at ${k} of ${JSON.stringify(raw)}`);
    if (expected >= 0) assert.equal(s.dataBytes, one.dataBytes);
  }
}

describe('ChunkedScanner: well-formed bodies', () => {
  it('finds the end of a simple body and counts only chunk data', () => {
    ends('5\r\nhello\r\n0\r\n\r\n', undefined, 5);
    ends('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', undefined, 11);
    ends('0\r\n\r\n', 5, 0);
  });

  it('returns the offset of the end when more bytes follow (pipelining)', () => {
    const body = '3\r\nabc\r\n0\r\n\r\n';
    ends(`${body}GET / HTTP/1.1\r\n`, body.length, 3);
  });

  it('accepts hex sizes in either case and with leading zeros', () => {
    ends(`a\r\n${'x'.repeat(10)}\r\n0\r\n\r\n`, undefined, 10);
    ends(`1F\r\n${'x'.repeat(31)}\r\n0\r\n\r\n`, undefined, 31);
    ends(`0000000000000010\r\n${'x'.repeat(16)}\r\n000\r\n\r\n`, undefined, 16);
  });

  it('passes any bytes, CR and LF included, inside chunk data', () => {
    ends('4\r\n\r\n\n\x00\r\n0\r\n\r\n', undefined, 4);
  });

  it('accepts chunk extensions', () => {
    ends('5;name\r\nhello\r\n0\r\n\r\n');
    ends('5;name=value\r\nhello\r\n0\r\n\r\n');
    ends('5;a=1;b;c="quoted \\" str;ing"\r\nhello\r\n0;last=1\r\n\r\n');
    ends('5 ; a = 1 ;b\t\r\nhello\r\n0\r\n\r\n');
    ends('5;a="\xe9"\r\nhello\r\n0\r\n\r\n');
  });

  it('accepts trailers with field syntax', () => {
    ends('5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n', undefined, 5);
    ends('0\r\nX-Obs: \xe9\t x\r\n\r\n');
  });

  it('accepts sizes up to 2^53-1 and asks for more data', () => {
    needsMore('1fffffffffffff\r\n');
    needsMore('5\r\nhel');
    needsMore('5\r\nhello');
    needsMore('5\r\nhello\r');
    needsMore('0\r\n');
    needsMore('0\r\nX: y\r\n');
    needsMore('0\r\n\r');
    needsMore('');
  });
});

describe('ChunkedScanner: framing errors', () => {
  const cases: Array<[string, string]> = [
    ['empty size line', '\r\nhello\r\n0\r\n\r\n'],
    ['0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
    ['plus sign', '+5\r\nhello\r\n0\r\n\r\n'],
    ['minus sign', '-5\r\nhello\r\n0\r\n\r\n'],
    ['space before the size', ' 5\r\nhello\r\n0\r\n\r\n'],
    ['tab before the size', '\t5\r\nhello\r\n0\r\n\r\n'],
    ['whitespace after the size without an extension', '5 \r\nhello\r\n0\r\n\r\n'],
    ['non-hex size', 'g\r\n'],
    ['too many digits', '00000000000000005\r\nhello\r\n0\r\n\r\n'],
    ['size above 2^53-1', '20000000000000\r\n'],
    ['size overflowing 64 bits', 'ffffffffffffffff\r\n'],
    ['bare LF after the size', '5\nhello\r\n0\r\n\r\n'],
    ['CR without LF after the size', '5\rhello\r\n0\r\n\r\n'],
    ['data longer than the size', '5\r\nhello!\r\n0\r\n\r\n'],
    ['data followed by bare LF', '5\r\nhello\n0\r\n\r\n'],
    ['data followed by CR without LF', '5\r\nhello\rx0\r\n\r\n'],
    ['bare LF ending the last chunk line', '0\n\r\n'],
    ['bare LF ending the message', '0\r\n\n'],
    ['CR without LF ending the message', '0\r\n\rx'],
    ['empty extension name', '5;\r\nhello\r\n0\r\n\r\n'],
    ['extension with empty value', '5;a=\r\nhello\r\n0\r\n\r\n'],
    ['extension value with a space inside', '5;a=b c\r\nhello\r\n0\r\n\r\n'],
    ['extension with a control character', '5;a\x01\r\nhello\r\n0\r\n\r\n'],
    ['unterminated quoted extension', '5;a="b\r\nhello\r\n0\r\n\r\n'],
    ['extension ended by bare LF', '5;a=b\nhello\r\n0\r\n\r\n'],
    ['trailer obs-fold', '0\r\nX: a\r\n b\r\n\r\n'],
    ['trailer with space before the colon', '0\r\nX : a\r\n\r\n'],
    ['trailer without a name', '0\r\n: a\r\n\r\n'],
    ['trailer without a colon', '0\r\nX\r\n\r\n'],
    ['trailer with an invalid name', '0\r\nX(y): a\r\n\r\n'],
    ['trailer value with NUL', '0\r\nX: a\x00\r\n\r\n'],
    ['trailer ended by bare LF', '0\r\nX: a\n\r\n'],
  ];
  for (const [name, raw] of cases) {
    it(`refuses ${name}`, () => {
      errors(raw);
    });
  }

  it('bounds size digits, trailers and extensions by its limits', () => {
    errors('00005\r\n', { maxChunkSizeDigits: 4 });
    assert.equal(scan('0005\r\nhello\r\n0\r\n\r\n', { maxChunkSizeDigits: 4 }).end, 18);
    const trailer = `0\r\nX-T: ${'v'.repeat(40)}\r\n\r\n`;
    errors(trailer, { maxTrailerBytes: 40 });
    assert.equal(scan(trailer, { maxTrailerBytes: trailer.length - 3 }).end, trailer.length);
    errors(`5;${'e'.repeat(20)}\r\nhello\r\n0\r\n\r\n`, { maxExtensionBytes: 16 });
    errors(`1;${'e'.repeat(9)}\r\nx\r\n1;${'e'.repeat(9)}\r\nx\r\n0\r\n\r\n`, { maxExtensionBytes: 16 });
    assert.equal(scan(`1;${'e'.repeat(9)}\r\nx\r\n0\r\n\r\n`, { maxExtensionBytes: 16 }).end, 21);
  });

  it('the default limits refuse large trailers and extensions', () => {
    errors(`0\r\nX: ${'v'.repeat(20000)}\r\n\r\n`);
    errors(`5;${'e'.repeat(20000)}\r\nhello\r\n0\r\n\r\n`);
  });

  it('stays failed until reset, and refuses bytes after the end', () => {
    const s = new ChunkedScanner();
    const bad = Buffer.from('zz\r\n');
    assert.equal(s.feed(bad, 0, bad.length), -2);
    const good = Buffer.from('0\r\n\r\n');
    assert.equal(s.feed(good, 0, good.length), -2);
    s.reset();
    assert.equal(s.error, undefined);
    assert.equal(s.feed(good, 0, good.length), 5);
    assert.equal(s.done, true);
    assert.equal(s.feed(good, 0, good.length), -2);
    assert.match(s.error ?? '', /after the end/);
    s.reset();
    assert.equal(s.done, false);
    assert.equal(s.dataBytes, 0);
    assert.equal(s.feed(good, 0, good.length), 5);
  });
});

describe('ChunkedScanner: incremental input', () => {
  it('gives the same end offset and data count at every split point', () => {
    for (const raw of [
      '5\r\nhello\r\n0\r\n\r\n',
      'a;ext="q\\"x";y=z\r\n0123456789\r\n1\r\n!\r\n0;e\r\nX-T: 1\r\nY: \xe9\r\n\r\nNEXT',
      '10\r\n0123456789abcdef\r\n0\r\n\r\n',
      '5\r\nhello\n0\r\n\r\n',
      '5;a=\r\nhello\r\n0\r\n\r\n',
      '0\r\nX : y\r\n\r\n',
    ]) {
      sameAtEverySplit(raw);
    }
  });

  it('works byte by byte and with an offset start', () => {
    const raw = Buffer.from('xx3\r\nabc\r\n0\r\n\r\nyy', 'latin1');
    const s = new ChunkedScanner();
    let end = -1;
    for (let i = 2; i < raw.length && end === -1; i++) end = s.feed(raw, i, i + 1);
    assert.equal(end, raw.length - 2);
    assert.equal(s.dataBytes, 3);
    assert.equal(new ChunkedScanner().feed(raw, 2, raw.length), raw.length - 2);
    assert.equal(new ChunkedScanner().feed(raw, 2, 2), -1);
  });
});

describe('ChunkedScanner: properties', () => {
  const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
  const token = fc.array(fc.constantFrom(...tchars), { minLength: 1, maxLength: 8 }).map((a) => a.join(''));
  const quoted = fc
    .array(fc.constantFrom('a', ' ', '\t', ';', '=', '\\"', '\\\\', '\xe9'), { maxLength: 6 })
    .map((a) => `"${a.join('')}"`);
  const ext = fc
    .array(fc.tuple(token, fc.option(fc.oneof(token, quoted), { nil: undefined })), { maxLength: 3 })
    .map((es) => es.map(([n, v]) => (v === undefined ? `;${n}` : `;${n}=${v}`)).join(''));
  const trailer = fc
    .tuple(token, fc.array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength: 10 }))
    .map(([n, v]) => `${n}: ${String.fromCharCode(...v)}\r\n`);
  const body = fc.record({
    chunks: fc.array(fc.record({ data: fc.uint8Array({ minLength: 1, maxLength: 300 }), ext, upper: fc.boolean(), zeros: fc.nat(3) }), {
      maxLength: 8,
    }),
    lastExt: ext,
    trailers: fc.array(trailer, { maxLength: 3 }),
    after: fc.uint8Array({ maxLength: 20 }),
  });

  /** A chunked encoder, independent of the scanner. */
  function encode(b: {
    chunks: Array<{ data: Uint8Array; ext: string; upper: boolean; zeros: number }>;
    lastExt: string;
    trailers: string[];
  }): Buffer {
    const parts: Buffer[] = [];
    for (const c of b.chunks) {
      let size = c.data.length.toString(16);
      if (c.upper) size = size.toUpperCase();
      parts.push(Buffer.from(`${'0'.repeat(c.zeros)}${size}${c.ext}\r\n`, 'latin1'), Buffer.from(c.data), Buffer.from('\r\n'));
    }
    parts.push(Buffer.from(`0${b.lastExt}\r\n${b.trailers.join('')}\r\n`, 'latin1'));
    return Buffer.concat(parts);
  }

  it('scans an encoder’s output to its exact end, however it is split', () => {
    fc.assert(
      fc.property(body, fc.array(fc.nat(), { maxLength: 5 }), (b, cuts) => {
        const msg = encode(b);
        const buf = Buffer.concat([msg, Buffer.from(b.after)]);
        const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((x, y) => x - y);
        const s = new ChunkedScanner();
        let start = 0;
        let end = -1;
        for (const p of [...points, buf.length]) {
          if (p < start) continue;
          end = s.feed(buf, start, p);
          start = p;
          if (end !== -1) break;
        }
        assert.equal(end, msg.length, s.error);
        assert.equal(s.dataBytes, b.chunks.reduce((n, c) => n + c.data.length, 0));
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on random bytes and only returns -2, -1 or an offset inside the input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (bytes, cut) => {
        const buf = Buffer.from(bytes);
        const k = Math.min(cut, buf.length);
        const s = new ChunkedScanner({ maxTrailerBytes: 64, maxExtensionBytes: 32 });
        let r = s.feed(buf, 0, k);
        if (r === -1) r = s.feed(buf, k, buf.length);
        assert.ok(r === -1 || r === -2 || (r > 0 && r <= buf.length));
        if (r === -2) assert.ok(typeof s.error === 'string');
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on mutated chunked bodies', () => {
    const base = Buffer.from('5;a="b"\r\nhello\r\n1A\r\n01234567890123456789012345\r\n0\r\nX-T: v\r\n\r\n', 'latin1');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), (edits) => {
        const b = Buffer.from(base);
        for (const [at, byte] of edits) b[at] = byte;
        const s = new ChunkedScanner();
        const r = s.feed(b, 0, b.length);
        assert.ok(r >= -2 && r <= b.length);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ChunkedScanner.relay: trailer fields that may not be forwarded are dropped', () => {
  const DROP = new Set(['content-length', 'host', 'transfer-encoding']);

  /** Feeds `raw` in pieces of `step` bytes and returns what relay gives back, joined. */
  function relayed(raw: string, step: number): string {
    const s = new ChunkedScanner({ dropTrailers: DROP });
    const buf = Buffer.from(raw, 'latin1');
    const out: Buffer[] = [];
    for (let at = 0; at < buf.length; at += step) {
      const piece = buf.subarray(at, Math.min(buf.length, at + step));
      const r = s.feed(piece, 0, piece.length);
      assert.ok(r !== -2, s.error);
      out.push(s.relay(piece, 0, r === -1 ? piece.length : r));
      if (r >= 0) break;
    }
    assert.ok(s.done);
    return Buffer.concat(out).toString('latin1');
  }

  for (const step of [1, 2, 3, 7, 1000]) {
    it(`in pieces of ${step} bytes`, () => {
      assert.equal(relayed('5\r\nhello\r\n0\r\n\r\n', step), '5\r\nhello\r\n0\r\n\r\n');
      assert.equal(relayed('5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n', step), '5\r\nhello\r\n0\r\n\r\n');
      assert.equal(
        relayed('1\r\na\r\n0\r\nX-A: 1\r\nHOST: evil\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n', step),
        '1\r\na\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n',
      );
      assert.equal(relayed('0\r\nX-Checksum: abc\r\n\r\n', step), '0\r\nX-Checksum: abc\r\n\r\n');
    });
  }

  it('a scanner without dropTrailers relays everything as fed', () => {
    const s = new ChunkedScanner();
    const buf = Buffer.from('0\r\nContent-Length: 5\r\n\r\n', 'latin1');
    assert.equal(s.feed(buf, 0, buf.length), buf.length);
    assert.equal(s.relay(buf, 0, buf.length), buf);
  });
});
