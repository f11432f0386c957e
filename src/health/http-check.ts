import { request, type IncomingMessage } from 'node:http';
import type { Server } from '../core/server.js';
import { linearRegExp } from '../config/values/linear-regex.js';
import { errorText, failed, passed, type CheckResult, type HealthCheck } from './health-check.js';

export interface HttpCheckOptions {
  readonly method: 'GET' | 'HEAD';
  readonly path: string;
  /** Host header; default: the server's address. */
  readonly host?: string | undefined;
  /** Inclusive status ranges that pass. */
  readonly status: readonly (readonly [number, number])[];
  /** Text the body must contain. */
  readonly body?: string | undefined;
  /** A regular expression the body must match. */
  readonly bodyRegex?: string | undefined;
}

/** Most bytes of a body read when it is checked. */
const MAX_BODY = 65_536;

/**
 * `http`: a request on a fresh connection (never a pooled one) whose status is in the expected
 * ranges and, when configured, whose body (its first 64 KiB) contains a text or matches a regex.
 */
export class HttpHealthCheck implements HealthCheck {
  readonly kind = 'http';
  private readonly options: HttpCheckOptions;
  private readonly regex: RegExp | undefined;
  private readonly readsBody: boolean;

  constructor(options: HttpCheckOptions) {
    this.options = options;
    this.regex = options.bodyRegex === undefined ? undefined : linearRegExp(options.bodyRegex);
    this.readsBody = options.method === 'GET' && (options.body !== undefined || this.regex !== undefined);
  }

  check(server: Server, signal: AbortSignal): Promise<CheckResult> {
    const o = this.options;
    return new Promise((resolve) => {
      const t0 = performance.now();
      if (signal.aborted) return resolve(failed('timeout'));
      let done = false;
      const finish = (r: CheckResult): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        req.destroy();
        resolve(r);
      };
      const onAbort = (): void => finish(failed('timeout'));
      const hostHeader = o.host ?? (server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`);
      const req = request({
        host: server.host,
        port: server.port,
        method: o.method,
        path: o.path,
        agent: false,
        headers: { host: hostHeader, 'user-agent': 'portico-health-check', connection: 'close', accept: '*/*' },
      });
      signal.addEventListener('abort', onAbort);
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        finish(failed(code === 'ECONNREFUSED' ? 'refused' : 'error', errorText(err)));
      });
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (!o.status.some(([lo, hi]) => status >= lo && status <= hi)) {
          res.resume();
          return finish(failed('status', String(status)));
        }
        if (!this.readsBody) {
          res.resume();
          return finish(passed(performance.now() - t0));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        const judge = (): void => {
          const text = Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8');
          if (o.body !== undefined && !text.includes(o.body)) return finish(failed('body', `no ${JSON.stringify(o.body)} in the body`));
          if (this.regex !== undefined && !this.regex.test(text)) return finish(failed('body', `the body does not match /${o.bodyRegex}/`));
          finish(passed(performance.now() - t0));
        };
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          size += c.length;
          if (size >= MAX_BODY) judge();
        });
        res.on('end', judge);
        res.on('error', (err) => finish(failed('error', errorText(err))));
      });
      req.end();
    });
  }
}
