import { close as fsClose, open as fsOpen, write as fsWrite } from 'node:fs';
import type { ExchangeRecord } from './records.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';

export type AccessLogFormat = 'json' | 'combined';

/** Where access-log lines go. `write` completes asynchronously and reports once per call. */
export interface AccessLogSink {
  open(): Promise<void>;
  write(chunk: string, done: (err?: Error | null) => void): void;
  close(): Promise<void>;
}

/** Append to a file (created if missing). Writes run in the libuv thread pool, never on the event loop. */
export function fileSink(path: string): AccessLogSink {
  let fd: number | undefined;
  return {
    open: () =>
      new Promise((resolve, reject) =>
        fsOpen(path, 'a', 0o644, (err, f) => {
          if (err !== null) return reject(err);
          fd = f;
          resolve();
        }),
      ),
    write(chunk, done) {
      if (fd === undefined) return done(new Error('access log file is not open'));
      const buf = Buffer.from(chunk, 'utf8');
      const f = fd;
      let off = 0;
      const more = (err: Error | null, n: number): void => {
        if (err !== null) return done(err);
        off += n;
        if (off < buf.length) fsWrite(f, buf, off, buf.length - off, null, more);
        else done(null);
      };
      fsWrite(f, buf, 0, buf.length, null, more);
    },
    close: () =>
      new Promise((resolve) => {
        const f = fd;
        fd = undefined;
        if (f === undefined) return resolve();
        fsClose(f, () => resolve());
      }),
  };
}

/**
 * Standard output. Node writes to a pipe asynchronously (the usual case under a
 * supervisor or a container runtime); to a terminal or a file it writes synchronously.
 */
export function stdoutSink(out: NodeJS.WritableStream = process.stdout): AccessLogSink {
  return {
    open: async () => {},
    write(chunk, done) {
      out.write(chunk, (err) => done(err ?? null));
    },
    close: async () => {},
  };
}

export interface AccessLogOptions {
  readonly format: AccessLogFormat;
  readonly sink: AccessLogSink;
  /** Lines waiting or being written, in bytes, beyond which new lines are dropped (default 4 MiB). */
  readonly maxBufferBytes?: number;
  readonly logger?: Logger;
  /** performance.now() origin of the records' startedAt (default performance.timeOrigin). */
  readonly timeOrigin?: number;
}

/**
 * The access log: one line per finished request, formatted when the request ends (the
 * record is reused by the next request on the connection, so it is copied into its line
 * at once) and written in batches off the request's path. When the sink falls behind and
 * the buffer is full, lines are dropped and counted, never waited for.
 */
export class AccessLog {
  readonly name = 'access-log';
  readonly format: AccessLogFormat;
  /** Lines handed to the sink. */
  written = 0;
  /** Lines dropped: buffer full, or the sink failed them. */
  dropped = 0;
  private readonly sink: AccessLogSink;
  private readonly maxBufferBytes: number;
  private readonly log: Logger;
  private readonly timeOrigin: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writingBytes = 0;
  private writingLines = 0;
  private scheduled = false;
  private open = false;
  private idle: (() => void)[] = [];
  private lastWarn = 0;

  constructor(options: AccessLogOptions) {
    this.format = options.format;
    this.sink = options.sink;
    this.maxBufferBytes = options.maxBufferBytes ?? 4 * 1024 * 1024;
    this.log = options.logger ?? silentLogger;
    this.timeOrigin = options.timeOrigin ?? performance.timeOrigin;
  }

  async start(): Promise<void> {
    await this.sink.open();
    this.open = true;
  }

  /** Write what is buffered (for up to graceMs), then close the sink. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.open) return;
    this.open = false;
    this.flush();
    if (this.writingBytes > 0 || this.pending.length > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.idle.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.dropped += this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
    await this.sink.close();
  }

  /** The request sink (RequestStats.onRequest). */
  readonly record = (rec: ExchangeRecord): void => {
    if (!this.open) return;
    if (this.pendingBytes + this.writingBytes >= this.maxBufferBytes) {
      this.dropped++;
      this.warnDropping();
      return;
    }
    const line = this.format === 'json' ? this.jsonLine(rec) : this.combinedLine(rec);
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.scheduled && this.writingBytes === 0) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  };

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.writingBytes > 0 || this.pending.length === 0) {
      if (this.writingBytes === 0) this.settle();
      return;
    }
    const lines = this.pending;
    const chunk = lines.join('');
    this.pending = [];
    this.writingBytes = this.pendingBytes || 1;
    this.writingLines = lines.length;
    this.pendingBytes = 0;
    this.sink.write(chunk, (err) => {
      const n = this.writingLines;
      this.writingBytes = 0;
      this.writingLines = 0;
      if (err) {
        this.dropped += n;
        this.warn(`access log: write failed, ${n} lines lost`, { error: err.message });
      } else {
        this.written += n;
      }
      if (this.pending.length > 0) this.flush();
      else this.settle();
    });
  };

  private settle(): void {
    for (const fn of this.idle.splice(0)) fn();
  }

  private warnDropping(): void {
    this.warn('access log: the sink is behind, lines are being dropped', { dropped: this.dropped });
  }

  private warn(msg: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.lastWarn < 10_000) return;
    this.lastWarn = now;
    this.log.warn(msg, fields);
  }

  /** One JSON object per line. */
  jsonLine(r: ExchangeRecord): string {
    return (
      '{"time":"' +
      isoDate(this.timeOrigin + r.startedAt) +
      '","requestId":' +
      q(r.requestId()) +
      ',"listener":' +
      q(r.listener) +
      ',"client":' +
      q(r.clientAddress) +
      ',"method":' +
      q(r.method) +
      ',"target":' +
      q(r.target) +
      ',"host":' +
      q(r.host) +
      ',"route":' +
      q(r.route) +
      ',"pool":' +
      q(r.pool) +
      ',"server":' +
      q(r.server) +
      ',"status":' +
      r.status +
      ',"bytesIn":' +
      r.bytesIn +
      ',"bytesOut":' +
      r.bytesOut +
      ',"queueMs":' +
      ms(r.queueMs) +
      ',"connectMs":' +
      ms(r.connectMs) +
      ',"firstByteMs":' +
      ms(r.firstByteMs) +
      ',"totalMs":' +
      ms(r.totalMs) +
      ',"tries":' +
      r.tries +
      ',"cache":' +
      q(r.cacheStatus) +
      (r.error === '' ? '' : ',"error":' + q(r.error)) +
      '}\n'
    );
  }

  /**
   * Apache's combined format (`%h - - [%t] "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`,
   * bytes out counting the response head), then Portico's fields: request id, listener,
   * route, pool, server, queue, connect, first-byte and total times in ms, bytes in.
   */
  combinedLine(r: ExchangeRecord): string {
    return (
      r.clientAddress +
      ' - - [' +
      clfDate(this.timeOrigin + r.startedAt) +
      '] "' +
      clfEscape(r.method + ' ' + r.target + ' HTTP/' + r.httpVersion) +
      '" ' +
      r.status +
      ' ' +
      r.bytesOut +
      ' "' +
      clfEscape(r.header('referer') || '-') +
      '" "' +
      clfEscape(r.header('user-agent') || '-') +
      '" ' +
      r.requestId() +
      ' ' +
      dash(r.listener) +
      ' ' +
      dash(r.route) +
      ' ' +
      dash(r.pool) +
      ' ' +
      dash(r.server) +
      ' ' +
      ms(r.queueMs) +
      ' ' +
      ms(r.connectMs) +
      ' ' +
      ms(r.firstByteMs) +
      ' ' +
      ms(r.totalMs) +
      ' ' +
      r.bytesIn +
      '\n'
    );
  }
}

function ms(x: number): string {
  return String(Math.round(x * 1000) / 1000);
}

/** A JSON string: quoted as is when nothing needs escaping (the usual case), else JSON.stringify. */
function q(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

let isoSec = -1;
let isoPrefix = '';

/** `2024-01-02T03:04:05.250Z`, the part up to the second cached. */
export function isoDate(epochMs: number): string {
  const t = Math.floor(epochMs);
  const sec = Math.floor(t / 1000);
  if (sec !== isoSec) {
    isoSec = sec;
    isoPrefix = new Date(sec * 1000).toISOString().slice(0, 20);
  }
  const m = t - sec * 1000;
  return isoPrefix + (m < 10 ? '00' + m : m < 100 ? '0' + m : String(m)) + 'Z';
}

function dash(s: string): string {
  if (s === '') return '-';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 34 || c === 92 || c >= 0x7f) return clfEscape(s).replace(/ /g, '%20');
  }
  return s;
}

/** Quotes, backslashes and control bytes escaped as Apache does (`\"`, `\\`, `\xHH`). */
function clfEscape(s: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 34 || c === 92 || c >= 0x7f) break;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) out += '\\"';
    else if (c === 92) out += '\\\\';
    else if (c < 0x20 || c >= 0x7f) out += '\\x' + (c & 0xff).toString(16).padStart(2, '0');
    else out += s[i];
  }
  return out;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let clfSec = -1;
let clfText = '';

/** `10/Oct/2000:13:55:36 +0000` (UTC), cached for the current second. */
export function clfDate(epochMs: number): string {
  const sec = Math.floor(epochMs / 1000);
  if (sec === clfSec) return clfText;
  const d = new Date(sec * 1000);
  const p = (n: number): string => (n < 10 ? '0' + n : String(n));
  clfText = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  clfSec = sec;
  return clfText;
}
