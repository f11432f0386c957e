import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { CidrSet } from '../../../core/cidr.js';
import { DEFAULT_COMPRESS } from '../../../compress/negotiate.js';
import { Exchange } from '../exchange.js';
import type { HttpListenerRuntime } from '../listener-runtime.js';
import type { RequestHead } from '../parse-request.js';
import { parseResponseHead, type ResponseHead } from '../parse-response.js';
import type { AnswerSink, StreamedAnswer } from '../phases.js';
import { CompressCounters, CompressPhase, compressOptions } from './compress.js';

/** A stored answer that sends its pieces while the sink takes them, and the rest on resume(). */
class Pieces implements StreamedAnswer {
  readonly sized = true;
  readonly hasBody = true;
  private sink: AnswerSink | undefined;
  private i = 0;
  cancelled = false;
  constructor(
    readonly status: number,
    private readonly text: string,
    private readonly pieces: Buffer[],
  ) {}
  head(): string {
    return this.text;
  }
  start(sink: AnswerSink): void {
    this.sink = sink;
    this.pump();
  }
  resume(): void {
    this.pump();
  }
  cancel(): void {
    this.cancelled = true;
  }
  private pump(): void {
    const sink = this.sink!;
    while (this.i < this.pieces.length) if (!sink.answerData(this.pieces[this.i++]!)) return;
    sink.answerEnd();
  }
}

/** The session's side: takes `room` writes before it says it is full. */
class Sink implements AnswerSink {
  out: Buffer[] = [];
  ended = false;
  aborted = false;
  constructor(public room: number) {}
  answerData(d: Buffer): boolean {
    this.out.push(d);
    return --this.room > 0;
  }
  answerEnd(): void {
    this.ended = true;
  }
  answerAbort(): void {
    this.aborted = true;
  }
}

function exchange(headers: [string, string][], method = 'GET'): Exchange {
  const lst = { name: 'web', proto: 'http', trusted: new CidrSet([]) } as unknown as HttpListenerRuntime;
  const ex = new Exchange(lst, '192.0.2.7', undefined, undefined);
  ex.head = { method, target: '/', minor: 1, names: headers.map((h) => h[0]), lnames: headers.map((h) => h[0].toLowerCase()), values: headers.map((h) => h[1]) } as unknown as RequestHead;
  ex.method = method;
  ex.lnames = ex.head.lnames;
  ex.values = ex.head.values;
  return ex;
}

function response(head: string, method = 'GET'): ResponseHead {
  const r = parseResponseHead(Buffer.from(head + '\r\n', 'latin1'), { maxHeaderBytes: 16384, maxHeaders: 100, maxUriBytes: 8192 }, method);
  assert.ok(r !== null && 'status' in r, 'the test head parses');
  return r as ResponseHead;
}

const BIG = 'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\nETag: "a"\r\nVary: Origin\r\n';

describe('CompressPhase', () => {
  it('compressible and accepted: the body is replaced, with Content-Encoding, Vary merged and a weak ETag', () => {
    const counters = new CompressCounters();
    const p = new CompressPhase(DEFAULT_COMPRESS, counters);
    const ex = exchange([['Accept-Encoding', 'gzip;q=0.5'], ['accept-encoding', 'br;q=0.4']]);
    assert.equal(p.onResponseHead(ex, response(BIG)), 'Content-Encoding: gzip\r\nVary: Origin, Accept-Encoding\r\nETag: W/"a"\r\n');
    assert.equal(ex.bodyReplaced, true);
    const body = Buffer.from('<p>hello</p>'.repeat(400));
    const out = Buffer.concat([p.onResponseBody(ex, body.subarray(0, 1000), false), p.onResponseBody(ex, body.subarray(1000), false), p.onResponseBody(ex, Buffer.alloc(0), true)]);
    assert.deepEqual(zlib.gunzipSync(out), body);
    assert.equal(ex.compressState, undefined);
    assert.deepEqual(counters.bytes.get('web\u0000gzip'), { in: body.length, out: out.length });
    p.onDone(ex); // nothing left to release, nothing counted twice
    assert.deepEqual(counters.bytes.get('web\u0000gzip'), { in: body.length, out: out.length });
  });

  it('not accepted: the server\'s ETag as it was, Vary with Accept-Encoding; the body is the server\'s', () => {
    const p = new CompressPhase(DEFAULT_COMPRESS, new CompressCounters());
    const ex = exchange([]);
    assert.equal(p.onResponseHead(ex, response(BIG)), 'ETag: "a"\r\nVary: Origin, Accept-Encoding\r\n');
    assert.equal(ex.bodyReplaced, false);
    const d = Buffer.from('x');
    assert.equal(p.onResponseBody(ex, d, false), d);
  });

  it('never compressed (HEAD, 304, a small body): the server\'s own ETag and Vary lines only, none when it sent none', () => {
    const p = new CompressPhase(DEFAULT_COMPRESS, new CompressCounters());
    const ae: [string, string][] = [['Accept-Encoding', 'gzip, br']];
    assert.equal(p.onResponseHead(exchange(ae, 'HEAD'), response(BIG, 'HEAD')), 'ETag: "a"\r\nVary: Origin\r\n');
    assert.equal(p.onResponseHead(exchange(ae), response('HTTP/1.1 304 Not Modified\r\netag: "b"\r\n')), 'etag: "b"\r\n');
    const ex = exchange(ae);
    assert.equal(p.onResponseHead(ex, response('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n')), '');
    assert.equal(ex.bodyReplaced, false);
    // An already encoded body keeps its Content-Encoding; a server's `identity` gives way to the coding.
    assert.equal(p.onResponseHead(exchange(ae), response(BIG + 'Content-Encoding: gzip\r\n')), 'Content-Encoding: gzip\r\nETag: "a"\r\nVary: Origin\r\n');
    assert.equal(p.onResponseHead(exchange(ae), response(BIG + 'Content-Encoding: identity\r\n')), 'Content-Encoding: br\r\nVary: Origin, Accept-Encoding\r\nETag: W/"a"\r\n');
  });

  it('a response that does not complete: onDone releases the compressor and counts what went through', () => {
    const counters = new CompressCounters();
    const p = new CompressPhase(DEFAULT_COMPRESS, counters);
    const ex = exchange([['Accept-Encoding', 'br']]);
    p.onResponseHead(ex, response(BIG));
    const out = p.onResponseBody(ex, Buffer.from('a'.repeat(3000)), false);
    p.onDone(ex);
    assert.equal(ex.compressState, undefined);
    assert.deepEqual(counters.bytes.get('web\u0000br'), { in: 3000, out: out.length });
  });

  it('compressOptions: true is the defaults, false and absent are off, a mapping fills types', () => {
    assert.equal(compressOptions(true), DEFAULT_COMPRESS);
    assert.equal(compressOptions(false), undefined);
    assert.equal(compressOptions(undefined), undefined);
    assert.deepEqual(compressOptions({ algorithms: ['gzip'], minSize: 10, level: 9 }), { algorithms: ['gzip'], minSize: 10, types: DEFAULT_COMPRESS.types, level: 9 });
  });

  it('onStreamedAnswer: a stored answer is compressed on delivery with back-pressure; identity clients get Vary only; HEAD and 304 untouched', () => {
    const counters = new CompressCounters();
    const p = new CompressPhase(DEFAULT_COMPRESS, counters);
    const pieces = [Buffer.from('a'.repeat(3000)), Buffer.from('b'.repeat(3000)), Buffer.from('c'.repeat(3000))];
    const head = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nETag: "s"\r\ncontent-length: 9000\r\nAge: 3\r\n';
    const inner = new Pieces(200, head, pieces);
    const a = p.onStreamedAnswer(exchange([['Accept-Encoding', 'gzip']]), inner);
    assert.notEqual(a, inner);
    assert.equal(a.sized, false);
    assert.equal(a.head(), 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nAge: 3\r\nVary: Accept-Encoding\r\nContent-Encoding: gzip\r\nETag: W/"s"\r\n');
    const sink = new Sink(1);
    a.start(sink);
    assert.equal(sink.out.length, 1, 'the full sink stopped the stored body');
    sink.room = 100;
    a.resume();
    assert.equal(sink.ended, true);
    assert.equal(zlib.gunzipSync(Buffer.concat(sink.out)).toString(), 'a'.repeat(3000) + 'b'.repeat(3000) + 'c'.repeat(3000));
    assert.equal(counters.bytes.get('web\u0000gzip')!.in, 9000);

    const plain = p.onStreamedAnswer(exchange([]), new Pieces(200, head, pieces));
    assert.equal(plain.sized, true);
    assert.equal(plain.head(), 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nETag: "s"\r\ncontent-length: 9000\r\nAge: 3\r\nVary: Accept-Encoding\r\n');
    const nm = new Pieces(304, 'HTTP/1.1 304 Not Modified\r\netag: "s"\r\n', []);
    assert.equal(p.onStreamedAnswer(exchange([['Accept-Encoding', 'gzip']]), nm), nm);
    const h = new Pieces(200, head, pieces);
    assert.equal(p.onStreamedAnswer(exchange([['Accept-Encoding', 'gzip']], 'HEAD'), h), h);

    // The client leaves: the stored answer is cancelled and the compressor released.
    const left = new Pieces(200, head, pieces);
    const b = p.onStreamedAnswer(exchange([['Accept-Encoding', 'br']]), left);
    const s2 = new Sink(1);
    b.start(s2);
    b.cancel();
    assert.equal(left.cancelled, true);
    assert.equal(counters.bytes.get('web\u0000br')!.in, 3000);
  });
});
