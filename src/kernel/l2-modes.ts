/**
 * The link-layer forwarding modes of the kernel data plane (SPEC §10), plugged into
 * src/kernel/render.ts's `modes`, and what each needs at run time besides the pool:
 *
 * - `dsr`: the servers' MACs (src/kernel/neighbours.ts: learnt from the neighbour table, provoked
 *   when missing, followed when they change) and this interface's own MAC. The IP table holds
 *   nothing for a dsr listener; its netdev chain rewrites MACs and forwards (src/kernel/render-l2.ts).
 * - `distributed`: this node's buckets (src/kernel/ownership.ts: membership through cluster.store,
 *   rendezvous ownership, renewed in the kernel with a timeout), the cluster MAC accepted on the
 *   interface (`ip maddr add`), and the NAT mode's IP table toward the pool (usually this node's
 *   own server).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { KernelListenerConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { Pool } from '../pool/pool.js';
import type { StateStore } from '../store/state-store.js';
import { NeighbourWatch } from './neighbours.js';
import { Ownership, ownershipTimeout } from './ownership.js';
import { renderDistributed, renderDsr, renderDsrMaps, type DistributedSpec, type DsrServer, type DsrSpec, type LinkState } from './render-l2.js';
import { counterName, modes, prefixOf, slotElements, type ForwardingMode, type KernelListenerSpec, type KernelSnapshot } from './render.js';

// ---------------------------------------------------------------------------------------------
// Rendering

function linkOf(spec: KernelListenerSpec) {
  if (spec.link === undefined) throw new Error(`kernel listener ${spec.listener}: ${spec.forwarding} needs its link-layer settings (kernel.interface)`);
  return spec.link;
}

const EMPTY: LinkState = { macs: new Map(), cut: new Set(), mine: [] };

function dsrSpecOf(spec: KernelListenerSpec): DsrSpec {
  const link = linkOf(spec);
  const byClient = spec.balance === 'hash';
  return {
    prefix: prefixOf(spec.listener),
    protocol: spec.protocol,
    vip: spec.vip,
    port: spec.port,
    device: link.device,
    deviceMac: link.deviceMac,
    byClient,
    slots: byClient ? spec.buckets : spec.slots,
    flowSize: link.flowSize,
    flowTimeoutMs: link.flowTimeoutMs,
  };
}

function dsrServers(spec: KernelListenerSpec, snap: KernelSnapshot): DsrServer[] {
  const state = snap.link ?? EMPTY;
  return snap.servers.map((s) => ({
    name: s.name,
    counterIn: counterName(spec.listener, s.name, 'in'),
    counterOut: counterName(spec.listener, s.name, 'out'),
    mac: state.macs.get(s.name),
    keepFlows: !state.cut.has(s.name),
  }));
}

/** Only servers with a known MAC take new flows (the others would leave holes in the slot map). */
function withMacs(snap: KernelSnapshot): KernelSnapshot {
  const macs = snap.link?.macs ?? EMPTY.macs;
  return { ...snap, active: snap.active.filter((a) => macs.has(snap.servers[a.index]!.name)) };
}

export const dsrMode: ForwardingMode = {
  table: () => '',
  maps: () => '',
  netdev: (spec, snap) => renderDsr(dsrSpecOf(spec), dsrServers(spec, snap), slotElements(spec, withMacs(snap))),
  netdevMaps: (spec, snap) => renderDsrMaps(dsrSpecOf(spec), dsrServers(spec, snap), slotElements(spec, withMacs(snap))),
};

export function distributedSpecOf(spec: KernelListenerSpec): DistributedSpec {
  const link = linkOf(spec);
  const d = link.distributed;
  if (d === undefined) throw new Error(`kernel listener ${spec.listener}: forwarding: distributed needs kernel.distributed`);
  return { prefix: prefixOf(spec.listener), protocol: spec.protocol, vip: spec.vip, port: spec.port, device: link.device, clusterMac: d.clusterMac, buckets: d.buckets, ownershipMs: d.ownershipMs };
}

export const distributedMode: ForwardingMode = {
  // The flows this node keeps go to its pool by NAT (a local server is reached the same way).
  table: (spec, snap) => modes.nat!.table(spec, snap),
  maps: (spec, snap) => modes.nat!.maps(spec, snap),
  netdev: (spec, snap) => renderDistributed(distributedSpecOf(spec), (snap.link ?? EMPTY).mine),
  // Ownership is renewed by the heartbeats (LinkRuntime below), not by pool changes.
  netdevMaps: () => '',
};

modes.dsr = dsrMode;
modes.distributed = distributedMode;

// ---------------------------------------------------------------------------------------------
// Run time

/** What a link-layer listener runs besides its rules. */
export interface LinkRuntime {
  /** Before the table is written: host facts, MACs. Throws naming what is missing. */
  start(): Promise<void>;
  /** After the table is written. */
  installed(): Promise<void>;
  stop(keepOnExit: boolean): Promise<void>;
  spec(s: KernelListenerSpec): KernelListenerSpec;
  snapshot(s: KernelSnapshot): KernelSnapshot;
  /** The pool changed (servers, health, admin state). */
  poolChanged(pool: Pool): void;
  /** For the admin view. */
  view(): Record<string, unknown>;
}

export interface LinkRuntimeContext {
  readonly lc: KernelListenerConfig;
  readonly pool: () => Pool;
  readonly log: Logger;
  readonly store: StateStore;
  readonly sharedStore: boolean;
  /** cluster.node */
  readonly node: string;
  /** Something the maps hold changed: write them. */
  readonly changed: () => void;
  /** Apply a transaction through the plane (serialised with the table writes). */
  readonly apply: (script: string) => Promise<void>;
}

export class LinkError extends Error {}

/** The runtime of a listener's forwarding mode, or undefined for nat. */
export function linkRuntime(ctx: LinkRuntimeContext): LinkRuntime | undefined {
  if (ctx.lc.forwarding === 'dsr') return new DsrRuntime(ctx);
  if (ctx.lc.forwarding === 'distributed') return new DistributedRuntime(ctx);
  return undefined;
}

function deviceOf(lc: KernelListenerConfig): string {
  const d = lc.kernel.interface;
  if (d === undefined) throw new LinkError(`kernel listener ${lc.name}: forwarding: ${lc.forwarding} needs kernel.interface (the interface on the servers' or nodes' segment)`);
  return d;
}

function readMac(device: string, listener: string): string {
  try {
    return readFileSync(`/sys/class/net/${device}/address`, 'utf8').trim().toLowerCase();
  } catch {
    throw new LinkError(`kernel listener ${listener}: interface ${device} not found: fix kernel.interface (ip link shows the interfaces)`);
  }
}

function cutOf(pool: Pool): Set<string> {
  const out = new Set<string>();
  for (const rt of pool) if (rt.admin === 'maint') out.add(rt.server.name);
  return out;
}

class DsrRuntime implements LinkRuntime {
  private readonly ctx: LinkRuntimeContext;
  private readonly device: string;
  private deviceMac = '';
  private readonly watch: NeighbourWatch;

  constructor(ctx: LinkRuntimeContext) {
    this.ctx = ctx;
    this.device = deviceOf(ctx.lc);
    this.watch = new NeighbourWatch({
      device: this.device,
      intervalMs: ctx.lc.kernel.neighbourRefresh,
      onChange: (macs) => {
        ctx.log.info(`kernel listener ${ctx.lc.name}: server MACs ${[...macs].map(([a, m]) => `${a}=${m}`).join(' ') || '(none)'}`);
        ctx.changed();
      },
      onError: (err) => ctx.log.warn(`kernel listener ${ctx.lc.name}: neighbour table unreadable`, { error: err.message }),
    });
  }

  private addresses(pool: Pool): string[] {
    return [...pool].map((rt) => rt.server.host);
  }

  async start(): Promise<void> {
    this.deviceMac = readMac(this.device, this.ctx.lc.name);
    const pool = this.ctx.pool();
    for (const rt of pool) {
      if (rt.server.port !== this.ctx.lc.listen.port) {
        throw new LinkError(
          `kernel listener ${this.ctx.lc.name}: server ${rt.server.name} listens on port ${rt.server.port}, but dsr cannot change the port: its servers take the virtual address's port ${this.ctx.lc.listen.port}`,
        );
      }
    }
    this.watch.setAddresses(this.addresses(pool));
    try {
      await this.watch.resolve(3000);
    } catch (err) {
      // A server that is down now takes flows once its MAC is learnt.
      this.ctx.log.warn(`kernel listener ${this.ctx.lc.name}: ${(err as Error).message}; those servers take no flow until they answer`);
    }
  }

  async installed(): Promise<void> {
    this.watch.start();
  }

  async stop(): Promise<void> {
    this.watch.stop();
  }

  spec(s: KernelListenerSpec): KernelListenerSpec {
    return { ...s, link: { device: this.device, deviceMac: this.deviceMac, flowSize: this.ctx.lc.kernel.flowTable.size, flowTimeoutMs: this.ctx.lc.kernel.flowTable.timeout } };
  }

  snapshot(s: KernelSnapshot): KernelSnapshot {
    const byAddr = this.watch.current();
    const macs = new Map<string, string>();
    for (const srv of s.servers) {
      const m = byAddr.get(srv.address);
      if (m !== undefined) macs.set(srv.name, m);
    }
    return { ...s, link: { macs, cut: cutOf(this.ctx.pool()), mine: [] } };
  }

  poolChanged(pool: Pool): void {
    try {
      this.watch.setAddresses(this.addresses(pool));
    } catch (err) {
      this.ctx.log.warn(`kernel listener ${this.ctx.lc.name}: ${(err as Error).message}`);
    }
  }

  view(): Record<string, unknown> {
    return { device: this.device, mac: this.deviceMac, servers: Object.fromEntries(this.watch.current()) };
  }
}

function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new LinkError(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

class DistributedRuntime implements LinkRuntime {
  private readonly ctx: LinkRuntimeContext;
  private readonly device: string;
  private readonly ownership: Ownership;
  private readonly clusterMac: string;
  private addedMaddr = false;
  private willing: boolean | undefined;

  constructor(ctx: LinkRuntimeContext) {
    this.ctx = ctx;
    this.device = deviceOf(ctx.lc);
    const d = ctx.lc.kernel.distributed;
    if (d === undefined) throw new LinkError(`kernel listener ${ctx.lc.name}: forwarding: distributed needs kernel.distributed (nodes, clusterMac)`);
    this.clusterMac = d.clusterMac;
    const spec = distributedSpecOf(this.spec({ listener: ctx.lc.name, protocol: ctx.lc.protocol, vip: ctx.lc.listen.host, port: ctx.lc.listen.port } as KernelListenerSpec));
    this.ownership = new Ownership({
      spec,
      store: ctx.store,
      listener: ctx.lc.name,
      node: ctx.node,
      nodes: d.nodes,
      heartbeatMs: d.heartbeat,
      deadAfterMs: d.deadAfter,
      apply: ctx.apply,
      onChange: (live, mine, noticedAt, applyMs) =>
        ctx.log.info(`kernel listener ${ctx.lc.name}: live nodes ${live.join(', ') || '(none)'}; this node (${ctx.node}) holds ${mine.length} of ${spec.buckets} buckets`, {
          noticed: new Date(noticedAt).toISOString(),
          nftMs: applyMs,
        }),
      onFenced: (fenced) =>
        fenced
          ? ctx.log.warn(`kernel listener ${ctx.lc.name}: this node's heartbeat may have expired in cluster.store (its writes did not land): its buckets are given up in its kernel until one does`)
          : ctx.log.info(`kernel listener ${ctx.lc.name}: this node's heartbeat is in cluster.store again: it holds its buckets again`),
      onError: (err) => ctx.log.warn(`kernel listener ${ctx.lc.name}: bucket ownership`, { error: String(err) }),
    });
  }

  async start(): Promise<void> {
    const { lc, node, sharedStore } = this.ctx;
    const d = lc.kernel.distributed!;
    if (!d.nodes.includes(node)) throw new LinkError(`kernel listener ${lc.name}: this node (cluster.node: ${node}) is not one of kernel.distributed.nodes (${d.nodes.join(', ')})`);
    if (!sharedStore && d.nodes.length > 1) {
      throw new LinkError(`kernel listener ${lc.name}: forwarding: distributed needs the nodes' shared store to agree on who is alive: set cluster.store: redis://...`);
    }
    readMac(this.device, lc.name);
    // Accept frames for the cluster MAC (tolerating it already there).
    const have = await ip(['maddr', 'show', 'dev', this.device]);
    if (!have.toLowerCase().includes(this.clusterMac)) {
      await ip(['maddr', 'add', this.clusterMac, 'dev', this.device]);
      this.addedMaddr = true;
    }
  }

  async installed(): Promise<void> {
    this.willing = this.ctx.pool().current.set.available.length > 0;
    await this.ownership.setWilling(this.willing);
    await this.ownership.start();
  }

  async stop(keepOnExit: boolean): Promise<void> {
    await this.ownership.stop();
    if (this.addedMaddr && !keepOnExit) {
      await ip(['maddr', 'del', this.clusterMac, 'dev', this.device]).catch((err: unknown) => this.ctx.log.warn(String(err)));
      this.addedMaddr = false;
    }
  }

  spec(s: KernelListenerSpec): KernelListenerSpec {
    const { lc } = this.ctx;
    const d = lc.kernel.distributed!;
    return {
      ...s,
      link: {
        device: this.device,
        deviceMac: '00:00:00:00:00:00',
        flowSize: lc.kernel.flowTable.size,
        flowTimeoutMs: lc.kernel.flowTable.timeout,
        distributed: { clusterMac: d.clusterMac, buckets: d.buckets, ownershipMs: ownershipTimeout(d.heartbeat, d.deadAfter) },
      },
    };
  }

  snapshot(s: KernelSnapshot): KernelSnapshot {
    return { ...s, link: { macs: new Map(), cut: new Set(), mine: this.ownership.state().mine } };
  }

  /** A node whose pool has no server to take flows gives its buckets up; it takes them back when one returns. */
  poolChanged(pool: Pool): void {
    const willing = pool.current.set.available.length > 0;
    if (willing === this.willing) return;
    this.willing = willing;
    this.ctx.log.info(`kernel listener ${this.ctx.lc.name}: ${willing ? 'a server is available again: taking buckets' : 'no server available: giving the buckets up'}`);
    void this.ownership.setWilling(willing);
  }

  view(): Record<string, unknown> {
    const st = this.ownership.state();
    return { device: this.device, clusterMac: this.clusterMac, node: this.ctx.node, live: st.live, buckets: st.mine.length };
  }
}
