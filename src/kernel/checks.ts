/**
 * What a kernel listener needs of the host, checked before anything is applied; each failure is
 * an error that names the fix. The host's side is the operator's (SPEC §10): Portico checks it and
 * changes none of it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { KernelListenerConfig } from '../config/types.js';
import { run } from './nft.js';

/** A prerequisite of the kernel data plane is missing. */
export class KernelPrerequisiteError extends Error {
  constructor(listener: string, what: string) {
    super(`kernel listener ${listener}: ${what}`);
    this.name = 'KernelPrerequisiteError';
  }
}

const CAP_NET_ADMIN = 12;

/** Whether this process holds CAP_NET_ADMIN in its effective set (/proc/self/status, CapEff). */
export function hasNetAdmin(status: string = readFileSync('/proc/self/status', 'utf8')): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (m === null) return false;
  return (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
}

/** The host's facts the checks read (injectable for tests). */
export interface HostFacts {
  nftVersion(): Promise<string | undefined>;
  netAdmin(): boolean;
  ipForward(): string | undefined;
  interfaceExists(name: string): boolean;
  localAddresses(): string[];
}

export const realHost: HostFacts = {
  async nftVersion() {
    try {
      const r = await run('nft', ['--version']);
      return r.code === 0 ? r.stdout.trim() : undefined;
    } catch {
      return undefined;
    }
  },
  netAdmin: () => {
    try {
      return hasNetAdmin();
    } catch {
      return false;
    }
  },
  ipForward: () => {
    try {
      return readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
    } catch {
      return undefined;
    }
  },
  interfaceExists: (name) => existsSync(`/sys/class/net/${name}`),
  localAddresses: () =>
    Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4')
      .map((a) => a!.address),
};

/** Every problem found, in order; none when the host is ready. */
export async function prerequisiteProblems(lc: KernelListenerConfig, host: HostFacts = realHost): Promise<string[]> {
  const out: string[] = [];
  if ((await host.nftVersion()) === undefined) out.push('nft not found: install nftables (Debian: apt-get install nftables)');
  if (!host.netAdmin()) {
    out.push('no CAP_NET_ADMIN: run Portico as root or grant the capability (systemd: AmbientCapabilities=CAP_NET_ADMIN; or setcap cap_net_admin+ep on the node binary)');
  }
  if (lc.forwarding === 'nat' && host.ipForward() !== '1') {
    out.push('net.ipv4.ip_forward is off, so NAT cannot forward: sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/ to keep it)');
  }
  const iface = lc.kernel.interface;
  if (iface !== undefined && !host.interfaceExists(iface)) out.push(`interface ${iface} not found: fix kernel.interface (ip link shows the interfaces)`);
  const vip = lc.listen.host;
  // Behind keepalived the standby node starts without the address (and so does the master, until
  // its readiness check passes): its rules must be in place before it takes the address over.
  if (lc.kernel.addressHeldBy !== 'keepalived' && !host.localAddresses().includes(vip)) {
    out.push(
      `the virtual address ${vip} is on no interface of this host: ip addr add ${vip}/32 dev ${iface ?? 'IFACE'}, or, when keepalived moves it between two nodes, set kernel.addressHeldBy: keepalived`,
    );
  }
  return out;
}

/** Throw the first problem found (the others follow in the message). */
export async function checkPrerequisites(lc: KernelListenerConfig, host: HostFacts = realHost): Promise<void> {
  const problems = await prerequisiteProblems(lc, host);
  if (problems.length > 0) throw new KernelPrerequisiteError(lc.name, problems.join('; '));
}
