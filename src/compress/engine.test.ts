import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { Compressor, compressionAvailable } from './engine.js';

const decode = (coding: 'br' | 'gzip', b: Buffer): Buffer => (coding === 'br' ? zlib.brotliDecompressSync(b) : zlib.gunzipSync(b));

test('this Node runs streaming compression (the startup check)', () => {
  assert.equal(compressionAvailable(), undefined);
});

for (const coding of ['gzip', 'br'] as const) {
  test(`${coding}: chunks round-trip, including one whose output spans several of the engine's buffers`, () => {
    // Incompressible bytes, so the output of one call is larger than the engine's 16 KiB buffer.
    const chunks = [Buffer.from('hello '), randomBytes(200_000), Buffer.from(' world')];
    const c = new Compressor(coding, 11, -1);
    const out = Buffer.concat([...chunks.map((x) => c.push(x)), c.end()]);
    assert.deepEqual(decode(coding, out), Buffer.concat(chunks));
    assert.equal(c.bytesIn, Buffer.concat(chunks).length);
    assert.equal(c.bytesOut, out.length);
  });

  test(`${coding}: each push is flushed, so what came so far decodes before the end`, async () => {
    const c = new Compressor(coding, 5, -1);
    const dec = coding === 'br' ? zlib.createBrotliDecompress() : zlib.createGunzip();
    let got = '';
    for (const word of ['data: one\n\n', 'data: two\n\n', 'data: three\n\n']) {
      const seen = new Promise<void>((resolve) => {
        const on = (b: Buffer): void => {
          got += b.toString();
          if (got.endsWith(word)) {
            dec.off('data', on);
            resolve();
          }
        };
        dec.on('data', on);
      });
      dec.write(c.push(Buffer.from(word)));
      await seen;
    }
    assert.equal(got, 'data: one\n\ndata: two\n\ndata: three\n\n');
    dec.end(c.end());
    dec.resume();
  });

  test(`${coding}: an empty body is a valid empty stream; close() after a partial body releases the engine`, () => {
    const c = new Compressor(coding, 5, 0);
    assert.equal(c.push(Buffer.alloc(0)).length, 0);
    assert.equal(decode(coding, c.end()).length, 0);
    const d = new Compressor(coding, 5, -1);
    d.push(Buffer.from('abc'));
    d.close();
    d.close();
    assert.throws(() => d.push(Buffer.from('x')), /closed/);
  });
}

test('levels are clamped per coding (gzip 1-9, brotli 1-11)', () => {
  const text = Buffer.from('level '.repeat(1000));
  for (const level of [0, 1, 9, 11, 99]) {
    for (const coding of ['gzip', 'br'] as const) {
      const c = new Compressor(coding, level, text.length);
      assert.deepEqual(decode(coding, Buffer.concat([c.push(text), c.end()])), text, `${coding} ${level}`);
    }
  }
});
