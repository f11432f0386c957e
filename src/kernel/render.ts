/**
 * The nftables rules of the kernel data plane, rendered by pure functions from a listener's spec
 * (its configuration) and its pool's snapshot (who takes new flows, with which weight). No I/O
 * here: src/kernel/nft.ts applies the text, src/kernel/snapshot.ts builds the snapshot.
 *
 * Layout: one table `ip portico` holds every kernel listener of the process. Each listener owns
 * objects and base chains named after it (`<L>_slots`, `<L>_pre` ...), so its part renders alone
 * and the table is the concatenation. At start and reload the whole table is written in one
 * transaction (`table` add + `delete table` + the new table: never a moment without rules); at run
 * time only the maps change (`flush map` + `add element`, one transaction).
 *
 * Forwarding modes plug in through `modes`: `nat` is built here; `dsr` and `distributed` register
 * themselves from src/kernel/l2-modes.ts (a mode missing from `modes` would be named by
 * `forwardingUnavailable`).
 */
import { SOURCE_SEED } from '../balancer/jhash.js';
import { buildMaglevTable } from '../balancer/maglev.js';
import { smoothWrrSequence } from '../balancer/round-robin.js';
import { renderNetdevDelete, renderNetdevTable, type LinkSpec, type LinkState } from './render-l2.js';

export type Forwarding = 'nat' | 'dsr' | 'distributed';
export type L4Protocol = 'tcp' | 'udp';
/** How the kernel picks a server for a new flow. */
export type KernelBalance = 'roundrobin' | 'random' | 'hash';

/** The table every kernel listener of this process lives in. */
export const TABLE = 'portico';
export const FAMILY = 'ip';

/** What a listener's configuration fixes (changes only at reload). */
export interface KernelListenerSpec {
  readonly listener: string;
  readonly protocol: L4Protocol;
  readonly vip: string;
  readonly port: number;
  readonly forwarding: Forwarding;
  readonly balance: KernelBalance;
  /** Slots of the balancing map (roundrobin and random): weights are shares of them. */
  readonly slots: number;
  /** Buckets of the hash table (balance: hash): a prime, the Maglev table's size. */
  readonly buckets: number;
  /** nat: source translation toward the servers. */
  readonly snat: 'none' | 'masquerade' | readonly string[];
  /** Source-address persistence: how long a client keeps its server after its last packet; 0 = off. */
  readonly persistenceMs: number;
  /** dsr, distributed: the link layer's settings and host facts (src/kernel/l2-modes.ts). */
  readonly link?: LinkSpec | undefined;
}

/** One server of the pool as the kernel sees it. */
export interface KernelServer {
  readonly name: string;
  /** IPv4 address. */
  readonly address: string;
  readonly port: number;
}

/** The pool at one moment: every server (each has its counters) and who takes new flows. */
export interface KernelSnapshot {
  readonly servers: readonly KernelServer[];
  /** Servers taking new flows (indexes into `servers`) with their effective weights (> 0). */
  readonly active: readonly { readonly index: number; readonly weight: number }[];
  /** dsr, distributed: the servers' MACs, whose flows are cut, this node's buckets. */
  readonly link?: LinkState | undefined;
}

/** What a forwarding mode renders: a listener's part of the table, and its run-time map update. */
export interface ForwardingMode {
  /** Declarations inside `table ip portico { ... }`: objects and base chains, names prefixed by the listener's. */
  table(spec: KernelListenerSpec, snap: KernelSnapshot): string;
  /**
   * Declarations inside `table netdev portico { ... }` (dsr, distributed: ingress chains on an
   * interface), if the mode needs any; written, replaced and deleted with the ip table, in the
   * same transaction.
   */
  netdev?(spec: KernelListenerSpec, snap: KernelSnapshot): string;
  /** Commands (a transaction) that bring the maps to `snap` with the rules untouched. */
  maps(spec: KernelListenerSpec, snap: KernelSnapshot): string;
  /** Link-layer modes: the run-time update of their netdev maps. */
  netdevMaps?(spec: KernelListenerSpec, snap: KernelSnapshot): string;
}

/** The forwarding modes built so far; the others are refused at load (forwardingUnavailable). */
export const modes: Partial<Record<Forwarding, ForwardingMode>> = {};

/** Why a forwarding mode cannot be used in this build, or undefined when it can. */
export function forwardingUnavailable(f: Forwarding): string | undefined {
  if (modes[f] !== undefined) return undefined;
  const built = Object.keys(modes).join(', ');
  return `forwarding: ${f} is not built yet in this version of Portico (built: ${built})`;
}

/**
 * The whole table: idempotent (creates, deletes and re-creates it in one transaction). With a
 * link-layer listener (dsr, distributed) the `netdev portico` table is written in the same
 * transaction; without one it is deleted (a reload from dsr to nat leaves nothing behind).
 */
export function renderTable(parts: readonly { spec: KernelListenerSpec; snap: KernelSnapshot }[], carry: CounterValues = new Map()): string {
  const { ip: body, netdev: link } = renderBodies(parts);
  const ip = `table ${FAMILY} ${TABLE} {}\ndelete table ${FAMILY} ${TABLE}\ntable ${FAMILY} ${TABLE} {\n${body}}\n`;
  return carryCounters(ip + (link !== undefined ? renderNetdevTable([link]) : renderNetdevDelete()), carry);
}

/**
 * What the two tables hold for these listeners: the declarations inside `table ip portico { }`,
 * and inside `table netdev portico { }` (undefined when no listener needs that table).
 */
export function renderBodies(parts: readonly { spec: KernelListenerSpec; snap: KernelSnapshot }[]): { ip: string; netdev: string | undefined } {
  const ip = parts.map(({ spec, snap }) => render(spec, snap)).join('\n');
  const link = parts.flatMap(({ spec, snap }) => {
    const m = modeOf(spec);
    return m.netdev === undefined ? [] : [m.netdev(spec, snap)];
  });
  return { ip, netdev: link.length > 0 ? link.join('') : undefined };
}

/** Named counters' values by name (both tables: the names are unique across them). */
export type CounterValues = ReadonlyMap<string, { readonly packets: number; readonly bytes: number }>;

/** A named counter's declaration as the renderers write it (`  counter NAME {}`, alone on its line). */
const COUNTER_DECL = /^( +counter )([A-Za-z][A-Za-z0-9_]*) \{\}$/gm;

/**
 * The whole table is deleted and written again (a reload that changes the rules): each named
 * counter that exists now is declared with its current packets and bytes, so that
 * portico_kernel_packets_total and _bytes_total never go back. (What the kernel counts between
 * the read and this transaction is not carried.)
 */
export function carryCounters(text: string, carry: CounterValues): string {
  if (carry.size === 0) return text;
  return text.replace(COUNTER_DECL, (line, head: string, name: string) => {
    const v = carry.get(name);
    if (v === undefined || !(v.packets >= 0 && v.bytes >= 0)) return line;
    return `${head}${name} { packets ${Math.trunc(v.packets)} bytes ${Math.trunc(v.bytes)} }`;
  });
}

/** One listener's part of the table. */
export function render(spec: KernelListenerSpec, snap: KernelSnapshot): string {
  return modeOf(spec).table(spec, snap);
}

/** The run-time update of one listener's maps (rules untouched). */
export function renderMaps(spec: KernelListenerSpec, snap: KernelSnapshot): string {
  const m = modeOf(spec);
  return m.maps(spec, snap) + (m.netdevMaps?.(spec, snap) ?? '');
}

/** Deleting the table (exit without keepOnExit); `table` first makes it a no-op when absent. */
export function renderDelete(): string {
  return `table ${FAMILY} ${TABLE} {}\ndelete table ${FAMILY} ${TABLE}\n${renderNetdevDelete()}`;
}

function modeOf(spec: KernelListenerSpec): ForwardingMode {
  const m = modes[spec.forwarding];
  if (m === undefined) throw new Error(forwardingUnavailable(spec.forwarding));
  return m;
}

// ---------------------------------------------------------------------------------------------
// Names

const IDENT = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * The prefix of a listener's objects: its name where nft takes it as an identifier, else its name
 * with other characters as `_` plus a short hash of the real name (so `a-b` and `a_b` differ).
 */
export function prefixOf(listener: string): string {
  if (IDENT.test(listener) && listener.length <= 32) return listener;
  const clean = listener.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 24);
  return `${/^[A-Za-z]/.test(clean) ? '' : 'l'}${clean}_${fnv(listener).toString(36)}`;
}

export type Direction = 'in' | 'out';
export const DIRECTIONS: readonly Direction[] = ['in', 'out'];

/** The named counter of one server of a listener, one per direction: `in` toward the server, `out` its replies. */
export function counterName(listener: string, server: string, dir: Direction): string {
  return `${prefixOf(listener)}_${dir}_${prefixOf(server)}`;
}

/** The sticky (persistence) map of a listener. */
export function stickyMap(listener: string): string {
  return `${prefixOf(listener)}_sticky`;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// ---------------------------------------------------------------------------------------------
// Slots

/**
 * The balancing map's elements: slot (or slot range) → server index. `random` gives each server a
 * contiguous range proportional to its weight; `roundrobin` interleaves single slots in smooth
 * weighted round-robin order (a `numgen inc` counter then walks a weighted rotation); `hash` fills
 * a Maglev table over the servers by name, so removing one moves only its buckets.
 */
export function slotElements(spec: KernelListenerSpec, snap: KernelSnapshot): { lo: number; hi: number; server: number }[] {
  const active = snap.active.filter((a) => a.weight > 0 && Number.isFinite(a.weight));
  if (active.length === 0) return [];
  switch (spec.balance) {
    case 'random':
      return ranges(active, spec.slots);
    case 'roundrobin': {
      const seq = smoothWrrSequence(Float64Array.from(active.map((a) => a.weight)), spec.slots);
      return merge(Array.from(seq, (i) => active[i]!.index));
    }
    case 'hash': {
      // Maglev over the servers in name order: the same table on every node for the same live set.
      const byName = [...active].sort((a, b) => cmp(snap.servers[a.index]!.name, snap.servers[b.index]!.name));
      const table = buildMaglevTable(
        byName.map((a) => snap.servers[a.index]!.name),
        byName.map((a) => a.weight),
        spec.buckets,
      );
      return merge(Array.from(table, (i) => byName[i]!.index));
    }
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Contiguous ranges of `slots` in proportion to the weights (largest remainder, every server ≥ 1 slot when slots allow). */
function ranges(active: readonly { index: number; weight: number }[], slots: number): { lo: number; hi: number; server: number }[] {
  const total = active.reduce((a, x) => a + x.weight, 0);
  const out: { lo: number; hi: number; server: number }[] = [];
  let acc = 0;
  let lo = 0;
  for (const a of active) {
    acc += a.weight;
    const hi = Math.round((acc * slots) / total) - 1;
    if (hi >= lo) {
      out.push({ lo, hi, server: a.index });
      lo = hi + 1;
    }
  }
  return out;
}

/** Runs of the same server in a slot sequence, as ranges. */
function merge(seq: readonly number[]): { lo: number; hi: number; server: number }[] {
  const out: { lo: number; hi: number; server: number }[] = [];
  for (let i = 0; i < seq.length; i++) {
    const last = out[out.length - 1];
    if (last !== undefined && last.server === seq[i] && last.hi === i - 1) last.hi = i;
    else out.push({ lo: i, hi: i, server: seq[i]! });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// NAT

/** The expression that numbers a new flow's slot. */
function selector(spec: KernelListenerSpec): string {
  switch (spec.balance) {
    case 'random':
      return `numgen random mod ${spec.slots}`;
    case 'roundrobin':
      return `numgen inc mod ${spec.slots}`;
    case 'hash':
      // jhash of the client address, the same seed on every node: the same client, the same bucket
      // (and the same as a userspace listener's Maglev lookup: src/balancer/jhash.ts).
      return `jhash ip saddr mod ${spec.buckets} seed ${HASH_SEED}`;
  }
}

/**
 * Fixed so that every node (and every restart) numbers a client's bucket alike, and the userspace
 * Maglev lookup of a client address (src/balancer/jhash.ts) gives the same bucket.
 */
export const HASH_SEED = `0x${SOURCE_SEED.toString(16)}`;

const mapSize = (spec: KernelListenerSpec): number => (spec.balance === 'hash' ? spec.buckets : spec.slots);

function slotLines(spec: KernelListenerSpec, snap: KernelSnapshot): string[] {
  return slotElements(spec, snap).map((e) => {
    const s = snap.servers[e.server]!;
    return `${e.lo === e.hi ? e.lo : `${e.lo}-${e.hi}`} : ${s.address} . ${s.port}`;
  });
}

function counterLines(spec: KernelListenerSpec, snap: KernelSnapshot, dir: Direction): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const s of snap.servers) {
    const key = `${s.address} . ${s.port}`;
    if (seen.has(key)) continue; // two names for one address and port share the first's counter
    seen.add(key);
    out.push(`${key} : "${counterName(spec.listener, s.name, dir)}"`);
  }
  return out;
}

const elements = (lines: readonly string[], indent: string): string =>
  lines.length === 0 ? '' : ` elements = {\n${indent}  ${lines.join(`,\n${indent}  `)}\n${indent}}`;

/** `ct original` match of a listener's flows (forward and postrouting see the translated packet). */
const originalMatch = (spec: KernelListenerSpec): string =>
  `ct original ip daddr ${spec.vip} meta l4proto ${spec.protocol} ct original proto-dst ${spec.port}`;

const nat: ForwardingMode = {
  table(spec, snap) {
    const L = prefixOf(spec.listener);
    const p = spec.protocol;
    const dest = `ip daddr ${spec.vip} ${p} dport ${spec.port}`;
    const lines: string[] = [];
    for (const s of snap.servers) for (const d of DIRECTIONS) lines.push(`  counter ${counterName(spec.listener, s.name, d)} {}`);
    lines.push(`  map ${L}_slots {\n    typeof numgen random mod ${mapSize(spec)} : ip daddr . ${p} dport; flags interval;${elements(slotLines(spec, snap), '    ')}\n  }`);
    for (const d of DIRECTIONS) {
      lines.push(`  map ${L}_ctr_${d} {\n    type ipv4_addr . inet_service : counter;${elements(counterLines(spec, snap, d), '    ')}\n  }`);
    }
    const pre = [`    type nat hook prerouting priority dstnat; policy accept;`];
    const fwd = [`    type filter hook forward priority filter; policy accept;`];
    if (spec.persistenceMs > 0) {
      lines.push(`  map ${stickyMap(spec.listener)} {\n    typeof ip saddr : ip daddr . ${p} dport; flags dynamic,timeout; timeout ${seconds(spec.persistenceMs)}; size 65536;\n  }`);
      pre.push(`    ${dest} dnat ip addr . port to ip saddr map @${stickyMap(spec.listener)} comment "persistence: a known client keeps its server"`);
      fwd.push(`    ${originalMatch(spec)} ct direction original update @${stickyMap(spec.listener)} { ip saddr : ip daddr . ${p} dport }`);
    }
    pre.push(`    ${dest} dnat ip addr . port to ${selector(spec)} map @${L}_slots`);
    fwd.push(
      `    ${originalMatch(spec)} ct direction original counter name ip daddr . ${p} dport map @${L}_ctr_in`,
      `    ${originalMatch(spec)} ct direction reply counter name ip saddr . ${p} sport map @${L}_ctr_out`,
    );
    lines.push(`  chain ${L}_pre {\n${pre.join('\n')}\n  }`, `  chain ${L}_fwd {\n${fwd.join('\n')}\n  }`);
    // A flow no slot took (no server available) reaches this host: refuse it at once.
    const reject = p === 'tcp' ? 'reject with tcp reset' : 'reject';
    lines.push(
      `  chain ${L}_in {\n    type filter hook input priority filter; policy accept;\n    ${dest} counter ${reject} comment "no server available"\n  }`,
    );
    const post = snatStatement(spec);
    if (post !== undefined) {
      lines.push(`  chain ${L}_post {\n    type nat hook postrouting priority srcnat; policy accept;\n    ${originalMatch(spec)} ct status dnat ${post}\n  }`);
    }
    return `${lines.join('\n')}\n`;
  },

  maps(spec, snap) {
    const L = prefixOf(spec.listener);
    const out: string[] = [];
    // Counters of servers added since the table was written (an add of an existing one is a no-op).
    for (const s of snap.servers) for (const d of DIRECTIONS) out.push(`add counter ${FAMILY} ${TABLE} ${counterName(spec.listener, s.name, d)}`);
    out.push(`flush map ${FAMILY} ${TABLE} ${L}_slots`);
    const slots = slotLines(spec, snap);
    if (slots.length > 0) out.push(`add element ${FAMILY} ${TABLE} ${L}_slots { ${slots.join(', ')} }`);
    for (const d of DIRECTIONS) {
      out.push(`flush map ${FAMILY} ${TABLE} ${L}_ctr_${d}`);
      const ctr = counterLines(spec, snap, d);
      if (ctr.length > 0) out.push(`add element ${FAMILY} ${TABLE} ${L}_ctr_${d} { ${ctr.join(', ')} }`);
    }
    return `${out.join('\n')}\n`;
  },
};

function snatStatement(spec: KernelListenerSpec): string | undefined {
  const s = spec.snat;
  if (s === 'none') return undefined;
  if (s === 'masquerade') return 'masquerade';
  if (s.length === 1) return `snat to ${s[0]}`;
  // Spread the flows over the addresses by a hash of the client's address and port.
  const els = s.map((a, i) => `${i} : ${a}`).join(', ');
  return `snat to jhash ip saddr . ${spec.protocol} sport mod ${s.length} seed ${HASH_SEED} map { ${els} }`;
}

const seconds = (ms: number): string => `${Math.max(1, Math.ceil(ms / 1000))}s`;

modes.nat = nat;

/** Commands deleting some clients' persistence entries (their server left or was drained). */
export function renderStickyDelete(listener: string, clients: readonly string[]): string {
  if (clients.length === 0) return '';
  return `delete element ${FAMILY} ${TABLE} ${stickyMap(listener)} { ${clients.join(', ')} }\n`;
}
