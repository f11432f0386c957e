/**
 * Running nft and conntrack: one transaction per call (`nft -f -`, the script on stdin), JSON read
 * back (`nft -j list ...`). Every call is bounded by a timeout; a failure carries nft's message.
 */
import { spawn } from 'node:child_process';
import { NETDEV_FAMILY, NETDEV_TABLE } from './render-l2.js';
import { FAMILY, TABLE } from './render.js';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Where the binaries are looked for first (sbin is often not on a service's PATH). */
const SBIN = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

function env(): NodeJS.ProcessEnv {
  const path = process.env['PATH'] ?? '';
  const extra = SBIN.filter((d) => !path.split(':').includes(d));
  return { ...process.env, PATH: [path, ...extra].filter((x) => x !== '').join(':') };
}

/** Runs nft and conntrack: here (a single process, or the primary of the workers), or in the primary (a worker). */
export type Runner = (cmd: string, args: readonly string[], input: string, timeoutMs: number) => Promise<RunResult>;

/** The commands a runner runs for the kernel data plane (the primary runs no other for a worker). */
export const KERNEL_COMMANDS: ReadonlySet<string> = new Set(['nft', 'conntrack']);

let runner: Runner = runHere;

/**
 * Under `cluster.workers`, only the primary programs the kernel: a worker sends its nft and
 * conntrack commands there (src/cluster/workers-kernel.ts).
 */
export function useRunner(r: Runner): void {
  runner = r;
}

/** Run a command (nft, conntrack) with `input` on stdin; resolves with its exit code and output (spawn errors reject). */
export function run(cmd: string, args: readonly string[], input = '', timeoutMs = 10_000): Promise<RunResult> {
  return runner(cmd, args, input, timeoutMs);
}

/** Run a command in this process. */
export function runHere(cmd: string, args: readonly string[], input = '', timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env(), timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // an early exit closes stdin: the exit code tells
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(input);
  });
}

/** A failed nft transaction: nothing of it was applied (nft -f is atomic). */
export class NftError extends Error {
  constructor(
    message: string,
    readonly script: string,
  ) {
    super(message);
    this.name = 'NftError';
  }
}

/** Apply `script` as one transaction (all or nothing). `check`: parse and validate only (nft -c). */
export async function nftApply(script: string, options: { check?: boolean } = {}): Promise<void> {
  const args = options.check === true ? ['-c', '-f', '-'] : ['-f', '-'];
  const r = await run('nft', args, script);
  if (r.code !== 0) throw new NftError(`nft ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`, script);
}

/** `nft -j ARGS` parsed; the `nftables` array of objects. */
export async function nftJson(args: readonly string[]): Promise<Record<string, any>[]> {
  const r = await run('nft', ['-j', ...args]);
  if (r.code !== 0) throw new NftError(`nft -j ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`, '');
  const parsed = JSON.parse(r.stdout) as { nftables?: Record<string, any>[] };
  return parsed.nftables ?? [];
}

/**
 * Named counters of Portico's table: name → packets and bytes. `netdev: false` skips the netdev
 * table (no link-layer listener: one nft run instead of two).
 */
export async function readCounters(options: { netdev?: boolean } = {}): Promise<Map<string, { packets: number; bytes: number }>> {
  const out = new Map<string, { packets: number; bytes: number }>();
  // The link-layer modes (dsr, distributed) count in the netdev table, when there is one.
  const netdev = options.netdev === false ? [] : await nftJson(['list', 'counters', 'table', NETDEV_FAMILY, NETDEV_TABLE]).catch(() => []);
  for (const o of [...(await nftJson(['list', 'counters', 'table', FAMILY, TABLE])), ...netdev]) {
    const c = o['counter'] as { name?: string; packets?: number; bytes?: number } | undefined;
    if (c?.name !== undefined) out.set(c.name, { packets: c.packets ?? 0, bytes: c.bytes ?? 0 });
  }
  return out;
}

/** Whether Portico's table exists (tests, exit). */
export async function tableExists(): Promise<boolean> {
  const r = await run('nft', ['list', 'table', FAMILY, TABLE]);
  return r.code === 0;
}
