import { isIPv4 } from '../values/host.js';
import type { PathIssue } from '../path.js';
import { asMap, asString, maps, type RawMap } from './raw.js';

const KERNEL_BALANCE = new Set(['roundrobin', 'random', 'hash']);

/**
 * Pools behind kernel listeners (`dataPlane: kernel`): what needs the bytes or a userspace
 * decision per request is refused with the reason (retries, the queue, algorithms the kernel does
 * not run, hashing on anything but the client address, cookie persistence), and so is a server
 * the kernel cannot address (an IPv4 address is required).
 */
export function checkKernelPools(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  const users = new Map<string, string>();
  for (const [i, l] of maps(root['listeners'])) {
    if (l['dataPlane'] !== 'kernel') continue;
    const p = asString(l['pool']);
    if (p !== undefined && !users.has(p)) users.set(p, asString(l['name']) ?? String(i));
  }
  for (const [i, p] of maps(root['pools'])) {
    const name = asString(p['name']);
    const listener = name === undefined ? undefined : users.get(name);
    if (listener === undefined) continue;
    const why = `kernel listener "${listener}" uses this pool`;
    const balance = asString(p['balance']) ?? 'roundrobin';
    if (!KERNEL_BALANCE.has(balance)) out.push({ path: ['pools', i, 'balance'], message: `${why}: the kernel balances by roundrobin, random or hash (source-ip), not ${balance}` });
    const key = asString(asMap(p['hash'])?.['key']);
    if (balance === 'hash' && key !== undefined && key !== 'source-ip') out.push({ path: ['pools', i, 'hash', 'key'], message: `${why}: the kernel hashes the client address only (key: source-ip)` });
    const retries = p['retries'];
    if (retries !== undefined && Number(retries) !== 0) out.push({ path: ['pools', i, 'retries'], message: `${why}: retries need the bytes, which the kernel forwards without Portico seeing them (set retries: 0)` });
    const queueMax = asMap(p['queue'])?.['max'];
    if (queueMax !== undefined && Number(queueMax) !== 0) out.push({ path: ['pools', i, 'queue', 'max'], message: `${why}: the kernel cannot hold a connection in a queue (remove queue)` });
    const ps = asString(asMap(p['persistence'])?.['type']);
    if (ps !== undefined && ps !== 'source-ip') out.push({ path: ['pools', i, 'persistence', 'type'], message: `${why}: the kernel keeps a client by its address only (source-ip, or kernel.persistence)` });
    for (const [j, s] of maps(p['servers'])) {
      const addr = asString(s['address']);
      const host = addr?.slice(0, addr.lastIndexOf(':'));
      if (host !== undefined && host !== '' && !isIPv4(host)) {
        out.push({ path: ['pools', i, 'servers', j, 'address'], message: `${why}: the kernel forwards to IPv4 addresses only, not ${host}` });
      }
    }
  }
  return out;
}
