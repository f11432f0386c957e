/**
 * The kernel L4 data plane's listeners (SPEC §10): `dataPlane: kernel` with `protocol: tcp` or
 * `udp`. Portico programs nftables and the kernel forwards the packets; what needs the bytes
 * (routes, inspect: tls, PROXY protocol) is refused here with the reason, at its key.
 */
import { z } from 'zod';
import { asMap, asString, maps, type RawMap } from '../config/checks/raw.js';
import type { PathIssue } from '../config/path.js';
import { KERNEL_HASH_TABLE } from '../config/kernel-defaults.js';
import { isIPv4 } from '../config/values/host.js';
import { fail, ok, show } from '../config/values/parsed.js';
import { MAX_BUCKETS } from './snapshot.js';
import { duration, flag, int, leaf, listenAddress, name, orOff, text } from '../config/schema/fields.js';

declare module '../config/schema/listener.js' {
  interface ListenerSchemas {
    'kernel/tcp': typeof kernelTcpListenerSchema;
    udp: typeof kernelUdpListenerSchema;
  }
}

/** A key a kernel listener cannot have: the message says why and what to do instead. */
const refused = (why: string) =>
  leaf<unknown, never>('refused', () => fail(why))
    .optional()
    .meta({ docType: 'refused' })
    .describe(`Refused: ${why}`);

const NEEDS_BYTES = 'a kernel listener forwards packets and never sees the bytes';

const snat = leaf<string | readonly string[], 'none' | 'masquerade' | readonly string[]>('none | masquerade | list of IPv4', (v) => {
  if (v === 'none' || v === 'masquerade') return ok(v);
  if (Array.isArray(v) && v.length > 0) {
    const bad = v.find((a) => typeof a !== 'string' || !isIPv4(a));
    if (bad !== undefined) return fail(`expected IPv4 addresses to translate the clients' source to, got ${show(bad)}`);
    return ok(v as string[]);
  }
  return fail(`expected none, masquerade or a list of IPv4 addresses, got ${show(v)}`);
});

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

const kernelBlock = z
  .strictObject({
    interface: text({ nonEmpty: true })
      .optional()
      .describe('dsr, distributed: the interface on the segment of the servers (or nodes); nat: when set, checked at start'),
    snat: snat
      .prefault('none')
      .describe(
        'nat: `none` (the servers route their replies through this node and see the client\'s address), `masquerade` (the outgoing interface\'s address), or a list of IPv4 addresses (connections spread over them; one address runs out of 4-tuples at high connection rates)',
      ),
    persistence: orOff(
      z.strictObject({
        timeout: duration().prefault('5m').describe('A client address keeps its server this long after its last packet'),
      }),
    )
      .prefault(false)
      .describe("`false` (or the pool's `persistence: source-ip`) or source-address persistence in the kernel: a dynamic map consulted before balancing"),
    flowTable: z
      .strictObject({
        size: int(1024, 16_777_216).prefault(65536).describe('dsr: most flows remembered'),
        timeout: duration().prefault('5m').describe('dsr: a flow is forgotten this long after its last packet'),
      })
      .prefault({})
      .describe('dsr: established flows keep their server through a drain'),
    distributed: z
      .strictObject({
        nodes: z.array(name()).min(1, 'distributed needs at least one node').describe('The names of the nodes sharing the virtual address (cluster.nodeName of each)'),
        buckets: int(16, 65536).prefault(1024).describe('Hash buckets shared out between the live nodes'),
        clusterMac: leaf<string, string>('MAC address', (v) =>
          typeof v === 'string' && MAC.test(v) ? ok(v.toLowerCase()) : fail(`expected a MAC address such as 01:00:5e:7f:00:c8, got ${show(v)}`),
        ).describe('The multicast MAC every node accepts frames for'),
        heartbeat: duration(60_000)
          .prefault('250ms')
          .describe("How often this node writes its heartbeat in cluster.store and renews its buckets in the kernel (one nft run each); nft must write within one heartbeat"),
        deadAfter: duration(600_000)
          .prefault('1250ms')
          .describe('A node whose heartbeat is older than this is gone and the others take its buckets (within deadAfter plus the nft write); a node holds its own buckets only until one heartbeat before its last heartbeat in the store can expire (at least 3 heartbeats)'),
      })
      .refine((d) => d.deadAfter >= 3 * d.heartbeat, { message: 'deadAfter must be at least 3 heartbeats (a node renews its buckets every heartbeat and keeps them deadAfter minus one heartbeat)' })
      .optional()
      .describe('distributed: the nodes and their shared MAC'),
    neighbourRefresh: duration(600_000)
      .prefault('1s')
      .describe("dsr: how often the servers' MAC addresses are read again from the neighbour table (a changed one is applied at once)"),
    addressHeldBy: z
      .enum(['host', 'keepalived'])
      .prefault('host')
      .describe(
        "`host`: the virtual address is on an interface of this host at start (checked); `keepalived`: an active-passive pair moves it (`portico keepalived`), so this node starts without it and its rules are in place before it takes the address over",
      ),
    keepOnExit: flag().prefault(false).describe("Leave Portico's nftables tables in place when Portico exits (forwarding continues without health checks)"),
  })
  .prefault({})
  .describe('Kernel data plane settings (SPEC §10)');

const kernelKeys = {
  name: name().describe('Unique name of the listener'),
  listen: listenAddress().describe('The virtual address and port (an IPv4 address of this host, or of the nodes in distributed mode)'),
  dataPlane: z.literal('kernel').describe('`kernel`: nftables forwards the packets, Portico is the control plane'),
  forwarding: z
    .enum(['nat', 'dsr', 'distributed'])
    .prefault('nat')
    .describe('`nat` (DNAT with connection tracking), `dsr` (direct server return: MAC rewrite), `distributed` (every node takes its hash buckets)'),
  pool: name().describe('Pool whose servers take the flows (balance: roundrobin, random or hash with key source-ip)'),
  kernel: kernelBlock,
  routes: refused(`${NEEDS_BYTES}: routes need them (use pool)`),
  inspect: refused(`${NEEDS_BYTES}: inspect: tls needs them (use dataPlane: userspace)`),
  sendProxy: refused(`${NEEDS_BYTES}: sendProxy (PROXY protocol) needs them; in nat mode with snat: none the servers see the client's address`),
  acceptProxy: refused(`${NEEDS_BYTES}: acceptProxy (PROXY protocol) needs them`),
};

/** `protocol: tcp` with `dataPlane: kernel`. */
export const kernelTcpListenerSchema = z
  .strictObject({ protocol: z.literal('tcp'), ...kernelKeys })
  .describe('TCP virtual server in the kernel (nftables)');

/** `protocol: udp`: the kernel only (the userspace listeners do TCP). */
export const kernelUdpListenerSchema = z
  .strictObject({
    protocol: z.literal('udp'),
    ...kernelKeys,
    dataPlane: z
      .literal('kernel', { error: 'udp needs dataPlane: kernel (the userspace listeners do TCP only)' })
      .describe('`kernel`: UDP is forwarded by the kernel only'),
  })
  .describe('UDP virtual server in the kernel (nftables)');

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
    const method = asString(asMap(p['hash'])?.['method']);
    if (balance === 'hash' && method !== undefined && method !== 'maglev') {
      out.push({ path: ['pools', i, 'hash', 'method'], message: `${why}: the kernel's buckets are a Maglev table (method: maglev), not ${method}` });
    }
    const tableSize = Number(asMap(p['hash'])?.['tableSize']);
    if (balance === 'hash' && tableSize > MAX_BUCKETS) {
      out.push({ path: ['pools', i, 'hash', 'tableSize'], message: `${why}: the kernel's bucket map takes at most ${MAX_BUCKETS} buckets (it is written whole in one transaction); leave tableSize unset for ${KERNEL_HASH_TABLE}` });
    }
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
