import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';

/**
 * `portico dsr-setup --vip ADDRESS [--interface lo] [--apply]`: the real server's side of
 * `forwarding: dsr` (SPEC §10). The server must accept packets for the virtual address (it holds
 * it on a loopback alias) without ever answering ARP for it or using it as the source of its own
 * ARP requests, or it would take the address from the balancer: arp_ignore=1 (answer only for
 * addresses of the interface asked on) and arp_announce=2 (announce the best local address of the
 * interface), on `all` and on every interface. Prints the commands; with --apply runs them here.
 */

export const DSR_SETUP_USAGE = `Usage: portico dsr-setup --vip ADDRESS [--interface lo] [--apply]

Prints the commands that prepare a real server for direct server return (forwarding: dsr):
the virtual address on a loopback alias that never answers ARP, and the ARP sysctls on
'all' and on each interface of this host. With --apply, runs them (root; idempotent).

Options:
  --vip ADDRESS       the listener's virtual address (IPv4)
  --interface NAME    where the address is held (default lo; a dummy interface works too)
  --apply             apply here instead of printing
  -h, --help          this text
`;

export class DsrSetupUsageError extends Error {}

export interface DsrSetupArgs {
  readonly vip: string;
  readonly iface: string;
  readonly apply: boolean;
  readonly help: boolean;
}

export function parseDsrSetupArgs(argv: readonly string[]): DsrSetupArgs {
  let vip: string | undefined;
  let iface = 'lo';
  let apply = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) throw new DsrSetupUsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--vip') vip = value();
    else if (a.startsWith('--vip=')) vip = a.slice(6);
    else if (a === '--interface') iface = value();
    else if (a.startsWith('--interface=')) iface = a.slice(12);
    else if (a === '--apply') apply = true;
    else if (a === '-h' || a === '--help') help = true;
    else throw new DsrSetupUsageError(`unknown argument '${a}'`);
  }
  if (help) return { vip: '', iface, apply, help };
  if (vip === undefined) throw new DsrSetupUsageError('--vip is required');
  const bare = vip.replace(/\/32$/, '');
  if (isIP(bare) !== 4) {
    throw new DsrSetupUsageError(
      isIP(bare) === 6 ? `--vip ${vip}: IPv6 is not supported by the kernel data plane's dsr (it forwards IPv4 frames)` : `--vip ${vip} is not an IPv4 address`,
    );
  }
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(iface)) throw new DsrSetupUsageError(`--interface '${iface}' is not an interface name`);
  return { vip: bare, iface, apply, help };
}

/** One step: the shell command printed, and the same thing done by --apply. */
export type DsrStep = { readonly kind: 'addr'; readonly vip: string; readonly iface: string } | { readonly kind: 'sysctl'; readonly key: string; readonly value: string };

/**
 * The steps for a host whose interfaces are `interfaces` (from /sys/class/net): sysctls first (on
 * `all`, on `default` for interfaces made later, and on each interface but lo), then the address.
 * The sysctls come first so that the address is never announced, not even once.
 */
export function dsrSetupSteps(vip: string, iface: string, interfaces: readonly string[]): DsrStep[] {
  const steps: DsrStep[] = [];
  const names = ['all', 'default', ...interfaces.filter((n) => n !== 'lo' && n !== 'all' && n !== 'default').sort()];
  if (iface !== 'lo' && !names.includes(iface)) names.push(iface);
  for (const n of names) {
    steps.push({ kind: 'sysctl', key: `net.ipv4.conf.${n}.arp_ignore`, value: '1' });
    steps.push({ kind: 'sysctl', key: `net.ipv4.conf.${n}.arp_announce`, value: '2' });
  }
  steps.push({ kind: 'addr', vip, iface });
  return steps;
}

/** The steps as shell commands, with a comment saying what they are for and how to keep them. */
export function renderDsrSetup(vip: string, iface: string, steps: readonly DsrStep[]): string {
  const lines = [
    `# Real server for direct server return to ${vip} (run as root).`,
    '# Never answer ARP for the virtual address, never use it as the source of ARP requests:',
  ];
  for (const s of steps) {
    if (s.kind === 'sysctl') lines.push(`sysctl -w ${s.key}=${s.value}`);
    else {
      lines.push(`# Accept packets for ${vip}: the address on ${s.iface}${s.iface === 'lo' ? ' (a loopback alias, never announced)' : ''}:`);
      lines.push(`ip addr replace ${s.vip}/32 dev ${s.iface}${s.iface === 'lo' ? ' label lo:dsr' : ''}`);
    }
  }
  lines.push(
    '# To keep them across reboots: the sysctls in /etc/sysctl.d/90-portico-dsr.conf, the address',
    '# in the network configuration of the loopback interface. Replies must leave through the',
    "# router (the server's default gateway), not through the balancer.",
    '',
  );
  return lines.join('\n');
}

function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/** Apply the steps here; each is idempotent (an address already present is replaced by itself). */
export function applyDsrSetup(steps: readonly DsrStep[]): void {
  for (const s of steps) {
    if (s.kind === 'sysctl') {
      const path = sysctlPath(s.key);
      if (!existsSync(path)) throw new Error(`${s.key}: ${path} does not exist (no such interface, or /proc/sys not mounted)`);
      writeFileSync(path, s.value + '\n');
    } else {
      try {
        execFileSync('ip', ['addr', 'replace', `${s.vip}/32`, 'dev', s.iface, ...(s.iface === 'lo' ? ['label', 'lo:dsr'] : [])], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
      } catch (err) {
        const e = err as { stderr?: Buffer; message: string };
        throw new Error(`ip addr replace ${s.vip}/32 dev ${s.iface}: ${e.stderr?.toString().trim() || e.message}`);
      }
    }
  }
}

export interface DsrSetupIo {
  out(s: string): void;
  err(s: string): void;
}

/** 0 printed or applied, 1 apply failed, 2 usage error. */
export function runDsrSetup(argv: readonly string[], io: DsrSetupIo, interfaces: () => string[] = hostInterfaces): number {
  let args: DsrSetupArgs;
  try {
    args = parseDsrSetupArgs(argv);
  } catch (err) {
    if (!(err instanceof DsrSetupUsageError)) throw err;
    io.err(`portico dsr-setup: ${err.message}\n\n${DSR_SETUP_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.out(DSR_SETUP_USAGE);
    return 0;
  }
  const names = interfaces();
  if (args.iface !== 'lo' && !names.includes(args.iface)) {
    io.err(`portico dsr-setup: no interface '${args.iface}' on this host (make it first, e.g. ip link add ${args.iface} type dummy && ip link set ${args.iface} up)\n`);
    return 1;
  }
  const steps = dsrSetupSteps(args.vip, args.iface, names);
  if (!args.apply) {
    io.out(renderDsrSetup(args.vip, args.iface, steps));
    return 0;
  }
  if (process.getuid?.() !== 0) {
    io.err('portico dsr-setup --apply: needs root (CAP_NET_ADMIN and /proc/sys write); run it with sudo, or run the printed commands\n');
    return 1;
  }
  try {
    applyDsrSetup(steps);
  } catch (err) {
    io.err(`portico dsr-setup --apply: ${(err as Error).message}\n`);
    return 1;
  }
  io.out(`applied: ${args.vip}/32 on ${args.iface}, arp_ignore=1 and arp_announce=2 on ${steps.filter((s) => s.kind === 'sysctl' && s.key.endsWith('arp_ignore')).length} interfaces (all, default and each one)\n`);
  return 0;
}

/** The IPv4 interfaces of this host (network namespace), as /proc/sys lists them. */
export function hostInterfaces(): string[] {
  try {
    return readdirSync('/proc/sys/net/ipv4/conf').filter((n) => n !== 'all' && n !== 'default');
  } catch {
    return [];
  }
}
