import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import fc from 'fast-check';
import { ChunkedDecoder } from './chunked-decoder.js';

function decode(parts: Buffer[]): { data: string; end: number[] } {
  const d = new ChunkedDecoder();
  const out: Buffer[] = [];
  const end: number[] = [];
  for (const p of parts) end.push(d.feed(p, (b) => out.push(Buffer.from(b))));
  return { data: Buffer.concat(out).toString('latin1'), end };
}

it('decodes chunks, skips extensions, leaves trailers out of the data, and finds the end', () => {
  const body = '5;name=value\r\nhello\r\n7\r\n, world\r\nA ; x="y"\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT';
  const r = decode([Buffer.from(body, 'latin1')]);
  assert.equal(r.data, 'hello, world0123456789');
  assert.equal(r.end[0], body.length - 4);
});

it('gives the same data however the bytes are split', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 20 }), (chunks, cuts) => {
      let wire = '';
      let want = '';
      for (const c of chunks) {
        if (c.length === 0) continue;
        const s = Buffer.from(c).toString('latin1');
        wire += c.length.toString(16) + '\r\n' + s + '\r\n';
        want += s;
      }
      wire += '0\r\n\r\n';
      const buf = Buffer.from(wire, 'latin1');
      const parts: Buffer[] = [];
      let at = 0;
      for (let k = 0; at < buf.length; k++) {
        const n = cuts[k % cuts.length]!;
        parts.push(buf.subarray(at, at + n));
        at += n;
      }
      const r = decode(parts);
      assert.equal(r.data, want);
      assert.equal(r.end[r.end.length - 1], parts[parts.length - 1]!.length);
      assert.ok(r.end.slice(0, -1).every((e) => e === -1));
    }),
  );
});

it('keeps the trailer fields, however the bytes are split', () => {
  const wire = Buffer.from('3\r\nabc\r\n0\r\ngrpc-status: 0\r\nGrpc-Message:  all  good \t\r\nx-a:1\r\nx-a: 2\r\n\r\n', 'latin1');
  for (let step = 1; step <= wire.length; step++) {
    const d = new ChunkedDecoder();
    let end = -1;
    for (let at = 0; at < wire.length; at += step) end = d.feed(wire.subarray(at, at + step), () => {});
    assert.ok(d.done && end >= 0, `step ${step}`);
    assert.deepEqual(d.trailers(), [
      ['grpc-status', '0'],
      ['grpc-message', 'all  good'],
      ['x-a', '1'],
      ['x-a', '2'],
    ], `step ${step}`);
  }
  const none = new ChunkedDecoder();
  none.feed(Buffer.from('0\r\n\r\n'), () => {});
  assert.deepEqual(none.trailers(), []);
});
