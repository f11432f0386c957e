import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { waitFor } from './origins.js';

/** A service a test started from its binary (etcd, ZooKeeper): its output, and how to stop it. */
export interface ServiceChild {
  output(): string;
  /** SIGTERM, SIGKILL after 5 s, then its directory removed. */
  stop(): Promise<void>;
}

/**
 * Watch `child` (spawned with stdout and stderr piped), which keeps its files in `dir`, and wait
 * until `ready` says it serves, up to `timeoutMs`. A child that exits first, or is not ready in
 * time, is stopped and the error thrown names `what` and carries its output.
 */
export async function superviseService(child: ChildProcess, dir: string, what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<ServiceChild> {
  let out = '';
  child.stdout?.on('data', (c) => (out += c));
  child.stderr?.on('data', (c) => (out += c));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${out}`);
        return ready();
      },
      timeoutMs,
      `${what} to serve`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { output: () => out, stop };
}
