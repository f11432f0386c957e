import type { Config, ListenerConfig, PoolConfig, ServerConfig } from '../config/types.js';
import { deepEqual as same } from '../core/deep-equal.js';
import type { AdminState, OpState, Server, ServerId } from '../core/server.js';
import type { Logger } from '../observability/logger.js';
import type { Pool } from '../pool/pool.js';
import type { PoolHandle } from '../proxy/http/listener-runtime.js';
import type { ListenerService, Service } from './service.js';
import { kindKey } from '../listener/kind.js';
import { kindOf } from './listener-kinds.js';
import { getBalancer } from '../balancer/registry.js';
import { balancerOptionsOf } from '../config/balancer-options.js';

/** What happens to one pool on a reload. */
export interface PoolChange {
  readonly name: string;
  /** `balance`, its options or `panicThreshold` changed: the balancer is rebuilt (carried state of the old one dropped). */
  readonly balancer: boolean;
  /**
   * Something a pool's services read changed (health, passive checks, slow start,
   * persistence ...): the pool's services (health monitors) are stopped and built anew.
   */
  readonly services: boolean;
  /** keepAlive changed: pooled idle connections to its servers are closed (new ones follow the new limits). */
  readonly keepAlive: boolean;
  /** slowStart or queue.max changed: the pool takes them in place. */
  readonly lifecycle: boolean;
  readonly servers: { readonly added: readonly string[]; readonly removed: readonly string[]; readonly changed: readonly string[] };
}

/**
 * The difference between the configuration that runs and the one to apply. Listeners:
 * `updated` keep their socket and connections and take the new settings; `rebound` changed
 * address or protocol (a new socket is opened, then the old one drains); `unchanged` are
 * identical. Pools are updated in place: servers kept by name keep their connections,
 * health and counters.
 */
export interface ReloadPlan {
  readonly listeners: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly updated: readonly string[];
    readonly rebound: readonly string[];
    readonly unchanged: readonly string[];
  };
  readonly pools: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly updated: readonly PoolChange[];
    readonly unchanged: readonly string[];
  };
  /** Keys whose new value takes effect only at the next start (they are reported, not applied). */
  readonly restartRequired: readonly string[];
  /** admin.token, allowedHosts, protectReads, metricsOpen, timeouts or maxBodyBytes changed (applied in place). */
  readonly admin: boolean;
  /** `log.level` or `log.access` changed (applied in place). */
  readonly log: boolean;
}

/** Keys of a pool that its balancer is built from, besides the options of its algorithm (balancerOptionsOf). */
const BALANCER_KEYS = ['balance', 'panicThreshold'] as const;
/** Keys of a pool that the request path reads through its handle (rebuilt on every reload anyway). */
const HANDLE_KEYS = ['retries', 'timeouts', 'keepAlive', 'queue', 'tls'] as const;
/** Keys of a pool that the pool itself applies in place. */
const LIFECYCLE_KEYS = ['slowStart'] as const;
/** Keys of a pool that are neither servers nor read through the balancer, the handle or the pool (nor an algorithm's options): its services read them. */
const OWN_KEYS = new Set<string>(['name', 'servers', ...BALANCER_KEYS, ...HANDLE_KEYS, ...LIFECYCLE_KEYS]);

/** Compute the plan. Pure: neither configuration is touched. */
export function planReload(old: Config, next: Config): ReloadPlan {
  const listeners = {
    added: [] as string[],
    removed: [] as string[],
    updated: [] as string[],
    rebound: [] as string[],
    unchanged: [] as string[],
  };
  const oldL = byName(old.listeners);
  const nextL = byName(next.listeners);
  for (const [name, l] of nextL) {
    const was = oldL.get(name);
    if (was === undefined) listeners.added.push(name);
    else if (same(was, l)) listeners.unchanged.push(name);
    else if (needsNewSocket(was, l)) listeners.rebound.push(name);
    else listeners.updated.push(name);
  }
  for (const name of oldL.keys()) if (!nextL.has(name)) listeners.removed.push(name);

  const pools = { added: [] as string[], removed: [] as string[], updated: [] as PoolChange[], unchanged: [] as string[] };
  const oldP = byName(old.pools);
  const nextP = byName(next.pools);
  for (const [name, p] of nextP) {
    const was = oldP.get(name);
    if (was === undefined) pools.added.push(name);
    else if (same(was, p)) pools.unchanged.push(name);
    else pools.updated.push(poolChange(was, p));
  }
  for (const name of oldP.keys()) if (!nextP.has(name)) pools.removed.push(name);

  const restartRequired: string[] = [];
  if (old.admin.enabled !== next.admin.enabled) restartRequired.push('admin.enabled');
  if (!same(old.admin.listen, next.admin.listen)) restartRequired.push('admin.listen');
  if (!same(old.admin.tls, next.admin.tls)) restartRequired.push('admin.tls');
  for (const k of Object.keys(next.cluster) as (keyof Config['cluster'])[]) {
    if (!same(old.cluster[k], next.cluster[k])) restartRequired.push(`cluster.${k}`);
  }
  if (old.stateDir !== next.stateDir) restartRequired.push('stateDir');
  const admin =
    old.admin.token !== next.admin.token ||
    !same(old.admin.allowedHosts, next.admin.allowedHosts) ||
    old.admin.protectReads !== next.admin.protectReads ||
    old.admin.metricsOpen !== next.admin.metricsOpen ||
    !same(old.admin.timeouts, next.admin.timeouts) ||
    old.admin.maxBodyBytes !== next.admin.maxBodyBytes;
  return { listeners, pools, restartRequired, admin, log: !same(old.log, next.log) };
}

/** A listener whose protocol changed needs a new socket; otherwise its kind says (by default: its address changed). */
function needsNewSocket(was: ListenerConfig, next: ListenerConfig): boolean {
  if (kindKey(was) !== kindKey(next)) return true;
  const rebind = kindOf(next).rebind;
  return rebind === undefined ? !same(was.listen, next.listen) : rebind(was, next);
}

function poolChange(was: PoolConfig, p: PoolConfig): PoolChange {
  const oldS = byName(was.servers);
  const nextS = byName(p.servers);
  const added: string[] = [];
  const changed: string[] = [];
  for (const [name, s] of nextS) {
    const w = oldS.get(name);
    if (w === undefined) added.push(name);
    else if (!same(w, s)) changed.push(name);
  }
  const removed = [...oldS.keys()].filter((n) => !nextS.has(n));
  const keys = new Set([...Object.keys(was), ...Object.keys(p)]);
  let services = false;
  for (const k of keys) {
    if (OWN_KEYS.has(k) || getBalancer(k) !== undefined) continue;
    if (!same((was as Record<string, unknown>)[k], (p as Record<string, unknown>)[k])) services = true;
  }
  return {
    name: p.name,
    balancer: BALANCER_KEYS.some((k) => !same(was[k], p[k])) || !same(balancerOptionsOf(was), balancerOptionsOf(p)),
    services,
    keepAlive: !same(was.keepAlive, p.keepAlive),
    lifecycle: was.slowStart !== p.slowStart || was.queue.max !== p.queue.max,
    servers: { added, removed, changed },
  };
}

/** One line per change, for the log and the API. */
export function describePlan(plan: ReloadPlan): string[] {
  const out: string[] = [];
  const l = plan.listeners;
  for (const n of l.added) out.push(`listener ${n}: added`);
  for (const n of l.removed) out.push(`listener ${n}: removed (stops accepting, drains)`);
  for (const n of l.rebound) out.push(`listener ${n}: new address or protocol (new socket; the old one drains)`);
  for (const n of l.updated) out.push(`listener ${n}: updated in place`);
  const p = plan.pools;
  for (const n of p.added) out.push(`pool ${n}: added`);
  for (const n of p.removed) out.push(`pool ${n}: removed`);
  for (const c of p.updated) {
    const parts: string[] = [];
    if (c.balancer) parts.push('balancer rebuilt');
    if (c.services) parts.push('health and other pool services restarted');
    if (c.keepAlive) parts.push('idle server connections closed');
    if (c.lifecycle) parts.push('slow start or queue updated');
    if (c.servers.added.length > 0) parts.push(`servers added: ${c.servers.added.join(', ')}`);
    if (c.servers.removed.length > 0) parts.push(`servers removed: ${c.servers.removed.join(', ')}`);
    if (c.servers.changed.length > 0) parts.push(`servers changed: ${c.servers.changed.join(', ')}`);
    out.push(`pool ${c.name}: ${parts.length > 0 ? parts.join('; ') : 'settings updated'}`);
  }
  if (plan.admin) out.push('admin: token or allowed hosts updated');
  if (plan.log) out.push('log: level or access log updated');
  for (const k of plan.restartRequired) out.push(`${k}: changed, takes effect at the next start`);
  return out;
}

function byName<T extends { readonly name: string }>(list: readonly T[]): Map<string, T> {
  const m = new Map<string, T>();
  for (const x of list) m.set(x.name, x);
  return m;
}

// ---- applying a plan --------------------------------------------------------------------

/** What applying a plan needs of the running Portico (the app implements it). */
export interface ReloadHost {
  readonly pools: Map<string, Pool>;
  /** The pools as the request path sees them; rebuilt for every kept pool on every apply. */
  readonly handles: Map<string, PoolHandle>;
  /** Every listener, in configuration order. */
  readonly listeners: ListenerService[];
  readonly isStarted: boolean;
  readonly log: Logger;
  readonly shutdownGraceMs: number;
  /** Apply what the listeners' routes share (the `caches:`), before listeners are built or updated. */
  prepare?(next: Config): void;
  newPool(pc: PoolConfig): Pool;
  newHandle(pc: PoolConfig, pool: Pool): PoolHandle;
  newListener(lc: ListenerConfig, handles: ReadonlyMap<string, PoolHandle>): ListenerService;
  /** Give a running listener its new settings, keeping its socket; false when its protocol cannot (it is then rebound). */
  updateListener(l: ListenerService, lc: ListenerConfig, handles: ReadonlyMap<string, PoolHandle>): boolean;
  /**
   * Build the services of one pool (health monitors, outlier detection ...) and wire them to
   * `handle` (the handle the listeners will use from now on). Not started.
   */
  newPoolServices(pc: PoolConfig, pool: Pool, handle: PoolHandle): Service[];
  /** The services of a pool now (empty when it has none). */
  poolServices(pool: string): readonly Service[];
  /** Record the services of a pool (replacing the previous ones; `[]` forgets the pool). */
  setPoolServices(pool: string, services: readonly Service[]): void;
  newServer(pool: string, sc: ServerConfig): Server;
  /** The pool queue's length this process enforces (its share with `cluster.workers`, src/core/limit-share.ts). */
  queueMaxOf(pc: PoolConfig): number;
  /** The observed state a server starts in when it joins a pool. */
  initialOp(pc: PoolConfig): OpState;
  /** The balancer factory and parsed options of a pool. */
  balancerOf(pc: PoolConfig): { factory: Parameters<Pool['setBalancer']>[0]; options: unknown };
  /** Close pooled idle connections to a server (it left, or moved to another address). */
  retireConnections(id: ServerId): void;
}

export interface ApplyOptions {
  /** Servers (`pool/name`) to take out at once rather than drain (`DELETE ...?now=true`). */
  readonly cut?: ReadonlySet<string> | undefined;
  /** Who asked: the file (reload), the operator (admin API) or a pool's discovery; kept with every server event. */
  readonly cause?: 'config' | 'admin' | 'discovery' | undefined;
}

/**
 * Apply a plan to the running objects. New sockets are bound first: when one cannot be
 * bound, those already bound are closed again and the error is thrown with nothing else
 * changed. Then pools are updated in place, listeners take their new settings, and what
 * was removed stops accepting and drains in the background.
 */
export async function applyPlan(host: ReloadHost, next: Config, plan: ReloadPlan, options: ApplyOptions = {}): Promise<void> {
  // 0. What routes share across listeners (the caches) follows `next` before any route is compiled.
  host.prepare?.(next);
  const nextPools = byName(next.pools);
  // 1. Build (no I/O) the pools that are new and the handles of every pool of `next`.
  const built = new Map<string, Pool>();
  for (const name of plan.pools.added) built.set(name, host.newPool(nextPools.get(name)!));
  const handles = new Map<string, PoolHandle>();
  for (const pc of next.pools) handles.set(pc.name, host.newHandle(pc, host.pools.get(pc.name) ?? built.get(pc.name)!));

  // 2. Bind the new sockets: added and rebound listeners. Any failure undoes this step.
  const current = new Map(host.listeners.map((l) => [l.name, l]));
  const fresh = new Map<string, ListenerService>();
  const nextL = byName(next.listeners);
  const toBind = [...plan.listeners.added, ...plan.listeners.rebound];
  const early: ListenerService[] = [];
  try {
    for (const name of toBind) {
      const lc = nextL.get(name)!;
      const l = host.newListener(lc, handles);
      fresh.set(name, l);
      if (!host.isStarted) continue;
      const old = current.get(name);
      // Same address, other protocol: the old socket closes first (its connections still drain).
      if (old !== undefined && sameAddress(old.address, lc.listen)) {
        retire(host, old);
        current.delete(name);
      }
      await l.start();
      early.push(l);
    }
  } catch (err) {
    for (const l of early) await l.stop(0);
    throw err;
  }

  // 3. Pools in place: balancer, servers, connections, services.
  for (const [name, pool] of built) {
    host.pools.set(name, pool);
    const services = host.newPoolServices(nextPools.get(name)!, pool, handles.get(name)!);
    host.setPoolServices(name, services);
    if (host.isStarted) for (const s of services) await startQuietly(host, s);
  }
  for (const pc of next.pools) {
    const pool = host.pools.get(pc.name)!;
    const change = plan.pools.updated.find((c) => c.name === pc.name);
    if (change?.balancer === true) {
      const b = host.balancerOf(pc);
      pool.setBalancer(b.factory, b.options, pc.panicThreshold);
    }
    if (change !== undefined || options.cut !== undefined) reconcileServers(host, pool, pc, options.cut, options.cause ?? 'config');
    if (change?.lifecycle === true) pool.setLifecycle({ slowStartMs: pc.slowStart, queueMax: host.queueMaxOf(pc) });
    if (change?.keepAlive === true) for (const rt of pool) host.retireConnections(rt.server.id);
    if (change?.services === true) {
      for (const s of host.poolServices(pc.name)) await s.stop(0);
      const services = host.newPoolServices(pc, pool, handles.get(pc.name)!);
      host.setPoolServices(pc.name, services);
      if (host.isStarted) for (const s of services) await startQuietly(host, s);
    }
  }
  host.handles.clear();
  for (const [k, v] of handles) host.handles.set(k, v);

  // 4. Listeners: new settings in place, or the new socket; removed ones drain.
  const order: ListenerService[] = [];
  const retired: ListenerService[] = [];
  for (const lc of next.listeners) {
    const f = fresh.get(lc.name);
    const old = current.get(lc.name);
    if (f !== undefined) {
      order.push(f);
      if (old !== undefined) retired.push(old);
      continue;
    }
    if (old === undefined) continue; // cannot happen: every listener of next is kept, added or rebound
    if (host.updateListener(old, lc, handles) || !plan.listeners.updated.includes(lc.name)) {
      order.push(old);
      continue;
    }
    // A protocol that cannot take new settings in place: rebind on the same address.
    const l = host.newListener(lc, handles);
    if (host.isStarted) {
      retire(host, old);
      await l.start();
    }
    order.push(l);
  }
  for (const name of plan.listeners.removed) {
    const old = current.get(name);
    if (old !== undefined) retired.push(old);
  }
  host.listeners.length = 0;
  host.listeners.push(...order);
  for (const l of retired) retire(host, l);

  // 5. Pools no longer configured: nothing routes to them any more.
  for (const name of plan.pools.removed) {
    const pool = host.pools.get(name);
    host.pools.delete(name);
    for (const s of host.poolServices(name)) await s.stop(0);
    host.setPoolServices(name, []);
    if (pool !== undefined) {
      for (const rt of pool) host.retireConnections(rt.server.id);
      pool.close();
    }
  }
}

/**
 * Make a running pool hold exactly the servers of `pc`. A server kept by name keeps its
 * runtime (connections, health, counters) and takes its new definition and admin state; a
 * new one joins; one that is no longer wanted drains and leaves once idle (or at once when
 * listed in `cut`).
 */
export function reconcileServers(
  host: Pick<ReloadHost, 'newServer' | 'initialOp' | 'retireConnections'>,
  pool: Pool,
  pc: PoolConfig,
  cut?: ReadonlySet<string>,
  cause: 'config' | 'admin' | 'discovery' = 'config',
): void {
  const wanted = new Set<string>();
  for (const sc of pc.servers) {
    wanted.add(sc.name);
    const server = host.newServer(pool.name, sc);
    const rt = pool.byName(sc.name);
    if (rt === undefined) {
      pool.add(server, sc.state, host.initialOp(pc), cause);
      continue;
    }
    rt.removing = false;
    const moved = rt.server.host !== server.host || rt.server.port !== server.port;
    if (!same(rt.server, server)) pool.update(server, cause);
    if (moved) host.retireConnections(server.id);
    pool.setAdmin(sc.name, sc.state as AdminState, cause);
  }
  for (const rt of [...pool]) {
    const name = rt.server.name;
    if (wanted.has(name)) continue;
    if (cut?.has(rt.server.id) === true || rt.active === 0) {
      // Requests still in flight on a cut server finish; their release must not remove a successor of the same name.
      rt.removing = false;
      // `cut`: said with the event, so that what holds flows outside the pool's count (the kernel's) cuts them too.
      pool.remove(name, cause, cut?.has(rt.server.id) === true ? 'cut' : undefined);
      continue;
    }
    if (rt.removing) continue;
    rt.removing = true;
    pool.setAdmin(name, 'drain', cause);
  }
}

function sameAddress(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  return a.host === b.host && a.port === b.port && a.port !== 0;
}

/** Stop accepting now (the socket closes at once) and let its connections drain in the background. */
function retire(host: ReloadHost, l: ListenerService): void {
  void l.stop(host.shutdownGraceMs).then(
    () => host.log.info(`listener ${l.name} on ${l.address.host}:${l.address.port} closed`),
    (err: unknown) => host.log.warn(`listener ${l.name}: stop failed`, { error: String(err) }),
  );
}

async function startQuietly(host: ReloadHost, s: Service): Promise<void> {
  try {
    await s.start();
  } catch (err) {
    host.log.error(`service ${s.name} failed to start`, { error: String(err) });
  }
}
