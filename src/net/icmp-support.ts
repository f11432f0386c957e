import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/*
 * Whether this host can send ICMP echo requests the way the icmp health check does (iputils
 * ping). A property of the machine, not of a check: config's availability check asks it
 * when a configuration names `health: { type: icmp }`.
 */

let support: string | undefined | null = null;

/**
 * Why ICMP probes cannot run on this machine, or undefined when they can: `ping` must be on the
 * PATH and able to send an echo request (to 127.0.0.1) with the privileges Portico has. Checked
 * once per process, when a configuration with `health: { type: icmp }` is loaded.
 */
export function icmpUnavailable(): string | undefined {
  if (support !== null) return support;
  const found = (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, 'ping'), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) {
    support = 'ICMP probes need the ping program (Debian package iputils-ping), which is not on the PATH';
    return support;
  }
  const r = spawnSync('ping', ['-n', '-4', '-c', '1', '-W', '1', '127.0.0.1'], { encoding: 'latin1', timeout: 5000 });
  if (r.status === 0) {
    support = undefined;
    return support;
  }
  const why = `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n').find((l) => l.trim() !== '') ?? r.error?.message ?? `exit ${String(r.status)}`;
  support = `ICMP probes cannot run here: ping 127.0.0.1 failed (${why.trim()}); run Portico as root, give ping CAP_NET_RAW, or allow ICMP sockets with sysctl net.ipv4.ping_group_range`;
  return support;
}
