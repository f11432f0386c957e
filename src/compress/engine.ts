/**
 * Streaming compression that fits the synchronous body phase: one compressor per response, fed
 * chunk by chunk, each chunk flushed (Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH) so that what the server
 * sent so far reaches the client decodable (server-sent events stay live), FINISH at the end.
 *
 * node:zlib's streams are asynchronous and its *Sync functions are single-shot (they close the
 * engine after one call), so this drives the engine of a zlib stream object the way zlib's own
 * synchronous path does (`handle.writeSync` and the stream's output buffer, lib/zlib.js
 * processChunkSync) without closing it. Those are Node internals: `compressionAvailable()` checks
 * them once at config load (a round trip through both codings) so that a Node without them is a
 * clear config error, never a failure on a request.
 */
import zlib from 'node:zlib';
import type { Coding } from './negotiate.js';

const C = zlib.constants;

/** The parts of a zlib stream object its synchronous path uses (Node 20, lib/zlib.js). */
interface ZlibInternals {
  _handle: { writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void } | null;
  _writeState: Uint32Array;
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
  destroyed: boolean;
  close(): void;
}

const EMPTY = Buffer.alloc(0);

export class Compressor {
  readonly coding: Coding;
  /** Bytes in (the server's) and out (toward the client). */
  bytesIn = 0;
  bytesOut = 0;
  private z: ZlibInternals;
  private readonly flush: number;
  private readonly finish: number;

  /** `level`: brotli quality (clamped 1-11) or gzip level (clamped 1-9); `sizeHint`: the body's length when known, else -1. */
  constructor(coding: Coding, level: number, sizeHint: number) {
    this.coding = coding;
    if (coding === 'br') {
      const params: Record<number, number> = { [C.BROTLI_PARAM_QUALITY]: Math.min(11, Math.max(1, level)) };
      if (sizeHint >= 0) params[C.BROTLI_PARAM_SIZE_HINT] = Math.min(sizeHint, 0x7fffffff);
      this.z = zlib.createBrotliCompress({ params }) as unknown as ZlibInternals;
      this.flush = C.BROTLI_OPERATION_FLUSH;
      this.finish = C.BROTLI_OPERATION_FINISH;
    } else {
      this.z = zlib.createGzip({ level: Math.min(9, Math.max(1, level)) }) as unknown as ZlibInternals;
      this.flush = C.Z_SYNC_FLUSH;
      this.finish = C.Z_FINISH;
    }
  }

  /** Compress `data` and flush: the bytes returned decode to everything given so far. */
  push(data: Buffer): Buffer {
    if (data.length === 0) return EMPTY;
    this.bytesIn += data.length;
    return this.run(data, this.flush);
  }

  /** The end of the stream (the coding's trailer); the compressor is released. */
  end(): Buffer {
    const out = this.run(EMPTY, this.finish);
    this.close();
    return out;
  }

  /** The engine was released (end or close). */
  get closed(): boolean {
    return this.z._handle === null;
  }

  /** Release the engine (a response that did not complete). */
  close(): void {
    const z = this.z;
    if (z._handle !== null) z.close();
  }

  private run(input: Buffer, flush: number): Buffer {
    const z = this.z;
    const handle = z._handle;
    if (handle === null || z.destroyed) throw new Error('compressor already closed');
    const state = z._writeState;
    const size = z._chunkSize;
    let buf = z._outBuffer;
    let off = z._outOffset;
    let inOff = 0;
    let inLeft = input.length;
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    for (;;) {
      const room = size - off;
      handle.writeSync(flush, input, inOff, inLeft, buf, off, room);
      if (z.destroyed) throw new Error(this.coding + ' compression failed');
      const outLeft = state[0]!;
      const inAfter = state[1]!;
      const have = room - outLeft;
      if (have > 0) {
        const part = buf.subarray(off, off + have);
        if (first === undefined) first = part;
        else (more ??= [first]).push(part);
        off += have;
      }
      if (outLeft === 0 || off >= size) {
        buf = Buffer.allocUnsafe(size);
        off = 0;
      }
      if (outLeft !== 0) break;
      // The output buffer filled: the engine has more for this call.
      inOff += inLeft - inAfter;
      inLeft = inAfter;
    }
    z._outBuffer = buf;
    z._outOffset = off;
    const out = more !== undefined ? Buffer.concat(more) : first === undefined ? EMPTY : first;
    this.bytesOut += out.length;
    return out;
  }
}

let available: string | undefined | null = null;

/**
 * Undefined when streaming compression works on this Node (checked once: both codings round-trip
 * through two flushed chunks); else why not, for a config error.
 */
export function compressionAvailable(): string | undefined {
  if (available !== null) return available;
  try {
    const a = Buffer.from('data: one\n\n'.repeat(50));
    const b = Buffer.from('data: two\n\n'.repeat(50));
    for (const coding of ['gzip', 'br'] as const) {
      const c = new Compressor(coding, 5, -1);
      const out = Buffer.concat([c.push(a), c.push(b), c.end()]);
      const back = coding === 'br' ? zlib.brotliDecompressSync(out) : zlib.gunzipSync(out);
      if (!back.equals(Buffer.concat([a, b]))) throw new Error(coding + ' did not round-trip');
    }
    available = undefined;
  } catch (e) {
    available = `streaming compression needs node:zlib internals this Node.js ${process.version} lacks (${(e as Error).message}); run Node.js 20 or 22, or remove compress:`;
  }
  return available;
}
