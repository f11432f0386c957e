/**
 * The link-layer half of the kernel data plane: the `netdev portico` table, whose chains run at
 * the ingress of an interface before the IP stack (SPEC §10). Pure: the text is rendered from a
 * listener's spec and its servers' state; src/kernel/plane.ts applies it.
 *
 * - `dsr`: a frame for the virtual address gets this interface's MAC as source (without it the
 *   switch learns the router's MAC on this port), its server's MAC as destination, and is sent
 *   back out (`fwd`). A flow map (client address and port → MAC, with a timeout) is consulted
 *   first, so an established flow keeps its server through a drain or a weight change; the slot
 *   map only places flows it has not seen. The servers answer the client directly: `out` counts
 *   replies that do cross this node (a server whose default route is this node), normally 0.
 * - `distributed`: every node receives every frame sent to the cluster MAC; it keeps those whose
 *   flow hash falls in its buckets (`@mine`, elements with a timeout that only the heartbeats
 *   renew) and drops the others. `meta pkttype set host` is needed: TCP discards a frame that
 *   arrived as multicast.
 *
 * Sets keyed by a hash are declared `typeof numgen random mod N`: the same 32-bit integer type as
 * `jhash ... mod N`, which nft 1.0.6 cannot list back (it crashes on `typeof jhash`).
 */

export const NETDEV_FAMILY = 'netdev';

/** What a link-layer listener's spec carries (fixed until a reload). */
export interface LinkSpec {
  /** `kernel.interface`. */
  readonly device: string;
  /** Its MAC, read at start. */
  readonly deviceMac: string;
  readonly flowSize: number;
  readonly flowTimeoutMs: number;
  readonly distributed?: { readonly clusterMac: string; readonly buckets: number; readonly ownershipMs: number } | undefined;
}

/** What a link-layer listener's snapshot carries (changes at run time). */
export interface LinkState {
  /** MAC of each server, by server name (dsr); a server without one takes no flow. */
  readonly macs: ReadonlyMap<string, string>;
  /** Servers whose established flows are cut (maint). */
  readonly cut: ReadonlySet<string>;
  /** This node's buckets (distributed). */
  readonly mine: readonly number[];
}
export const NETDEV_TABLE = 'portico';

/** The hash seed of the link-layer modes: the same on every node, so two nodes place a flow alike. */
export const L2_SEED = '0x706f7274';

export type L2Protocol = 'tcp' | 'udp';

/** One slot range of the balancing map and the server (index into `servers`) it sends to. */
export interface SlotRange {
  readonly lo: number;
  readonly hi: number;
  readonly server: number;
}

export interface DsrSpec {
  /** The prefix of this listener's objects (an nft identifier). */
  readonly prefix: string;
  readonly protocol: L2Protocol;
  readonly vip: string;
  readonly port: number;
  /** The interface on the servers' segment (frames come in and go out there). */
  readonly device: string;
  /** That interface's MAC. */
  readonly deviceMac: string;
  /** `hash`: the client address alone picks the slot (Maglev table); otherwise the whole flow. */
  readonly byClient: boolean;
  /** Size of the slot map (slots, or Maglev buckets with byClient). */
  readonly slots: number;
  readonly flowSize: number;
  readonly flowTimeoutMs: number;
}

export interface DsrServer {
  readonly name: string;
  /** Its counters' names. */
  readonly counterIn: string;
  readonly counterOut: string;
  /** Undefined while not learnt: such a server takes no flow. */
  readonly mac: string | undefined;
  /** Whether its established flows continue (false: maint, or removed: they are cut). */
  readonly keepFlows: boolean;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function checkMac(mac: string, what: string): string {
  if (!MAC.test(mac)) throw new Error(`${what}: '${mac}' is not a MAC address`);
  return mac;
}

/** `5m` style nft duration (whole seconds above a minute, milliseconds below). */
export function nftDuration(ms: number): string {
  if (!(ms > 0)) throw new RangeError(`a timeout must be positive, got ${ms}`);
  if (ms >= 60_000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${Math.ceil(ms)}ms`;
}

const dsrSelector = (spec: DsrSpec): string =>
  spec.byClient ? `jhash ip saddr mod ${spec.slots} seed ${L2_SEED}` : `jhash ip saddr . ${spec.protocol} sport mod ${spec.slots} seed ${L2_SEED}`;

/** The slot map's elements: ranges of servers with a MAC. */
function dsrSlotLines(slots: readonly SlotRange[], servers: readonly DsrServer[]): string[] {
  const out: string[] = [];
  for (const r of slots) {
    const mac = servers[r.server]?.mac;
    if (mac === undefined) continue;
    out.push(`${r.lo === r.hi ? r.lo : `${r.lo}-${r.hi}`} : ${checkMac(mac, servers[r.server]!.name)}`);
  }
  return out;
}

/** The counter maps' elements: one per MAC (the first server of a MAC names it); `in` only for servers whose flows continue. */
function dsrCounterLines(servers: readonly DsrServer[], dir: 'in' | 'out'): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const s of servers) {
    if (s.mac === undefined || seen.has(s.mac) || (dir === 'in' && !s.keepFlows)) continue;
    seen.add(s.mac);
    out.push(`${checkMac(s.mac, s.name)} : "${dir === 'in' ? s.counterIn : s.counterOut}"`);
  }
  return out;
}

const elements = (lines: readonly string[]): string => (lines.length === 0 ? '' : ` elements = { ${lines.join(', ')} }`);

/** A dsr listener's objects and chains inside `table netdev portico { ... }`. */
export function renderDsr(spec: DsrSpec, servers: readonly DsrServer[], slots: readonly SlotRange[]): string {
  const L = spec.prefix;
  const p = spec.protocol;
  const dev = JSON.stringify(spec.device);
  const flowKey = `ip saddr . ${p} sport`;
  const lines: string[] = [];
  for (const s of servers) lines.push(`  counter ${s.counterIn} {}`, `  counter ${s.counterOut} {}`);
  lines.push(`  counter ${L}_none {}`);
  lines.push(`  map ${L}_slots { typeof numgen random mod ${spec.slots} : ether daddr; flags interval;${elements(dsrSlotLines(slots, servers))} }`);
  lines.push(`  map ${L}_flows { typeof ${flowKey} : ether daddr; flags dynamic,timeout; timeout ${nftDuration(spec.flowTimeoutMs)}; size ${spec.flowSize}; }`);
  lines.push(`  map ${L}_ctr_in { type ether_addr : counter;${elements(dsrCounterLines(servers, 'in'))} }`);
  lines.push(`  map ${L}_ctr_out { type ether_addr : counter;${elements(dsrCounterLines(servers, 'out'))} }`);
  const learn = `update @${L}_flows { ${flowKey} : ether daddr }`;
  const count = `counter name ether daddr map @${L}_ctr_in`;
  const mac = checkMac(spec.deviceMac, spec.device);
  lines.push(
    `  chain ${L}_dsr {`,
    `    type filter hook ingress device ${dev} priority filter; policy accept;`,
    // Only frames sent to this node: a switch floods a frame whose destination it has not learnt
    // to every port, and a standby balancer (or any host in promiscuous mode) would otherwise
    // forward a second copy of another balancer's frames to the servers.
    `    ether daddr ${mac} ip daddr ${spec.vip} ${p} dport ${spec.port} ether saddr set ${mac} goto ${L}_pick`,
    `    ether daddr ${mac} ip saddr ${spec.vip} ${p} sport ${spec.port} counter name ether saddr map @${L}_ctr_out`,
    `  }`,
    `  chain ${L}_pick {`,
    // A known flow keeps its server while that server's flows continue (its MAC still counted).
    // (The counter first: a cut server's MAC is not in the counter map, the rule stops there and
    // the flow is placed again by the next rule, which also overwrites its entry.) A TCP SYN
    // opens a new connection: it is placed by the slots even when a closed connection from the
    // same client port is still remembered, so a drained server gets no new connection that way.
    `    ${p === 'tcp' ? 'tcp flags & (syn | ack) != syn ' : ''}ether daddr set ${flowKey} map @${L}_flows ${count} ${learn} fwd to ${dev}`,
    `    ether daddr set ${dsrSelector(spec)} map @${L}_slots ${count} ${learn} fwd to ${dev}`,
    `    counter name "${L}_none" drop comment "no server available"`,
    `  }`,
  );
  return `${lines.join('\n')}\n`;
}

/** The run-time change of a dsr listener (maps only, one transaction): slots and counter maps. */
export function renderDsrMaps(spec: DsrSpec, servers: readonly DsrServer[], slots: readonly SlotRange[]): string {
  const L = spec.prefix;
  const t = `${NETDEV_FAMILY} ${NETDEV_TABLE}`;
  const out: string[] = [];
  for (const s of servers) out.push(`add counter ${t} ${s.counterIn}`, `add counter ${t} ${s.counterOut}`);
  for (const [map, lines] of [
    [`${L}_slots`, dsrSlotLines(slots, servers)],
    [`${L}_ctr_in`, dsrCounterLines(servers, 'in')],
    [`${L}_ctr_out`, dsrCounterLines(servers, 'out')],
  ] as const) {
    out.push(`flush map ${t} ${map}`);
    if (lines.length > 0) out.push(`add element ${t} ${map} { ${lines.join(', ')} }`);
  }
  return `${out.join('\n')}\n`;
}

export interface DistributedSpec {
  readonly prefix: string;
  readonly protocol: L2Protocol;
  readonly vip: string;
  readonly port: number;
  readonly device: string;
  readonly clusterMac: string;
  readonly buckets: number;
  /** How long this node keeps its buckets without a renewal (a heartbeat). */
  readonly ownershipMs: number;
}

/** A distributed listener's objects and chains inside `table netdev portico { ... }`, owning `mine`. */
export function renderDistributed(spec: DistributedSpec, mine: readonly number[]): string {
  const L = spec.prefix;
  const p = spec.protocol;
  checkMac(spec.clusterMac, 'kernel.distributed.clusterMac');
  return [
    `  set ${L}_mine { typeof numgen random mod ${spec.buckets}; flags timeout; timeout ${nftDuration(spec.ownershipMs)};${elements(bucketLines(spec, mine))} }`,
    `  counter ${L}_kept {}`,
    `  counter ${L}_dropped {}`,
    `  chain ${L}_cluster {`,
    `    type filter hook ingress device ${JSON.stringify(spec.device)} priority filter; policy accept;`,
    `    ether daddr ${spec.clusterMac} ip daddr ${spec.vip} ${p} dport ${spec.port} jump ${L}_buckets`,
    `  }`,
    `  chain ${L}_buckets {`,
    `    jhash ip saddr . ${p} sport mod ${spec.buckets} seed ${L2_SEED} @${L}_mine counter name "${L}_kept" meta pkttype set host accept`,
    `    counter name "${L}_dropped" drop comment "another node's bucket"`,
    `  }`,
    '',
  ].join('\n');
}

function bucketLines(spec: DistributedSpec, mine: readonly number[]): string[] {
  for (const b of mine) if (!Number.isInteger(b) || b < 0 || b >= spec.buckets) throw new RangeError(`bucket ${b} is outside 0..${spec.buckets - 1}`);
  return mine.map(String);
}

/**
 * Renewal of this node's buckets (each heartbeat): the set flushed and filled again in one
 * transaction, which also restarts every element's timeout (`add` of an existing element does not).
 * `timeoutMs`: each element's own timeout (the lease this node's last heartbeat in the store
 * allows, src/kernel/ownership.ts); without it the set's timeout (`ownershipMs`).
 */
export function renderOwnership(spec: DistributedSpec, mine: readonly number[], timeoutMs?: number): string {
  const t = `${NETDEV_FAMILY} ${NETDEV_TABLE}`;
  const each = timeoutMs === undefined ? '' : ` timeout ${nftDuration(timeoutMs)}`;
  const lines = bucketLines(spec, mine).map((b) => b + each);
  return `flush set ${t} ${spec.prefix}_mine\n${lines.length > 0 ? `add element ${t} ${spec.prefix}_mine { ${lines.join(', ')} }\n` : ''}`;
}

/** The whole `netdev portico` table from the listeners' parts: idempotent (created, deleted, created). */
export function renderNetdevTable(parts: readonly string[]): string {
  const t = `${NETDEV_FAMILY} ${NETDEV_TABLE}`;
  return `table ${t} {}\ndelete table ${t}\ntable ${t} {\n${parts.join('')}}\n`;
}

/** Deleting the netdev table (no-op when absent). */
export function renderNetdevDelete(): string {
  const t = `${NETDEV_FAMILY} ${NETDEV_TABLE}`;
  return `table ${t} {}\ndelete table ${t}\n`;
}
