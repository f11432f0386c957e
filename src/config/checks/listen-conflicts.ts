import type { ConfigPath, PathIssue } from '../path.js';
import { formatPath } from '../path.js';
import { listenerConfigKind, type Transport } from '../schema/listener.js';
import { parseAddress, formatAddress, type Address } from '../values/address.js';
import { isIPv6, isWildcard } from '../values/host.js';
import { asMap, asString, maps, type RawMap } from './raw.js';

/** Whether two binds on one port collide: the same host, or a wildcard that covers the other. */
function overlaps(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true;
  if (a === '0.0.0.0') return !isIPv6(b);
  if (b === '0.0.0.0') return !isIPv6(a);
  return isWildcard(a) || isWildcard(b);
}

const TCP: readonly Transport[] = ['tcp'];

/**
 * No two listeners (nor a listener and the admin API) bind the same address and port on a
 * transport they share (each kind names its transports, tcp by default); port 0 is exempt.
 */
export function checkListenConflicts(root: RawMap, transportsOf: (protocol: unknown) => readonly Transport[] = defaultTransports): PathIssue[] {
  const binds: { path: ConfigPath; addr: Address; who: string; transports: readonly Transport[] }[] = [];
  const add = (value: unknown, path: ConfigPath, who: string, transports: readonly Transport[]): void => {
    const r = parseAddress(value, 0);
    if (r.ok && r.value.port !== 0) binds.push({ path, addr: r.value, who, transports });
  };
  for (const [i, l] of maps(root['listeners'])) {
    add(l['listen'], ['listeners', i, 'listen'], `listener "${asString(l['name']) ?? i}"`, transportsOf(l['protocol']));
  }
  add(asMap(root['admin'])?.['listen'] ?? '127.0.0.1:9090', ['admin', 'listen'], 'the admin API', TCP);
  const out: PathIssue[] = [];
  binds.forEach((b, k) => {
    const first = binds
      .slice(0, k)
      .find((o) => o.addr.port === b.addr.port && overlaps(o.addr.host, b.addr.host) && o.transports.some((t) => b.transports.includes(t)));
    if (first !== undefined) {
      out.push({ path: b.path, message: `${formatAddress(b.addr)} is already used by ${first.who} (${formatPath(first.path)})` });
    }
  });
  return out;
}

/** The transports of a registered kind (tcp for one that names none, or an unknown protocol, which the schema reports). */
function defaultTransports(protocol: unknown): readonly Transport[] {
  return listenerConfigKind(protocol)?.transports ?? TCP;
}
