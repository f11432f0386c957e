import type { Balancer, BalancerDeps, BalancerFactory, PickContext, ReleaseOutcome } from '../balancer/balancer.js';
import type { Clock } from '../core/clock.js';
import type { Rng } from '../core/rng.js';
import type { AdminState, OpState, Server, ServerId } from '../core/server.js';
import { ServerSet, type ServerStatus } from '../core/server-set.js';
import { EventLog } from './event-log.js';
import { RequestQueue, type QueuePriority, type QueueWaiter } from './queue.js';
import { ServerRuntime } from './server-runtime.js';
import { SlowStart } from './slow-start.js';

export interface PoolOptions {
  readonly name: string;
  readonly factory: BalancerFactory<any>;
  readonly balancerOptions: unknown;
  readonly rng: Rng;
  readonly clock: Clock;
  readonly panicThresholdPct?: number | undefined;
  /** Slow start: a server coming back up ramps its weight over this time; 0 = off. */
  readonly slowStartMs?: number | undefined;
  /** Requests that may wait when every available server is at maxConnections; 0 = no queue. */
  readonly queueMax?: number | undefined;
  /** Events kept for the admin API (default 1000). */
  readonly eventLogSize?: number | undefined;
}

/** Why a server's state changed; kept with every event. */
export type ChangeCause = 'config' | 'admin' | 'probe' | 'passive' | 'slow-start' | 'discovery';

export interface PoolEvent {
  readonly pool: string;
  readonly server: string;
  readonly kind: 'admin' | 'op' | 'weight' | 'added' | 'removed';
  readonly from: string;
  readonly to: string;
  readonly cause: ChangeCause;
  readonly detail?: string | undefined;
}

/** A PoolEvent as kept in the pool's event log. */
export interface LoggedPoolEvent extends PoolEvent {
  /** Increases by one per event over every pool of the process (merge several logs by it). */
  readonly seq: number;
  /** Wall-clock time, ms since the epoch. */
  readonly at: number;
}

let eventSeq = 0;

export type PoolListener = (ev: PoolEvent) => void;

interface Current {
  readonly set: ServerSet;
  readonly balancer: Balancer;
}

/**
 * A named group of servers with one algorithm. Holds the live runtime of each server,
 * builds an immutable ServerSet and a balancer from it on every change, and picks
 * through the current pair. The balancer never sees health: the pool gives it the set.
 */
export class Pool implements Iterable<ServerRuntime> {
  readonly name: string;
  private factory: BalancerFactory<any>;
  private balancerOptions: unknown;
  private readonly deps: BalancerDeps;
  private readonly runtimes = new Map<ServerId, ServerRuntime>();
  private order: ServerRuntime[] = [];
  private version = 0;
  private panicThresholdPct: number;
  private readonly listeners = new Set<PoolListener>();
  private readonly clock: Clock;
  private readonly slowStart: SlowStart<ServerRuntime>;
  private queue: RequestQueue<QueueWaiter> | undefined;
  private servingQueue = false;
  /** Recent state changes, with their causes (admin API, dashboard). */
  readonly events: EventLog<LoggedPoolEvent>;
  /** Requests in flight over the whole pool. */
  inflight = 0;
  current: Current;

  constructor(options: PoolOptions, servers: readonly { server: Server; admin?: AdminState; op?: OpState }[] = []) {
    this.name = options.name;
    this.factory = options.factory;
    this.balancerOptions = options.balancerOptions;
    this.clock = options.clock;
    this.panicThresholdPct = options.panicThresholdPct ?? 0;
    const runtimes = this.runtimes;
    this.deps = {
      rng: options.rng,
      clock: options.clock,
      counts: { active: (id: ServerId) => runtimes.get(id)?.active ?? 0, total: () => this.inflight },
      carry: new Map(),
      weightOf: (s: Server) => runtimes.get(s.id)?.weight ?? s.weight,
    };
    this.events = new EventLog(options.eventLogSize ?? 1000);
    this.slowStart = new SlowStart<ServerRuntime>(options.slowStartMs ?? 0, options.clock, (finished) => this.rampStepped(finished));
    this.queue = (options.queueMax ?? 0) > 0 ? new RequestQueue(options.queueMax!) : undefined;
    for (const s of servers) this.insert(s.server, s.admin ?? 'ready', s.op ?? 'up');
    this.current = this.build();
  }

  [Symbol.iterator](): Iterator<ServerRuntime> {
    return this.order[Symbol.iterator]();
  }

  get size(): number {
    return this.order.length;
  }

  runtime(id: ServerId): ServerRuntime | undefined {
    return this.runtimes.get(id);
  }

  byName(name: string): ServerRuntime | undefined {
    for (const r of this.order) if (r.server.name === name) return r;
    return undefined;
  }

  onEvent(fn: PoolListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Pick a server for new traffic. Servers at their maxConnections are passed over.
   * Returns undefined when none is available (the caller answers 503 or queues).
   */
  pick(ctx: PickContext): Server | undefined {
    const cur = this.current;
    const s = cur.balancer.pick(ctx);
    if (s === undefined) return undefined;
    const rt = this.runtimes.get(s.id);
    if (rt === undefined || s.maxConnections === 0 || rt.active < s.maxConnections) return s;
    // The pick is saturated: try again avoiding every saturated server (rare path, allocates).
    const avoid = new Set<ServerId>(ctx.avoid ?? []);
    for (let i = 0; i < cur.set.available.length; i++) {
      avoid.add(s.id);
      const next = cur.balancer.pick({ hashKey: ctx.hashKey, path: ctx.path, avoid });
      if (next === undefined || avoid.has(next.id)) return undefined;
      const r = this.runtimes.get(next.id);
      if (r === undefined || next.maxConnections === 0 || r.active < next.maxConnections) return next;
      avoid.add(next.id);
    }
    return undefined;
  }

  /** True when `id` may still receive traffic pinned to it (sticky sessions): not down, not in maint. */
  acceptsPinned(id: ServerId): boolean {
    return this.current.set.pinnable.has(id);
  }

  acquire(server: Server): ServerRuntime | undefined {
    const rt = this.runtimes.get(server.id);
    if (rt === undefined) return undefined;
    rt.active++;
    rt.requests++;
    this.inflight++;
    this.current.balancer.onAcquire?.(server);
    return rt;
  }

  release(rt: ServerRuntime, outcome: ReleaseOutcome): void {
    rt.active--;
    this.inflight--;
    this.current.balancer.onRelease?.(rt.server, outcome);
    if (rt.removing && rt.active === 0) this.remove(rt.server.name, 'admin');
    if (this.queue !== undefined && this.queue.size > 0) this.serveQueue();
  }

  // ---- the queue (every available server at maxConnections) ---------------------

  /** Park a request until a slot frees up; false when there is no queue or it is full. */
  enqueue(w: QueueWaiter, priority: QueuePriority = 'normal'): boolean {
    return this.queue !== undefined && this.queue.enqueue(w, priority);
  }

  /** Take a parked request out (its client left, or its wait expired). */
  leaveQueue(w: QueueWaiter): boolean {
    return this.queue !== undefined && this.queue.remove(w);
  }

  /** Requests waiting in the queue now. */
  get queued(): number {
    return this.queue?.size ?? 0;
  }

  /** Serve waiting requests while slots are free; with no server available, each gets its 503 now. */
  private serveQueue(): void {
    const q = this.queue;
    if (q === undefined || q.size === 0 || this.servingQueue) return;
    this.servingQueue = true;
    try {
      while (q.size > 0) {
        const w = q.shift()!;
        if (this.current.set.available.length === 0) {
          w.rejectFromQueue();
          continue;
        }
        if (!w.resumeFromQueue()) {
          q.unshift(w);
          break;
        }
      }
    } finally {
      this.servingQueue = false;
    }
  }

  // ---- membership and state -------------------------------------------------

  setAdmin(name: string, admin: AdminState, cause: ChangeCause = 'admin'): boolean {
    const rt = this.byName(name);
    if (rt === undefined) return false;
    if (rt.admin === admin) return true;
    const from = rt.admin;
    rt.admin = admin;
    // Leaving maint is coming back: ramp up like a server that was down (HAProxy does the same).
    if (from === 'maint' && rt.op !== 'down') this.slowStart.begin(rt);
    else if (admin === 'maint') this.slowStart.cancel(rt);
    this.rebuild();
    this.emit({ pool: this.name, server: name, kind: 'admin', from, to: admin, cause });
    return true;
  }

  /**
   * Report an observed state. Outlier detection (cause `passive`) and every other source (active
   * checks ...) are kept apart: the server is down while either says down, so the end of an
   * ejection does not bring back a server that failing probes took down, and the reverse.
   * Returns true when the op state changed.
   */
  setOp(id: ServerId, op: OpState, cause: ChangeCause, detail?: string): boolean {
    const rt = this.runtimes.get(id);
    if (rt === undefined) return false;
    if (cause === 'passive') rt.ejected = op === 'down';
    else rt.observed = op;
    const next: OpState = rt.ejected ? 'down' : rt.observed;
    if (rt.op === next) return false;
    const from = rt.op;
    rt.op = next;
    rt.changedAt = this.clock.now();
    if (from === 'down' && rt.admin !== 'maint') this.slowStart.begin(rt);
    else if (next === 'down') this.slowStart.cancel(rt);
    this.rebuild();
    this.emit({ pool: this.name, server: rt.server.name, kind: 'op', from, to: next, cause, detail });
    if (this.slowStart.isRamping(rt)) {
      this.emit({ pool: this.name, server: rt.server.name, kind: 'weight', from: String(rt.server.weight), to: String(rt.weight), cause: 'slow-start', detail: `ramping to ${rt.server.weight} over ${this.slowStart.rampMs}ms` });
    }
    return true;
  }

  /** Change the effective weight without touching the configured one (slow start). */
  setEffectiveWeight(id: ServerId, weight: number | undefined): void {
    const rt = this.runtimes.get(id);
    if (rt === undefined || rt.effectiveWeight === weight) return;
    rt.effectiveWeight = weight;
    this.rebuild();
  }

  /** Replace one server's definition (weight, maxConnections ...), keeping its runtime and counters. */
  update(server: Server, cause: ChangeCause = 'admin'): boolean {
    const rt = this.runtimes.get(server.id);
    if (rt === undefined) return false;
    const from = String(rt.server.weight);
    rt.server = server;
    this.rebuild();
    if (from !== String(server.weight)) {
      this.emit({ pool: this.name, server: server.name, kind: 'weight', from, to: String(server.weight), cause });
    }
    return true;
  }

  add(server: Server, admin: AdminState, op: OpState, cause: ChangeCause = 'admin'): ServerRuntime {
    const rt = this.insert(server, admin, op);
    this.rebuild();
    this.emit({ pool: this.name, server: server.name, kind: 'added', from: '', to: admin, cause });
    return rt;
  }

  /** Remove a server; `detail` travels with the event (`cut`: removed at once, its connections cut). */
  remove(name: string, cause: ChangeCause = 'admin', detail?: string): boolean {
    const rt = this.byName(name);
    if (rt === undefined) return false;
    this.runtimes.delete(rt.server.id);
    this.order = this.order.filter((r) => r !== rt);
    this.slowStart.cancel(rt);
    this.rebuild();
    this.emit({ pool: this.name, server: name, kind: 'removed', from: rt.admin, to: '', cause, ...(detail === undefined ? {} : { detail }) });
    return true;
  }

  /** Change the algorithm (reload). Carried state of the old algorithm is dropped. */
  setBalancer(factory: BalancerFactory<any>, options: unknown, panicThresholdPct = 0): void {
    if (factory !== this.factory) this.deps.carry.clear();
    this.factory = factory;
    this.balancerOptions = options;
    this.panicThresholdPct = panicThresholdPct;
    this.rebuild();
  }

  rebuild(): void {
    this.current = this.build();
    if (this.queue !== undefined && this.queue.size > 0) this.serveQueue();
  }

  /** Change slow start and the queue bound (reload). A shorter queue keeps who already waits. */
  setLifecycle(options: { slowStartMs: number; queueMax: number }): void {
    this.slowStart.rampMs = options.slowStartMs;
    if (options.slowStartMs <= 0 && this.slowStart.active > 0) {
      this.slowStart.close();
      this.rebuild();
    }
    if (options.queueMax !== (this.queue?.max ?? 0)) {
      const old = this.queue;
      this.queue = options.queueMax > 0 ? new RequestQueue(options.queueMax) : undefined;
      if (old !== undefined) {
        for (let w = old.shift(); w !== undefined; w = old.shift()) {
          if (this.queue === undefined || !this.queue.enqueue(w)) w.rejectFromQueue();
        }
      }
    }
  }

  /** Stop the pool's own timers (slow start); ramps end at full weight. */
  close(): void {
    if (this.slowStart.active === 0) return;
    this.slowStart.close();
    this.rebuild();
  }

  /** Slow start moved effective weights: rebuild once for all of them. */
  private rampStepped(finished: readonly ServerRuntime[]): void {
    this.rebuild();
    for (const rt of finished) {
      this.emit({ pool: this.name, server: rt.server.name, kind: 'weight', from: 'ramping', to: String(rt.server.weight), cause: 'slow-start', detail: 'slow start ended' });
    }
  }

  private insert(server: Server, admin: AdminState, op: OpState): ServerRuntime {
    const existing = this.runtimes.get(server.id);
    if (existing !== undefined) throw new Error(`server ${server.name} already exists in pool ${this.name}`);
    const rt = new ServerRuntime(server, admin, op);
    rt.changedAt = this.clock.now();
    this.runtimes.set(server.id, rt);
    this.order.push(rt);
    return rt;
  }

  private build(): Current {
    const status = new Map<ServerId, ServerStatus>();
    const servers: Server[] = [];
    for (const rt of this.order) {
      status.set(rt.server.id, { admin: rt.admin, op: rt.op });
      servers.push(rt.server); // effective weights (slow start) reach balancers through deps.weightOf
    }
    const set = ServerSet.build(servers, status, ++this.version, { panicThresholdPct: this.panicThresholdPct });
    const balancer = this.factory.build(set, this.balancerOptions, this.deps);
    return { set, balancer };
  }

  private emit(ev: PoolEvent): void {
    this.events.push({ ...ev, seq: ++eventSeq, at: Date.now() });
    for (const fn of this.listeners) {
      try {
        fn(ev);
      } catch {
        // a listener's fault never stops the pool
      }
    }
  }
}
