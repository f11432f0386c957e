/**
 * One HTTP/2 stream seen as an HTTP/1.1 connection, so that the HTTP/1.1 data path (HttpSession)
 * serves it with everything it does: routes, persistence, header rules (X-Forwarded-*, hop-by-hop),
 * pooled keep-alive connections to the servers, retries, timeouts and error answers.
 *
 * Toward the session (the readable side), the stream's request is written as an HTTP/1.1 request
 * with `Connection: close`: its body as is with Content-Length, chunked otherwise. From the session
 * (the writable side), the HTTP/1.1 response is parsed back: 1xx heads become informational
 * HEADERS, the final head becomes the response HEADERS (hop-by-hop fields dropped), and the body
 * is passed on, de-chunked, as DATA; the trailer fields of a chunked body end the stream as a
 * trailing HEADERS frame (fields that may not be trailers dropped). The session ending its side ends the stream; the session
 * destroying it resets the stream. A client that resets the stream destroys this socket, and the
 * session cancels its server request.
 */
import type { ServerHttp2Stream } from 'node:http2';
import { constants as h2 } from 'node:http2';
import { Duplex } from 'node:stream';
import { FORBIDDEN_TRAILERS, HOP_BY_HOP } from '../http/headers.js';
import { parseResponseHead, responseFraming, type HeadLimits, type ResponseHead } from '../http/parse-response.js';
import { ChunkedDecoder } from './chunked-decoder.js';

const enum Res {
  Head,
  Length,
  Chunked,
  Close,
  Done,
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** Response head limits: the session wrote this head itself, after checking the server's. */
const RESPONSE_LIMITS: HeadLimits = { maxHeaderBytes: 1 << 20, maxHeaders: 10_000, maxUriBytes: 1 << 20 };

export interface H2Request {
  /** The HTTP/1.1 request head, ending with CRLFCRLF. */
  readonly head: string;
  readonly method: string;
  /** The body goes chunked (no Content-Length and the stream did not end with its headers). */
  readonly chunked: boolean;
}

/** The HTTP/1.1 form of an HTTP/2 request (rawHeaders: name, value, name, value ...). */
export function h2RequestHead(raw: readonly string[], endStream: boolean): H2Request {
  let method = '';
  let path = '';
  let authority: string | undefined;
  let host: string | undefined;
  let cookie: string | undefined;
  let hasLength = false;
  let fields = '';
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!;
    const v = raw[i + 1]!;
    if (n.charCodeAt(0) === 58 /* : */) {
      if (n === ':method') method = v;
      else if (n === ':path') path = v;
      else if (n === ':authority') authority = v;
      continue;
    }
    if (n === 'host') {
      host ??= v;
      continue;
    }
    if (n === 'cookie') {
      // RFC 9113 §8.2.3: cookie fields split over several lines are joined with "; " for HTTP/1.1.
      cookie = cookie === undefined ? v : cookie + '; ' + v;
      continue;
    }
    if (n === 'content-length') hasLength = true;
    fields += n + ': ' + v + '\r\n';
  }
  const chunked = !endStream && !hasLength;
  const hostValue = authority ?? host;
  let head = method + ' ' + path + ' HTTP/1.1\r\n';
  if (hostValue !== undefined) head += 'host: ' + hostValue + '\r\n';
  head += fields;
  if (cookie !== undefined) head += 'cookie: ' + cookie + '\r\n';
  if (chunked) head += 'transfer-encoding: chunked\r\n';
  head += 'connection: close\r\n\r\n';
  return { head, method, chunked };
}

export class H2StreamSocket extends Duplex {
  readonly remoteAddress: string;
  /** The TLS server name of the connection the stream came on (as TLSSocket.servername). */
  readonly servername: string | false;
  readonly stream: ServerHttp2Stream;
  private readonly method: string;
  private readonly chunked: boolean;
  private res: Res = Res.Head;
  private headBuf: Buffer = EMPTY;
  private left = 0;
  private decoder: ChunkedDecoder | undefined = undefined;
  private writeOk = true;

  constructor(stream: ServerHttp2Stream, rawHeaders: readonly string[], endStream: boolean, clientAddress: string, servername: string | false) {
    super({ allowHalfOpen: true, decodeStrings: true });
    this.stream = stream;
    this.remoteAddress = clientAddress;
    this.servername = servername;
    const req = h2RequestHead(rawHeaders, endStream);
    this.method = req.method;
    this.chunked = req.chunked;
    this.push(Buffer.from(req.head, 'latin1'));
    stream.on('data', this.onStreamData);
    stream.on('end', this.onStreamEnd);
    stream.on('close', this.onStreamClose);
    stream.on('error', noop);
    stream.on('drain', this.onStreamDrain);
    stream.on('wantTrailers', this.onWantTrailers);
  }

  // ---- request: stream → session ----

  private readonly onStreamData = (chunk: Buffer): void => {
    let more: boolean;
    if (this.chunked) {
      if (chunk.length === 0) return;
      this.push(Buffer.from(chunk.length.toString(16) + '\r\n', 'latin1'));
      this.push(chunk);
      more = this.push(CRLF);
    } else {
      more = this.push(chunk);
    }
    if (!more) this.stream.pause();
  };

  private readonly onStreamEnd = (): void => {
    // The request body is complete. The readable side stays open: for the session, a client that
    // closes its side during an exchange has gone away.
    if (this.chunked) this.push(LAST_CHUNK);
  };

  private readonly onStreamClose = (): void => {
    // The client reset the stream (or the session ended) before the response was complete.
    if (this.res !== Res.Done && !this.destroyed) this.destroy();
  };

  override _read(): void {
    if (this.stream.isPaused()) this.stream.resume();
  }

  // ---- response: session → stream ----

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeOk = true;
    this.consume(chunk);
    if (this.writeOk || this.stream.destroyed) cb();
    else this.pendingCb = cb;
  }

  private pendingCb: ((err?: Error | null) => void) | undefined = undefined;

  private readonly onStreamDrain = (): void => {
    const cb = this.pendingCb;
    this.pendingCb = undefined;
    cb?.();
  };

  private consume(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      switch (this.res) {
        case Res.Head: {
          const all = this.headBuf.length === 0 ? buf : Buffer.concat([this.headBuf, buf]);
          const r = parseResponseHead(all, RESPONSE_LIMITS, this.method);
          if (r === null) {
            this.headBuf = all;
            return;
          }
          this.headBuf = EMPTY;
          if (!r.ok) {
            this.fail();
            return;
          }
          buf = all.subarray(r.headEnd);
          this.onHead(r);
          continue;
        }
        case Res.Length: {
          const n = Math.min(this.left, buf.length);
          this.left -= n;
          this.send(buf.subarray(0, n));
          if (this.left === 0) this.complete();
          return; // bytes after the body: none are expected (the session frames exactly)
        }
        case Res.Chunked: {
          const end = this.decoder!.feed(buf, this.send);
          if (end >= 0) this.complete();
          return;
        }
        case Res.Close:
          this.send(buf);
          return;
        default:
          return;
      }
    }
  }

  private readonly send = (data: Buffer): void => {
    if (data.length === 0 || this.stream.destroyed) return;
    if (!this.stream.write(data)) this.writeOk = false;
  };

  private onHead(r: ResponseHead): void {
    const stream = this.stream;
    if (r.status < 200) {
      // 100 Continue and 103 Early Hints are passed on; other 1xx mean nothing on HTTP/2.
      if ((r.status === 100 || r.status === 103) && !stream.destroyed) {
        try {
          stream.additionalHeaders(r.status === 103 ? { ...responseFields(r), ':status': 103 } : { ':status': 100 });
        } catch {
          // a 1xx the client cannot take is dropped
        }
      }
      return;
    }
    const framing = responseFraming(r, this.method);
    const headers = responseFields(r);
    headers[':status'] = r.status;
    const endStream = framing === 'none' || (framing === 'length' && r.contentLength === 0);
    if (stream.destroyed) return;
    try {
      // A chunked body may end with trailer fields: the stream then ends with them (wantTrailers).
      stream.respond(headers, { endStream, waitForTrailers: framing === 'chunked' });
    } catch {
      this.fail();
      return;
    }
    if (endStream) {
      this.res = Res.Done;
      return;
    }
    if (framing === 'length') {
      this.res = Res.Length;
      this.left = r.contentLength;
    } else if (framing === 'chunked') {
      this.res = Res.Chunked;
      this.decoder = new ChunkedDecoder();
    } else {
      this.res = Res.Close;
    }
  }

  private complete(): void {
    this.res = Res.Done;
    if (!this.stream.destroyed) this.stream.end();
  }

  /** After the last DATA of a chunked body: the trailer fields, or an empty trailing HEADERS frame. */
  private readonly onWantTrailers = (): void => {
    const t: Record<string, string | string[]> = {};
    const fields = this.decoder?.trailers();
    if (fields !== undefined) {
      for (const [n, v] of fields) {
        if (FORBIDDEN_TRAILERS.has(n)) continue;
        const had = t[n];
        if (had === undefined) t[n] = v;
        else if (Array.isArray(had)) had.push(v);
        else t[n] = [had, v];
      }
    }
    try {
      this.stream.sendTrailers(t);
    } catch {
      if (!this.stream.destroyed) this.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    }
  };

  /** Something that is not a response came out of the session: reset the stream. */
  private fail(): void {
    this.res = Res.Done;
    if (!this.stream.destroyed) this.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  }

  override _final(cb: (err?: Error | null) => void): void {
    // The session ended its side: a close-delimited body is complete; anything else unfinished is cut.
    if (this.res === Res.Close) this.complete();
    else if (this.res !== Res.Done) this.fail();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.res !== Res.Done) this.fail();
    const pending = this.pendingCb;
    this.pendingCb = undefined;
    pending?.();
    this.stream.off('data', this.onStreamData);
    cb(err);
  }

  // ---- what the session uses of a net.Socket ----

  setNoDelay(): this {
    return this;
  }

  /** net.Socket's destroySoon: end, then destroy once everything was written. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }
}

/** The response head's fields for HTTP/2: hop-by-hop and Connection-named fields dropped, names lower case. */
function responseFields(r: ResponseHead): Record<string, string | string[] | number> {
  const out: Record<string, string | string[] | number> = {};
  const conn = r.connection;
  for (let i = 0; i < r.lnames.length; i++) {
    const n = r.lnames[i]!;
    if (HOP_BY_HOP.has(n) || (conn.length > 0 && conn.includes(n))) continue;
    const v = r.values[i]!;
    const had = out[n];
    if (had === undefined) out[n] = v;
    else if (Array.isArray(had)) had.push(v);
    else out[n] = [had as string, v];
  }
  return out;
}

function noop(): void {}
