import { spawn } from 'node:child_process';
import type { Server } from '../core/server.js';
import { errorText, failed, passed, type CheckResult, type HealthCheck } from './health-check.js';

/**
 * `icmp`: one echo request and its reply. Node.js has no raw sockets, so each probe runs
 * iputils `ping -c 1` with a wait equal to the time left before the probe's timeout, and the
 * process is killed if it outlives the probe (a hung name lookup, a slow start).
 */
export class IcmpHealthCheck implements HealthCheck {
  readonly kind = 'icmp';
  private readonly timeoutMs: number;
  private readonly command: string;

  /** `timeoutMs` bounds ping's own wait for the reply; the monitor's signal bounds the whole probe. */
  constructor(options: { timeoutMs: number; command?: string }) {
    this.timeoutMs = options.timeoutMs;
    this.command = options.command ?? 'ping';
  }

  check(server: Server, signal: AbortSignal): Promise<CheckResult> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve(failed('timeout'));
      const t0 = performance.now();
      const waitSec = Math.max(this.timeoutMs, 1) / 1000;
      const family = server.host.includes(':') ? '-6' : '-4';
      // -W alone: ping exits as soon as the reply comes or the wait ends (-w would wait out its deadline).
      const args = ['-n', family, '-c', '1', '-W', waitSec.toFixed(3), server.host];
      let out = '';
      let done = false;
      const child = spawn(this.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const finish = (r: CheckResult): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        resolve(r);
      };
      const onAbort = (): void => finish(failed('timeout', 'no echo reply'));
      signal.addEventListener('abort', onAbort);
      child.stdout.setEncoding('latin1').on('data', (c: string) => {
        if (out.length < 4096) out += c;
      });
      child.stderr.setEncoding('latin1').on('data', (c: string) => {
        if (out.length < 4096) out += c;
      });
      child.on('error', (err) => finish(failed('error', `cannot run ${this.command}: ${errorText(err)}`)));
      child.on('close', (code) => {
        if (code === 0) {
          const m = /time[=<]([\d.]+) ?ms/.exec(out);
          return finish(passed(m === null ? performance.now() - t0 : Number(m[1])));
        }
        if (code === 1) return finish(failed('timeout', 'no echo reply'));
        const line = out.split('\n').find((l) => l.startsWith('ping:')) ?? `ping exited with ${String(code)}`;
        finish(failed('error', line.trim()));
      });
    });
  }
}
