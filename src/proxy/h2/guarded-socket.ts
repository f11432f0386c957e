/**
 * The client connection of an h2 session, as Node's HTTP/2 reads it: the TLS socket's bytes pass
 * through an H2FieldGuard first, so that the guard has seen each header block before nghttp2
 * announces its stream. Everything else is passed on as is, with back-pressure both ways.
 */
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { H2FieldGuard } from './field-guard.js';

export class H2GuardedSocket extends Duplex {
  readonly guard = new H2FieldGuard();
  readonly inner: TLSSocket;

  constructor(inner: TLSSocket) {
    super({ allowHalfOpen: false });
    this.inner = inner;
    inner.on('data', this.onData);
    inner.on('end', this.onEnd);
    inner.on('close', this.onClose);
    inner.on('error', this.onError);
    inner.on('drain', this.onDrain);
  }

  get remoteAddress(): string | undefined {
    return this.inner.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.inner.remotePort;
  }

  get encrypted(): boolean {
    return true;
  }

  get alpnProtocol(): string | false | null {
    return this.inner.alpnProtocol;
  }

  private readonly onData = (c: Buffer): void => {
    const g = this.guard;
    g.feed(c);
    if (g.fatal) {
      this.inner.destroy();
      return;
    }
    if (!this.push(c)) this.inner.pause();
  };

  private readonly onEnd = (): void => {
    this.push(null);
  };

  private readonly onClose = (): void => {
    if (!this.destroyed) this.destroy();
  };

  private readonly onError = (err: Error): void => {
    if (!this.destroyed) this.destroy(err);
  };

  private pendingCb: ((err?: Error | null) => void) | undefined = undefined;

  private readonly onDrain = (): void => {
    const cb = this.pendingCb;
    this.pendingCb = undefined;
    cb?.();
  };

  override _read(): void {
    if (this.inner.isPaused()) this.inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner.write(chunk)) cb();
    else this.pendingCb = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.off('data', this.onData);
    this.inner.destroy();
    const pending = this.pendingCb;
    this.pendingCb = undefined;
    pending?.(err);
    cb(err);
  }

  setNoDelay(noDelay?: boolean): this {
    this.inner.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.inner.setKeepAlive(enable, delay);
    return this;
  }
}
