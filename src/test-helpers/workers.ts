import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './origins.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A request on a new connection: the primary of `cluster.workers` hands each new connection to the next worker in turn. */
export function fresh(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** The bodies of `n` requests, each on a new connection (so, in turn, on every worker); a failed request counts as `(error)`. */
export async function bodies(port: number, n: number, path = '/'): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const r = await fresh(port, path);
      out.push(r.status === 200 ? r.body : `(${r.status})`);
    } catch {
      out.push('(error)');
    }
  }
  return out;
}

/** The child processes of `pid` (Linux /proc). */
export function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** `portico start -c FILE` with `cluster.workers` above 1: the primary, its output, and a stop that takes its workers too. */
export interface WorkersProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Times `re` occurs in the output so far. */
  count(re: RegExp): number;
  workers(): number[];
  stop(): Promise<void>;
}

/** Start the primary (of the package whose `bin` is given, by default this checkout's); resolves once `listening` listener lines (one per worker and listener) are in the output. */
export async function startWorkersProcess(file: string, cwd: string, listening: number, env: NodeJS.ProcessEnv = {}, bin = join(ROOT, 'bin', 'portico')): Promise<WorkersProcess> {
  const child = spawn(process.execPath, [bin, 'start', '-c', file], { cwd, env: { ...process.env, ...env } });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const count = (re: RegExp): number => (out.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g')) ?? []).length;
  const p: WorkersProcess = {
    child,
    output: () => out,
    count,
    workers: () => children(child.pid!),
    stop: async () => {
      if (child.exitCode !== null) return;
      const pids = children(child.pid!);
      child.kill('SIGTERM');
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, 8000);
      await exited;
      clearTimeout(t);
    },
  };
  try {
    await waitFor(() => count(/listener \S+ on/) >= listening || child.exitCode !== null, 60_000, `${listening} listeners`);
  } catch (err) {
    await p.stop();
    throw new Error(`${(err as Error).message}; output:\n${out}`);
  }
  if (child.exitCode !== null) throw new Error(`portico exited (${child.exitCode}):\n${out}`);
  return p;
}
