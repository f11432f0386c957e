import { connect, type Socket } from 'node:net';
import type { Server } from '../core/server.js';
import { errorText, failed, passed, type CheckResult, type HealthCheck } from './health-check.js';

export interface TcpCheckOptions {
  /** Bytes written once the connection is open (`\r\n` etc. as given). */
  readonly send?: string | undefined;
  /** Text the reply must contain; read until it is seen, the server closes, or the probe times out. */
  readonly expect?: string | undefined;
}

/** Most bytes of a reply kept while looking for `expect`. */
const MAX_REPLY = 65_536;

/** `tcp`: a connection opens (and, when configured, a reply to `send` contains `expect`). */
export class TcpHealthCheck implements HealthCheck {
  readonly kind = 'tcp';
  private readonly send: Buffer | undefined;
  private readonly expect: Buffer | undefined;

  constructor(options: TcpCheckOptions = {}) {
    this.send = options.send === undefined || options.send === '' ? undefined : Buffer.from(options.send, 'latin1');
    this.expect = options.expect === undefined || options.expect === '' ? undefined : Buffer.from(options.expect, 'latin1');
  }

  check(server: Server, signal: AbortSignal): Promise<CheckResult> {
    return new Promise((resolve) => {
      const t0 = performance.now();
      if (signal.aborted) return resolve(failed('timeout'));
      let sock: Socket;
      let done = false;
      let reply: Buffer = Buffer.alloc(0);
      const finish = (r: CheckResult): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        sock.destroy();
        resolve(r);
      };
      const onAbort = (): void => finish(failed('timeout', reply.length > 0 ? 'reply did not contain the expected text' : undefined));
      signal.addEventListener('abort', onAbort);
      try {
        sock = connect({ host: server.host, port: server.port });
      } catch (err) {
        signal.removeEventListener('abort', onAbort);
        return resolve(failed('error', errorText(err)));
      }
      sock.setNoDelay(true);
      sock.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        finish(failed(code === 'ECONNREFUSED' ? 'refused' : 'error', errorText(err)));
      });
      sock.on('connect', () => {
        if (this.send !== undefined) sock.write(this.send);
        if (this.expect === undefined) finish(passed(performance.now() - t0));
      });
      sock.on('data', (chunk: Buffer) => {
        const expect = this.expect;
        if (expect === undefined) return;
        reply = reply.length === 0 ? chunk : Buffer.concat([reply, chunk]);
        if (reply.includes(expect)) return finish(passed(performance.now() - t0));
        if (reply.length > MAX_REPLY) finish(failed('body', `no ${JSON.stringify(expect.toString('latin1'))} in the first ${MAX_REPLY} bytes`));
      });
      sock.on('end', () => finish(failed('body', `the server closed without sending ${JSON.stringify(this.expect?.toString('latin1') ?? '')}`)));
    });
  }
}
