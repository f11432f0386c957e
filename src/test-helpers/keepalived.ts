/**
 * keepalived for namespace tests of address take-over (SPEC §7): the configuration is always the
 * one `portico keepalived` writes for a Portico configuration file, and keepalived runs in the
 * foreground inside a namespace of a `Netns` run (which ends it by PID in `destroy()`).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { which, type Netns, type NsProc } from './netns.js';

const PORTICO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'portico');

export const keepalivedBinary = (): string | undefined => which(['/usr/sbin/keepalived', '/sbin/keepalived', '/usr/local/sbin/keepalived']);
export const curlBinary = (): string | undefined => which(['/usr/bin/curl', '/bin/curl', '/usr/local/bin/curl']);

/** Why keepalived take-over tests cannot run here (undefined: they can); the caller fails under CI=true. */
export function keepalivedSkip(): string | undefined {
  if (keepalivedBinary() === undefined) return 'keepalived is not installed (Debian package keepalived)';
  if (curlBinary() === undefined) return 'curl is not installed (the readiness check runs it)';
  return undefined;
}

export interface KeepalivedNode {
  /** Portico's configuration file (its admin.listen gives the readiness URL). */
  readonly config: string;
  /** Where to write keepalived's configuration. */
  readonly out: string;
  readonly vip: string;
  readonly interface: string;
  readonly priority: number;
  readonly routerId: number;
  /** More `portico keepalived` options (`--check-interval 2`, `--fall 3` ...). */
  readonly extra?: readonly string[];
}

/** Write `node.out` with `portico keepalived` (throws with its message when it fails); returns the text. */
export function writeKeepalivedConfig(node: KeepalivedNode): string {
  const r = spawnSync(
    process.execPath,
    [PORTICO, 'keepalived', '--vip', node.vip, '--interface', node.interface, '--priority', String(node.priority), '--router-id', String(node.routerId), '-c', node.config, '--curl', curlBinary()!, '-o', node.out, ...(node.extra ?? [])],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`portico keepalived exited ${r.status}: ${r.stderr}`);
  return spawnSync('cat', [node.out], { encoding: 'utf8' }).stdout;
}

/** Start keepalived (VRRP only, foreground) in `ns` with `conf`; its pid files go to `dir`. */
export function startKeepalived(net: Netns, ns: string, name: string, conf: string, dir: string): NsProc {
  return net.spawn(name, ns, [keepalivedBinary()!, '--dont-fork', '--log-console', '--log-detail', '--vrrp', '-f', conf, '-p', join(dir, `${name}.pid`), '-r', join(dir, `${name}-vrrp.pid`)]);
}

/** Whether `address` is on `dev` in `ns` now. */
export function holdsAddress(net: Netns, ns: string, dev: string, address: string): boolean {
  return net.run(ns, ['ip', '-o', '-4', 'addr', 'show', 'dev', dev], false).stdout.includes(` ${address}/`);
}

/** End `p` with `signal` and wait (bounded) for it to exit; SIGKILL after `ms`. */
export async function stopProc(p: NsProc, signal: NodeJS.Signals = 'SIGTERM', ms = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  const timer = new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref());
  if (await Promise.race([p.exited.then(() => true), timer])) return;
  p.child.kill('SIGKILL');
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, ms).unref())]);
}
