/**
 * A GET that Portico makes by itself toward a route's pool, with no client waiting on it (the
 * cache's stale-while-revalidate refresh). It takes the path a client's request takes: the
 * upstream attempt (the pool's balancing, its queue, retries on another server where SPEC §4
 * allows them, the release that feeds the balancer), the pool's pooled server connections (and
 * its TLS toward the servers, which they carry), the pool's connect, response and idle timeouts,
 * passive health (each try's outcome to the pool's outlier detection), and the strict response
 * parser. The response is handed to a `BackgroundSink` as it arrives; its body without framing.
 *
 * No PROXY protocol header is sent (a listener's `sendProxy` names a client, and there is none):
 * on such a listener the caller does not start one.
 */
import type { Server } from '../../core/server.js';
import { Outcome } from '../../core/outcome.js';
import { UpstreamAttempt, type AttemptOwner, type AttemptPool, type ReleaseStats } from '../upstream-attempt.js';
import { ChunkedScanner, type ChunkSink } from './chunked.js';
import type { HeadLimits } from './http-chars.js';
import type { PoolHandle } from './listener-runtime.js';
import { parseResponseHead, type ResponseHead } from './parse-response.js';
import { UpstreamConn, type UpstreamOwner } from './upstream.js';

/** Where a background fetch's response goes. */
export interface BackgroundSink {
  /** The final response head; false: the body is not wanted (the connection is closed, not reused). */
  head(res: ResponseHead): boolean;
  data(chunk: Buffer): void;
  /** The whole response arrived. */
  end(): void;
  /** No response, or not a whole one (every try failed, a timeout, a bad response). */
  failed(o: Outcome): void;
}

const EMPTY = Buffer.alloc(0);

const enum St {
  Picking,
  Connecting,
  Waiting,
  Body,
  Done,
}

export class BackgroundFetch implements AttemptOwner, UpstreamOwner, ChunkSink, ReleaseStats {
  private readonly attempt = new UpstreamAttempt(this);
  private readonly upstream: AttemptPool;
  private state = St.Picking;
  private up: UpstreamConn | undefined = undefined;
  private buf: Buffer = EMPTY;
  private res: ResponseHead | undefined = undefined;
  /** Body bytes left (Content-Length), -1 for chunked or close-delimited. */
  private left = -1;
  private chunked: ChunkedScanner | undefined = undefined;
  private wanted = true;
  private timer: NodeJS.Timeout | undefined = undefined;
  private startedAt = 0;
  // ReleaseStats
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  latencyMs: number | undefined = undefined;

  /** The connection of this try was an idle one, reused. */
  private reused = false;
  private bytesInTry = 0;

  /**
   * `headText`: the whole request head (request line, fields, the blank line), sent on each try;
   * `limits`: those of the listener's server response heads.
   */
  constructor(
    private readonly ph: PoolHandle,
    private readonly headText: string,
    private readonly limits: HeadLimits,
    private readonly sink: BackgroundSink,
  ) {
    // Passive health reads the handle's outlier detection at each call (it is replaced with the pool's services).
    this.upstream = { pool: ph.pool, retries: ph.retries, onOutcome: (rt, kind, status) => ph.onOutcome?.(rt, kind, status) };
  }

  start(path: string): void {
    this.attempt.begin(this.upstream, undefined, path);
    this.attempt.run();
  }

  attemptConnect(s: Server): void {
    const conns = this.ph.connections(s);
    const idle = conns.take(performance.now());
    if (idle !== undefined) {
      this.up = idle;
      idle.owner = this;
      this.reused = true;
      this.send(idle);
      return;
    }
    this.reused = false;
    this.state = St.Connecting;
    this.arm(this.ph.connectTimeoutMs, 'connect-timeout');
    this.up = new UpstreamConn(s, conns, this);
  }

  attemptQueued(): void {
    this.arm(this.ph.queueTimeoutMs ?? 0, 'queue-timeout');
  }

  attemptFailed(o: Outcome): void {
    this.finish();
    this.sink.failed(o);
  }

  onUpstreamConnect(up: UpstreamConn): void {
    if (up === this.up && this.state === St.Connecting) this.send(up);
  }

  private send(up: UpstreamConn): void {
    this.state = St.Waiting;
    this.startedAt = performance.now();
    this.buf = EMPTY;
    this.res = undefined;
    up.uses++;
    this.bytesInTry = 0;
    this.bytesOut += this.headText.length;
    up.socket.write(this.headText, 'latin1');
    this.arm(this.ph.responseTimeoutMs, 'response-timeout');
  }

  onUpstreamData(up: UpstreamConn, data: Buffer): void {
    if (up !== this.up) return;
    // A view of the connection's read buffer is overwritten by the next read: this keeps its bytes.
    const chunk = up.borrowed ? Buffer.from(data) : data;
    this.bytesIn += chunk.length;
    this.bytesInTry += chunk.length;
    if (this.state === St.Waiting) {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      for (;;) {
        const r = parseResponseHead(this.buf, this.limits, 'GET');
        if (r === null) return;
        if (!r.ok) return this.tryFailed(Outcome.of('bad-response', r.reason));
        const rest = this.buf.subarray(r.headEnd);
        if (r.status >= 100 && r.status < 200) {
          // An interim response: the final one follows.
          if (r.status === 101) return this.tryFailed(Outcome.of('unsolicited-upgrade'));
          this.buf = rest;
          continue;
        }
        this.res = r;
        this.status = r.status;
        this.latencyMs = performance.now() - this.startedAt;
        this.buf = EMPTY;
        this.state = St.Body;
        this.wanted = this.sink.head(r);
        if (!this.wanted) return this.complete(false);
        const noBody = r.status === 204 || r.status === 304;
        if (noBody || r.contentLength === 0) return this.complete(true);
        if (r.chunked) {
          this.chunked = new ChunkedScanner();
          this.chunked.sink = this;
        } else this.left = r.contentLength;
        this.arm(this.ph.idleTimeoutMs, 'idle-timeout');
        if (rest.length > 0) this.body(rest);
        return;
      }
    }
    if (this.state === St.Body) {
      this.arm(this.ph.idleTimeoutMs, 'idle-timeout');
      this.body(chunk);
    }
  }

  chunkData(buf: Uint8Array, start: number, end: number): void {
    this.sink.data(Buffer.from(buf.buffer, buf.byteOffset + start, end - start));
  }

  private body(b: Buffer): void {
    const ch = this.chunked;
    if (ch !== undefined) {
      const at = ch.feed(b, 0, b.length);
      if (at === -2) return this.bodyFailed(Outcome.of('bad-response-body', ch.error ?? ''));
      if (at >= 0) this.complete(at === b.length);
      return;
    }
    if (this.left < 0) {
      this.sink.data(b);
      return;
    }
    const n = Math.min(this.left, b.length);
    this.left -= n;
    if (n > 0) this.sink.data(n === b.length ? b : b.subarray(0, n));
    if (this.left === 0) this.complete(n === b.length);
  }

  onUpstreamEnd(up: UpstreamConn): void {
    if (up !== this.up) return;
    // A close-delimited body ends here; any other ending before the last byte is a truncation.
    if (this.state === St.Body && this.res !== undefined && this.chunked === undefined && this.left < 0) return this.complete(false);
    this.onUpstreamError(up, new Error('server closed the connection'));
  }

  onUpstreamError(up: UpstreamConn, err: Error): void {
    if (up !== this.up || this.state === St.Done) return;
    if (this.state === St.Connecting) return this.tryFailed(Outcome.ofError('connect-failed', err));
    if (this.state === St.Waiting) return this.tryFailed(Outcome.ofError('upstream-reset', err));
    this.bodyFailed(Outcome.of('response-truncated'));
  }

  onUpstreamDrain(): void {}

  /** A try failed before the response head: another server when the rules allow it (a GET may be repeated). */
  private tryFailed(o: Outcome): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.clearTimer();
    const reused = this.reused && this.state === St.Waiting && this.bytesInTry === 0;
    this.state = St.Picking;
    // A kept-alive connection the server had closed already is not the server's failure: go again (as a session does).
    if (reused ? this.attempt.again(o, true, this) : this.attempt.retry(o, true, this)) return;
    this.finish();
    this.sink.failed(o);
  }

  private bodyFailed(o: Outcome): void {
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.attempt.release(false, o, this);
    this.finish();
    this.sink.failed(o);
  }

  /** The response is complete (or not wanted): the connection goes back to the pool when it may be reused. */
  private complete(reusable: boolean): void {
    const up = this.up;
    this.up = undefined;
    if (up !== undefined) {
      if (reusable && this.wanted && this.res?.keepAlive === true) up.release();
      else up.destroy();
    }
    this.attempt.release(true, undefined, this);
    const wanted = this.wanted;
    this.finish();
    if (wanted) this.sink.end();
  }

  private finish(): void {
    this.state = St.Done;
    this.clearTimer();
    this.attempt.abandon();
  }

  private arm(ms: number, code: 'connect-timeout' | 'response-timeout' | 'idle-timeout' | 'queue-timeout'): void {
    this.clearTimer();
    if (ms <= 0) return;
    this.timer = setTimeout(() => this.timedOut(code), ms);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private timedOut(code: 'connect-timeout' | 'response-timeout' | 'idle-timeout' | 'queue-timeout'): void {
    this.timer = undefined;
    if (this.state === St.Done) return;
    if (code === 'queue-timeout') {
      this.attempt.expireQueue();
      return;
    }
    if (code === 'idle-timeout') return this.bodyFailed(Outcome.of(code));
    this.tryFailed(Outcome.of(code));
  }
}
