import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * A hand-driven HTTP/2 client over TLS for hostile-input tests: it writes frames exactly as a test
 * builds them (HPACK literals without Huffman coding, so any byte can go in a name or value) and
 * records every frame the server sends.
 */

export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;

export const PROTOCOL_ERROR = 0x1;
export const FLOW_CONTROL_ERROR = 0x3;
export const FRAME_SIZE_ERROR = 0x6;
export const ENHANCE_YOUR_CALM = 0xb;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the pattern bits above the prefix. */
function hpackInt(first: number, prefixBits: number, n: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  return Buffer.concat([hpackInt(0, 7, b.length), b]);
}

/** Literal field without indexing, new name (RFC 7541 §6.2.2). */
export function lit(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00]), str(name), str(value)]);
}

/** Literal field with incremental indexing, new name (§6.2.1): the field enters the dynamic table. */
export function litIndexed(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x40]), str(name), str(value)]);
}

/** Indexed field (§6.1): static table 1-61, dynamic table from 62. */
export function indexed(i: number): Buffer {
  return hpackInt(0x80, 7, i);
}

/** A header block: the four request pseudo-header fields for GET / (unless replaced) and `extra`. */
export function requestBlock(extra: Buffer[] = [], pseudo: Record<string, string> = {}): Buffer {
  const p = { ':method': 'GET', ':scheme': 'https', ':path': '/', ':authority': 'www.example.com', ...pseudo };
  return Buffer.concat([...Object.entries(p).map(([n, v]) => lit(n, v)), ...extra]);
}

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface RawH2 {
  readonly frames: Frame[];
  send(...bufs: Buffer[]): void;
  /** Resolves with the first frame matching `pred` (already received or later), or undefined when the connection closes first or `ms` pass. */
  until(pred: (f: Frame) => boolean, ms?: number): Promise<Frame | undefined>;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  close(): void;
}

/** Connects with ALPN h2 and sends the preface and an empty SETTINGS frame. */
export function rawH2(port: number, servername = 'www.example.com'): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const sock: TLSSocket = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const frames: Frame[] = [];
    const waiters: { pred: (f: Frame) => boolean; done: (f: Frame | undefined) => void }[] = [];
    let buf: Buffer = Buffer.alloc(0);
    let closed = false;
    let onClosed: () => void = () => {};
    const closedP = new Promise<void>((r) => (onClosed = r));
    sock.on('data', (c: Buffer) => {
      buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const f: Frame = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
        buf = buf.subarray(9 + len);
        frames.push(f);
        if (f.type === SETTINGS && (f.flags & 1) === 0) sock.write(frame(SETTINGS, 1, 0));
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.pred(f)) {
            waiters[i]!.done(f);
            waiters.splice(i, 1);
          }
        }
      }
    });
    const end = (): void => {
      if (closed) return;
      closed = true;
      for (const w of waiters.splice(0)) w.done(undefined);
      onClosed();
    };
    sock.on('close', end);
    sock.on('error', end);
    sock.once('secureConnect', () => {
      if (sock.alpnProtocol !== 'h2') {
        sock.destroy();
        reject(new Error(`ALPN chose ${String(sock.alpnProtocol)}`));
        return;
      }
      sock.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
      resolve({
        frames,
        send: (...bufs) => {
          if (!closed) sock.write(Buffer.concat(bufs));
        },
        until: (pred, ms = 5000) =>
          new Promise((done) => {
            const hit = frames.find(pred);
            if (hit !== undefined || closed) {
              done(hit);
              return;
            }
            const t = setTimeout(() => {
              const i = waiters.findIndex((w) => w.done === finish);
              if (i >= 0) waiters.splice(i, 1);
              done(undefined);
            }, ms);
            const finish = (f: Frame | undefined): void => {
              clearTimeout(t);
              done(f);
            };
            waiters.push({ pred, done: finish });
          }),
        closed: closedP,
        isClosed: () => closed,
        close: () => sock.destroy(),
      });
    });
    sock.once('error', reject);
  });
}

/** The error code of a RST_STREAM or GOAWAY frame. */
export function errorCode(f: Frame): number {
  return f.type === GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
}
