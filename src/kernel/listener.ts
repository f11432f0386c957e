/**
 * A kernel listener: Portico as the control plane of an nftables virtual server. It writes its
 * part of the table at start and reload (src/kernel/plane.ts), follows its pool (health, weights,
 * drain, maint, registration, slow start) by rewriting only its maps, cuts a server's flows when
 * it goes to maint, forgets a leaving server's persistence entries, and reads its counters.
 */
import type { KernelListenerConfig, PoolConfig } from '../config/types.js';
import type { ListenerService } from '../listener/kind.js';
import type { Logger } from '../observability/logger.js';
import type { Pool, PoolEvent } from '../pool/pool.js';
import type { StateStore } from '../store/state-store.js';
import { checkPrerequisites } from './checks.js';
import { linkRuntime, type LinkRuntime } from './l2-modes.js';
import { cutFlows, listFlows, type Flow } from './conntrack.js';
import { nftJson } from './nft.js';
import { plane, type PlanePart } from './plane.js';
import { counterName, FAMILY, renderMaps, renderStickyDelete, stickyMap, TABLE, type KernelListenerSpec, type KernelSnapshot } from './render.js';
import { snapshotOf, specOf } from './snapshot.js';

/** How often slow start's ramps and the counters are looked at (a change of the pool itself is applied at once). */
export const TICK_MS = 1000;

export interface KernelTraffic {
  readonly server: string;
  readonly packetsIn: number;
  readonly bytesIn: number;
  readonly packetsOut: number;
  readonly bytesOut: number;
}

export interface StickyEntry {
  readonly client: string;
  readonly server: string;
  /** Seconds left. */
  readonly expires: number;
}

/** What a kernel listener needs from the process besides its pool. */
export interface KernelListenerEnv {
  readonly store: StateStore;
  readonly sharedStore: boolean;
  /** cluster.node */
  readonly node: string;
}

export class KernelListener implements ListenerService, PlanePart {
  readonly name: string;
  readonly dataPlane = 'kernel' as const;
  private lc: KernelListenerConfig;
  private pool: Pool;
  private pc: PoolConfig | undefined;
  private readonly log: Logger;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private syncing = false;
  /** The spec the table was last written from (its rules). */
  private installedSpec = '';
  private again = false;
  private appliedMaps = '';
  private started = false;
  /** Who took new flows at the last write (server name → address . port), to see who left. */
  private activeAt = new Map<string, string>();
  /** Every server's address as last seen (a removed server's flows are cut by its address). */
  private addresses = new Map<string, { host: string; port: number }>();
  /** Servers whose flows are cut once the maps no longer send them new ones. */
  private cuts: { host: string; port: number; server: string; why: string }[] = [];
  /** Counter readings by server name: in = toward the server, out = its replies. */
  traffic: KernelTraffic[] = [];
  /** dsr, distributed: what the mode runs besides the rules (src/kernel/l2-modes.ts). */
  private link: LinkRuntime | undefined;
  private readonly env: KernelListenerEnv;

  constructor(lc: KernelListenerConfig, pool: Pool, pc: PoolConfig | undefined, log: Logger, env: KernelListenerEnv) {
    this.env = env;
    this.name = lc.name;
    this.lc = lc;
    this.pool = pool;
    this.pc = pc;
    this.log = log;
  }

  get protocol(): 'tcp' | 'udp' {
    return this.lc.protocol;
  }

  get address(): { host: string; port: number } {
    return this.lc.listen;
  }

  get poolName(): string {
    return this.pool.name;
  }

  spec(): KernelListenerSpec {
    const s = specOf(this.lc, this.pc);
    return this.link?.spec(s) ?? s;
  }

  snapshot(): KernelSnapshot {
    const s = snapshotOf(this.pool);
    return this.link?.snapshot(s) ?? s;
  }

  /** The link-layer mode's state for the admin view (empty for nat). */
  linkView(): Record<string, unknown> {
    return this.link === undefined ? {} : { link: this.link.view() };
  }

  private makeLink(): LinkRuntime | undefined {
    return linkRuntime({
      lc: this.lc,
      pool: () => this.pool,
      log: this.log,
      store: this.env.store,
      sharedStore: this.env.sharedStore,
      node: this.env.node,
      changed: () => this.schedule(),
      apply: (script) => plane.apply(this, script),
    });
  }

  keepOnExit(): boolean {
    return this.lc.kernel.keepOnExit;
  }

  async start(): Promise<void> {
    await checkPrerequisites(this.lc);
    for (const rt of this.pool) this.addresses.set(rt.server.name, { host: rt.server.host, port: rt.server.port });
    const link = this.makeLink();
    await link?.start();
    this.link = link;
    try {
      await plane.install(this);
    } catch (err) {
      this.link = undefined;
      await link?.stop(false);
      throw err;
    }
    await link?.installed();
    this.started = true;
    this.subscribe();
    this.schedule(); // what changed while the table was written
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    const skipped = snapshotOf(this.pool).skipped;
    if (skipped.length > 0) this.log.warn(`kernel listener ${this.name}: servers without an IPv4 address are left out: ${skipped.join(', ')}`);
    this.log.info(`kernel listener ${this.name}: ${this.lc.protocol} ${this.lc.listen.host}:${this.lc.listen.port} forwarded by nftables (${this.lc.forwarding}, table ${FAMILY} ${TABLE})`);
  }

  async stop(_graceMs: number): Promise<void> {
    this.started = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    // A distributed node leaves first (the others take its buckets), then its rules go.
    await this.link?.stop(this.lc.kernel.keepOnExit);
    await plane.uninstall(this);
  }

  /** Reload: new settings and pool; the whole table is written again (one transaction). */
  update(lc: KernelListenerConfig, pool: Pool, pc: PoolConfig | undefined): void {
    const was = this.lc;
    this.lc = lc;
    this.pc = pc;
    if (pool !== this.pool) {
      this.pool = pool;
      if (this.started) this.subscribe();
    }
    if (!this.started) return;
    const relink = was.forwarding !== lc.forwarding || JSON.stringify(was.kernel) !== JSON.stringify(lc.kernel) || was.listen.host !== lc.listen.host || was.listen.port !== lc.listen.port;
    if (relink && (this.link !== undefined || lc.forwarding !== 'nat')) {
      void this.relink();
      return;
    }
    // The same rules (a server's state, weight or registration changed through the API): the maps
    // only, so that persistence entries and counters are kept. Otherwise the whole table.
    const spec = JSON.stringify(this.spec());
    if (spec === this.installedSpec) return this.schedule();
    plane.install(this).then(
      () => this.schedule(),
      (err: unknown) => this.log.error(`kernel listener ${this.name}: reload could not write the rules (the previous ones stay)`, { error: String(err) }),
    );
  }

  /** A reload changed what the link-layer mode runs on: the old runtime ends, the new one starts, the table is written. */
  private async relink(): Promise<void> {
    const old = this.link;
    try {
      const next = this.makeLink();
      await next?.start();
      await old?.stop(false);
      this.link = next;
      await plane.install(this);
      await next?.installed();
      this.schedule();
    } catch (err) {
      this.log.error(`kernel listener ${this.name}: reload could not switch its forwarding (the previous rules stay)`, { error: String(err) });
    }
  }

  private subscribe(): void {
    this.unsubscribe?.();
    this.unsubscribe = this.pool.onEvent((ev) => this.onPoolEvent(ev));
  }

  private onPoolEvent(ev: PoolEvent): void {
    this.link?.poolChanged(this.pool);
    this.schedule();
    if (ev.kind === 'added' || ev.kind === 'admin' || ev.kind === 'op') {
      const rt = this.pool.byName(ev.server);
      if (rt !== undefined) this.addresses.set(ev.server, { host: rt.server.host, port: rt.server.port });
    }
    // maint: its flows are cut (SPEC §10). down: they are dead already, and the kernel would keep a
    // closed flow's translation for a client that reuses its address and port (TIME_WAIT): cut too.
    // Deregistered with ?now=true (`cut`): its flows are cut as well.
    const why =
      ev.kind === 'admin' && ev.to === 'maint' ? 'in maint' : ev.kind === 'op' && ev.to === 'down' ? 'down' : ev.kind === 'removed' && ev.detail === 'cut' ? 'removed at once' : undefined;
    if (why !== undefined) {
      const rt = this.pool.byName(ev.server);
      const at = rt !== undefined ? { host: rt.server.host, port: rt.server.port } : this.addresses.get(ev.server);
      // After the maps are written (sync), so that no new flow reaches it meanwhile.
      if (at !== undefined) this.cuts.push({ ...at, server: ev.server, why });
    }
  }

  /** Apply the pool's state soon (coalescing the events of one turn). */
  private schedule(): void {
    if (this.pending || !this.started) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      void this.sync();
    });
  }

  private tick(): void {
    if (!this.started) return;
    this.link?.poolChanged(this.pool);
    void this.sync();
    void this.readTraffic();
  }

  /** Write the maps when the pool's state changed what they hold; one at a time (a change meanwhile runs it again). */
  private async sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = true;
    try {
      do {
        this.again = false;
        await this.syncOnce();
      } while (this.again && this.started);
    } finally {
      this.syncing = false;
    }
  }

  private async syncOnce(): Promise<void> {
    const spec = this.spec();
    const snap = this.snapshot();
    const script = renderMaps(spec, snap);
    if (script !== this.appliedMaps) {
      try {
        await plane.apply(this, script);
        this.appliedMaps = script;
        const left = this.leavers(snap);
        if (left.length > 0 && spec.persistenceMs > 0 && plane.leading) await this.forgetSticky(left);
      } catch (err) {
        this.log.error(`kernel listener ${this.name}: could not update the maps`, { error: String(err) });
      }
    }
    this.runCuts();
  }

  /** PlanePart: the whole table was written from this spec and snapshot. */
  written(spec: KernelListenerSpec, snap: KernelSnapshot): void {
    this.installedSpec = JSON.stringify(spec);
    this.appliedMaps = renderMaps(spec, snap);
    this.leavers(snap);
  }

  private runCuts(): void {
    const cuts = this.cuts;
    this.cuts = [];
    for (const c of cuts) this.cut(c.host, c.port, c.server, c.why);
  }

  /** The servers (address . port) that took new flows before and no longer do. */
  private leavers(snap: KernelSnapshot): string[] {
    const now = new Map<string, string>();
    for (const a of snap.active) {
      const s = snap.servers[a.index]!;
      now.set(s.name, `${s.address} . ${s.port}`);
    }
    const left = [...this.activeAt].filter(([name]) => !now.has(name)).map(([, key]) => key);
    this.activeAt = now;
    return left;
  }

  private cut(host: string, port: number, server: string, why: string): void {
    if (!plane.leading) return; // the writing process cuts them (cluster.workers)
    cutFlows(this.lc.protocol, host, port).then(
      (n) => this.log.info(`kernel listener ${this.name}: server ${server} ${why}, ${n} flow(s) cut`),
      (err: unknown) => this.log.warn(`kernel listener ${this.name}: could not cut the flows of ${server}`, { error: String(err) }),
    );
  }

  /** The persistence entries, read back from the kernel. */
  async sticky(): Promise<StickyEntry[]> {
    if (this.spec().persistenceMs <= 0) return [];
    const out: StickyEntry[] = [];
    for (const o of await nftJson(['list', 'map', FAMILY, TABLE, stickyMap(this.name)])) {
      const m = o['map'] as { elem?: unknown[] } | undefined;
      for (const e of m?.elem ?? []) {
        const parsed = parseStickyElem(e);
        if (parsed !== undefined) out.push(parsed);
      }
    }
    return out;
  }

  /** nftables cannot delete by value: the clients pinned to servers that left are deleted by key. */
  private async forgetSticky(left: readonly string[]): Promise<void> {
    const gone = new Set(left.map((k) => k.replace(' . ', ':')));
    const clients = (await this.sticky()).filter((e) => gone.has(e.server)).map((e) => e.client);
    const script = renderStickyDelete(this.name, clients);
    if (script !== '') await plane.apply(this, script).catch(() => undefined); // an entry that expired meanwhile fails the batch; the next change retries
  }

  /** `GET /api/v1/listeners/{name}/flows`. */
  async flows(): Promise<{ listener: string; flows: Flow[]; sticky: StickyEntry[] }> {
    const [flows, sticky] = await Promise.all([listFlows(this.lc.protocol, this.lc.listen.host, this.lc.listen.port), this.sticky()]);
    return { listener: this.name, flows, sticky };
  }

  /** Read the named counters into `traffic`. */
  async readTraffic(): Promise<void> {
    try {
      const counters = await plane.counters(TICK_MS / 2);
      const snap = this.snapshot();
      this.traffic = snap.servers.map((s) => {
        const i = counters.get(counterName(this.name, s.name, 'in'));
        const o = counters.get(counterName(this.name, s.name, 'out'));
        return { server: s.name, packetsIn: i?.packets ?? 0, bytesIn: i?.bytes ?? 0, packetsOut: o?.packets ?? 0, bytesOut: o?.bytes ?? 0 };
      });
    } catch (err) {
      this.log.debug(`kernel listener ${this.name}: counters unreadable`, { error: String(err) });
    }
  }
}

/** One element of the sticky map as `nft -j` writes it: `[{elem:{val,expires}}, {concat:[addr, port]}]`. */
export function parseStickyElem(e: unknown): StickyEntry | undefined {
  if (!Array.isArray(e) || e.length !== 2) return undefined;
  const [k, v] = e as [unknown, unknown];
  const key = k as { elem?: { val?: unknown; expires?: number } } | string;
  const client = typeof key === 'string' ? key : key.elem?.val;
  const expires = typeof key === 'string' ? 0 : key.elem?.expires ?? 0;
  const concat = (v as { concat?: unknown[] } | undefined)?.concat;
  if (typeof client !== 'string' || !Array.isArray(concat) || concat.length !== 2) return undefined;
  return { client, server: `${String(concat[0])}:${String(concat[1])}`, expires };
}
