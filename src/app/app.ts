import type { Config, ListenerConfig, PoolConfig, ServerConfig } from '../config/types.js';
import { validateConfig } from '../config/load.js';
import { balancerOptionsOf } from '../config/balancer-options.js';
import { adminTlsBuildError } from '../tls/listener-tls.js';
import { getBalancer } from '../balancer/registry.js';
import '../balancer/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import { SeededRng, type Rng } from '../core/rng.js';
import { serverId, type OpState, type Server, type ServerId } from '../core/server.js';
import type { BalancerFactory } from '../balancer/balancer.js';
import { Pool } from '../pool/pool.js';
import { poolEventLine } from '../pool/event-log.js';
import { createHealthMonitor, createOutlierDetector } from '../health/from-config.js';
import type { HealthMonitor } from '../health/health-monitor.js';
import type { OutlierDetector } from '../health/outlier.js';
import type { PoolHandle } from '../proxy/http/listener-runtime.js';
import { hashKeyOf } from '../proxy/http/router.js';
import { createPersistence, loadOrCreateSecret, needsStateSecret, ServerTokens, type Persistence } from '../persistence/index.js';
import { MemoryStore } from '../store/memory-store.js';
import type { StateStore } from '../store/state-store.js';
import { UpstreamConnections, type UpstreamPoolLimits } from '../proxy/http/upstream.js';
import { TcpShared } from '../proxy/tcp/build.js';
import { kindKey, type ListenerKind } from '../listener/kind.js';
import { kindOf, listenerKinds, type AppBuildContext } from './listener-kinds.js';
import { AdminError } from '../admin/admin-error.js';
import { UpstreamTls } from '../tls/upstream-tls.js';
import { createLogger, isLevelLogger, setLogFormat, type Logger } from '../observability/logger.js';
import { RequestStats } from '../observability/request-stats.js';
import { AdminServer, type AdminTimeouts } from '../admin/admin-server.js';
import { RuntimeJournal } from '../admin/journal.js';
import { mountAdminApi, type StatsView } from '../admin/api.js';
import { mountCacheApi } from '../admin/cache-api.js';
import { ConfigRuntime, type ConfigHost, type ReloadResult } from './config-runtime.js';
import { mountObservability } from '../admin/dashboard/mount.js';
import type { InflightRequest } from '../observability/live-stats.js';
import { Observability } from '../observability/observability.js';
import { limitShare } from '../core/limit-share.js';
import { Reuse } from '../core/reuse.js';
import { CacheSet } from '../cache/cache.js';
import { routePhaseFactories } from './route-phases.js';
import { CompressCounters } from '../proxy/http/phases/compress.js';
import { listenFailure, type ListenerService, type Service } from './service.js';
import { createDiscovery } from '../discovery/from-config.js';
import { DiscoveryWatcher } from '../discovery/watcher.js';
import { cacheMetrics, compressedBytesMetric } from '../observability/metrics.js';
import { discoveryMetrics, discoveryStatus, type DiscoveryStatus } from '../discovery/status.js';
import { ClusterStore } from '../cluster/cluster-store.js';
import { RedisCacheBackend } from '../store/redis-cache.js';
import { RuntimeSync } from '../cluster/runtime-sync.js';
import { EtcdStateStore } from '../cluster/etcd-store.js';

export interface PorticoDeps {
  /** The file the configuration came from: `reload()` and SIGHUP re-read it. */
  readonly configFile?: string;
  /** Where `${VAR}` values come from when the file is re-read (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  readonly clock?: Clock;
  readonly rng?: Rng;
  readonly logger?: Logger;
  /**
   * The StateStore of stick tables (default: a MemoryStore of this process). One given here is
   * taken to be shared with other nodes: a stick-table miss asks it.
   */
  readonly store?: StateStore;
  /**
   * `external`: this process runs no active health checks; another (the primary of
   * `cluster.workers`) probes and sets each server's state through `pools`.
   */
  readonly probes?: 'local' | 'external';
  /**
   * `external`: this process runs no discovery; another (the primary of `cluster.workers`)
   * watches the sources and gives each pool its list through `setDiscovered`.
   */
  readonly discovery?: 'local' | 'external';
  /** Where reload() reads the configuration instead of `configFile` (the etcd document of `cluster.config`). */
  readonly configSource?: () => Config;
  /**
   * The number of processes (`cluster.workers`) that serve this configuration together (default
   * 1). Each enforces its share of every connection and queue limit (src/core/limit-share.ts):
   * a server's `maxConnections`, a pool's `queue.max`, a listener's `maxConnections`.
   */
  readonly workers?: number;
  /** In a worker of `cluster.workers`: a reload through the admin API reloads every worker (ConfigRuntime.reloadAll). */
  readonly reloadAll?: () => Promise<unknown>;
}

/** A running (or ready to run) Portico: pools, listeners and their lifecycle. */
export interface Portico {
  readonly config: Config;
  /** The process log (its level follows `log.level` across reloads). */
  readonly log: Logger;
  readonly pools: ReadonlyMap<string, Pool>;
  /** Per pool: its active checks (`health`) and passive checks (`passive`), when configured. */
  readonly health: ReadonlyMap<string, PoolHealth>;
  readonly stats: RequestStats;
  /**
   * The admin HTTP server (undefined when `admin.enabled: false`). Mount endpoints on it with
   * `admin.route(method, pattern, handler)` before start(); see src/admin/README.md.
   */
  readonly admin: AdminServer | undefined;
  /** Metrics, live statistics and their event stream, the access log. */
  readonly observability: Observability;
  /** Bind every listener. */
  start(): Promise<void>;
  /** Stop accepting, let in-flight requests finish for up to graceMs (default: config.shutdownGrace). */
  stop(graceMs?: number): Promise<void>;
  /** The bound address of a listener (useful with port 0). */
  address(listener: string): { host: string; port: number } | undefined;
  /**
   * Re-read the configuration file (or validate `input`, a configuration object) and apply the
   * difference in place; runtime changes made through the admin API stay in force. An invalid
   * configuration throws its ConfigError and nothing changes.
   */
  reload(input?: unknown): Promise<ReloadResult>;
  /** A new server list for a pool whose servers come from discovery (applied like a reload of its servers). */
  setDiscovered(pool: string, servers: readonly ServerConfig[]): Promise<void>;
  /**
   * Record a reload refused elsewhere (by the primary of `cluster.workers`, which validated the
   * file): the status shows it as the last reload; nothing changes and nothing is logged.
   */
  reloadRefused(errors: readonly string[]): void;
  /**
   * Told of each new running configuration, once applied: a reload, a runtime change through the
   * admin API (this node's or another's), a discovered server list. Returns the unsubscribe.
   */
  onConfig(fn: (config: Config) => void): () => void;
}

/** The health checking of one pool, for the admin API and metrics. */
export interface PoolHealth {
  readonly monitor: HealthMonitor | undefined;
  readonly outlier: OutlierDetector | undefined;
}

/**
 * Build Portico from a configuration object. The object is validated exactly like a
 * configuration file (a ConfigError lists every problem). Nothing is bound until start().
 */
export function createPortico(input: unknown, deps: PorticoDeps = {}): Portico {
  const config = isValidated(input) ? input : validateConfig(input);
  return new PorticoApp(config, deps);
}

const validated = new WeakSet<object>();
/** Mark a Config that came out of the loader, so createPortico does not validate it twice. */
export function markValidated(c: Config): Config {
  validated.add(c);
  return c;
}
function isValidated(x: unknown): x is Config {
  return typeof x === 'object' && x !== null && validated.has(x);
}

class PorticoApp implements Portico, ConfigHost {
  private running!: Config;
  private readonly configListeners = new Set<(config: Config) => void>();
  /** What runs: the configuration with the runtime changes laid over it; replaced on reload. */
  get config(): Config {
    return this.running;
  }
  set config(c: Config) {
    this.running = c;
    for (const fn of this.configListeners) fn(c);
  }

  onConfig(fn: (config: Config) => void): () => void {
    this.configListeners.add(fn);
    return () => this.configListeners.delete(fn);
  }
  readonly pools = new Map<string, Pool>();
  readonly health = new Map<string, PoolHealth>();
  readonly stats = new RequestStats();
  readonly handles = new Map<string, PoolHandle>();
  /** Per-pool state of the tcp listeners (session-id tables, TLS sessions toward servers). */
  private readonly tcpShared: TcpShared;
  /** Every listener, in configuration order. */
  readonly listeners: ListenerService[] = [];
  /** Other services (health monitors, admin API ...), started before the listeners and stopped after them. */
  readonly services: Service[] = [];
  private readonly upstreams = new UpstreamConnections();
  readonly log: Logger;
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  readonly admin: AdminServer | undefined;
  readonly observability: Observability;
  private readonly clock: Clock;
  private readonly rng: Rng;
  /** Stick tables live here (persistence). */
  private readonly store: StateStore;
  private readonly sharedStore: boolean;
  private readonly externalProbes: boolean;
  private readonly externalDiscovery: boolean;
  /** The processes that share the limits (PorticoDeps.workers). */
  private readonly workers: number;
  /** Cookie tokens under the secret kept in stateDir (loaded at start, or when a reload first needs it). */
  private readonly stateTokens = new ServerTokens();
  /** Each pool's persistence: kept across reloads while its `persistence` section is unchanged. */
  private readonly persistences = Reuse.byName<Persistence>();
  /** What listener kinds keep across reloads while its spec is unchanged (BuildContext.kept). */
  private readonly listenerKept = Reuse.byName<unknown>();
  /** When each store-error warning was last logged. */
  private readonly storeWarnedAt = new Map<string, number>();

  /** The `caches:` of the configuration; each kept across a reload while its spec is unchanged. */
  readonly caches = new CacheSet();
  /** Bytes the compression phases compressed (portico_compressed_bytes_total), kept across reloads. */
  readonly compressed = new CompressCounters();
  private readonly routePhases = routePhaseFactories(this.caches, this.compressed);

  constructor(config: Config, deps: PorticoDeps) {
    this.config = config;
    const clock = deps.clock ?? systemClock;
    const rng = deps.rng ?? new SeededRng((Date.now() ^ process.pid) >>> 0);
    this.clock = clock;
    this.rng = rng;
    this.log = deps.logger ?? createLogger(config.log.level);
    setLogFormat(config.log.format);
    // cluster.store: redis://... is the store of every node (stick tables, TLS sessions, runtime changes).
    const cs = deps.store === undefined && config.cluster.store !== 'memory' ? new ClusterStore({ url: config.cluster.store, log: this.log }) : undefined;
    this.store = deps.store ?? cs?.store ?? new MemoryStore({ clock });
    this.sharedStore = deps.store !== undefined || cs !== undefined;
    // The caches' shared tier (`shared: true`) lives in a Redis cluster.store (the config check refuses it without one).
    if (cs !== undefined) this.caches.useShared(new RedisCacheBackend(cs.store));
    this.caches.update(config.caches);
    this.tcpShared = new TcpShared(clock, this.sharedStore ? { store: this.store, shared: true, onStoreError: this.onStoreError } : undefined);
    this.externalProbes = deps.probes === 'external';
    this.externalDiscovery = deps.discovery === 'external';
    this.workers = Math.max(1, deps.workers ?? 1);
    for (const pc of config.pools) {
      const pool = this.newPool(pc);
      this.pools.set(pc.name, pool);
      const handle = this.newHandle(pc, pool);
      this.handles.set(pc.name, handle);
      this.setPoolServices(pc.name, this.newPoolServices(pc, pool, handle));
    }
    for (const lc of config.listeners) this.listeners.push(this.buildListener(lc));
    this.runtime = new ConfigRuntime(this, config, deps.configFile, new RuntimeJournal(config.stateDir), deps.env);
    this.runtime.source = deps.configSource;
    this.runtime.reloadAll = deps.reloadAll;
    if (config.admin.enabled) {
      const a = config.admin;
      const tls = a.tls === false ? undefined : { cert: a.tls.cert, key: a.tls.key, reloadCheckMs: a.tls.reloadCheck };
      try {
        this.admin = new AdminServer({
          host: a.listen.host,
          port: a.listen.port,
          token: a.token,
          allowedHosts: a.allowedHosts,
          protectReads: a.protectReads,
          openReads: adminOpenReads(a),
          tls,
          timeouts: adminTimeouts(a),
          maxBodyBytes: a.maxBodyBytes,
          logger: this.log,
        });
      } catch (err) {
        throw tls === undefined ? err : adminTlsBuildError(tls, err);
      }
      this.services.push(this.admin);
    }
    this.observability = new Observability({
      stats: this.stats,
      pools: this.pools,
      listeners: () => this.listeners,
      inflight: () => this.inflightRequests(),
      caches: () => this.caches.all(),
      accessLog: config.log.access,
      logger: this.log,
      probes: () => this.probeSources(),
    });
    this.services.unshift(...this.observability.services);
    if (config.cluster.config.startsWith('etcd:')) {
      // cluster.config: etcd: the runtime changes are written back to the etcd of the document (src/cluster/etcd-store.ts).
      const etcd = new EtcdStateStore(config.cluster.config);
      const sync = new RuntimeSync({ store: etcd, runtime: this.runtime, node: config.cluster.node, log: this.log, timeoutMs: 3000 });
      this.services.unshift({ name: 'runtime-sync (etcd)', start: () => sync.start(), stop: async () => (await sync.stop(), await etcd.close()) });
    } else if (this.sharedStore) {
      // Started first (the store, then the runtime changes of the cluster), stopped last.
      const sync = new RuntimeSync({ store: this.store, runtime: this.runtime, node: config.cluster.node, log: this.log });
      this.services.unshift(sync);
      if (cs !== undefined) {
        this.services.unshift(cs);
        cs.onReconnect(() => sync.resync());
        for (const m of cs.metrics()) this.observability.metrics.register(m);
      }
    }
    for (const k of listenerKinds) for (const m of k.metrics?.(() => this.listenersOf(k)) ?? []) this.observability.metrics.register(m);
    for (const m of discoveryMetrics(() => this.discoveryStatuses())) this.observability.metrics.register(m);
    this.observability.metrics.register(compressedBytesMetric(this.compressed));
    for (const m of cacheMetrics(() => this.caches.all())) this.observability.metrics.register(m);
    if (this.admin !== undefined) {
      const admin = this.admin;
      mountObservability(admin, this.observability, { node: config.cluster.node, hasToken: () => admin.hasToken });
      mountAdminApi(admin, this, { node: config.cluster.node, store: cs === undefined ? undefined : () => cs.status() });
      this.mountListenerViews(admin);
      mountCacheApi(admin, this.caches);
    }
  }

  // ---- ConfigHost: what a reload and the admin API build and change (src/app/reload.ts) ----

  readonly runtime: ConfigRuntime;
  private readonly servicesByPool = new Map<string, readonly Service[]>();
  /** Each pool's discovery watcher run by this process (one of its services). */
  private readonly watchers = new Map<string, DiscoveryWatcher>();

  get isStarted(): boolean {
    return this.started;
  }

  get shutdownGraceMs(): number {
    return this.config.shutdownGrace;
  }

  newPool(pc: PoolConfig): Pool {
    const pool = buildPool(pc, this.clock, this.rng, this.workers);
    pool.onEvent((ev) => {
      const line = poolEventLine(ev);
      this.log[line.level](line.msg, line.fields);
      if (ev.kind === 'removed') this.retireConnections(serverId(ev.pool, ev.server));
    });
    return pool;
  }

  newHandle(pc: PoolConfig, pool: Pool): PoolHandle {
    const handle = this.buildHandle(pc, pool);
    const outlier = this.health.get(pc.name)?.outlier;
    if (outlier !== undefined) handle.onOutcome = outlier.record;
    return handle;
  }

  /** A pool's health monitor and outlier detection; the handle reports outcomes to the latter. */
  newPoolServices(pc: PoolConfig, pool: Pool, handle: PoolHandle): Service[] {
    const monitor = this.externalProbes ? undefined : createHealthMonitor(pool, pc.health, this.rng);
    const outlier = pc.passive === false ? undefined : createOutlierDetector(pool, pc.passive, this.clock, monitor);
    handle.onOutcome = outlier?.record;
    this.health.set(pc.name, { monitor, outlier });
    const out: Service[] = [];
    if (monitor !== undefined) out.push(monitor);
    if (outlier !== undefined) out.push(outlier);
    const discovery = this.externalDiscovery ? undefined : createDiscovery(pc.discovery, { warn: (m) => this.log.warn(m) });
    if (discovery === undefined) {
      this.watchers.delete(pc.name);
    } else {
      // Each new list goes through the configuration runtime, like a reload of the pool's servers.
      const onServers = (servers: readonly ServerConfig[]): void => void this.runtime.setDiscovered(pc.name, servers);
      const watcher = new DiscoveryWatcher(discovery, { onServers, log: this.log });
      this.watchers.set(pc.name, watcher);
      out.push(watcher);
    }
    return out;
  }

  poolServices(pool: string): readonly Service[] {
    return this.servicesByPool.get(pool) ?? [];
  }

  setPoolServices(pool: string, services: readonly Service[]): void {
    for (const s of this.servicesByPool.get(pool) ?? []) {
      const i = this.services.indexOf(s);
      if (i >= 0) this.services.splice(i, 1);
    }
    this.servicesByPool.set(pool, services);
    this.services.push(...services);
    if (!this.pools.has(pool)) {
      this.servicesByPool.delete(pool);
      this.health.delete(pool);
      this.watchers.delete(pool);
    }
  }

  newListener(lc: ListenerConfig, handles: ReadonlyMap<string, PoolHandle>): ListenerService {
    return this.buildListener(lc, handles);
  }

  updateListener(l: ListenerService, config: ListenerConfig, handles: ReadonlyMap<string, PoolHandle>): boolean {
    if (kindKey(l) !== kindKey(config)) return false;
    const kind = kindOf(config);
    return kind.update?.(l, this.shareOf(kind, config), this.buildContext(handles)) ?? false;
  }

  newServer(pool: string, sc: ServerConfig): Server {
    return buildServer(pool, sc, this.workers);
  }

  queueMaxOf(pc: PoolConfig): number {
    return limitShare(pc.queue.max, this.workers);
  }

  initialOp(pc: PoolConfig): OpState {
    return initialOp(pc);
  }

  balancerOf(pc: PoolConfig): { factory: BalancerFactory<any>; options: unknown } {
    return balancerOf(pc);
  }

  retireConnections(id: ServerId): void {
    this.upstreams.retire(id);
  }

  updateAdmin(admin: Config['admin']): void {
    this.admin?.update({
      token: admin.token,
      allowedHosts: admin.allowedHosts,
      protectReads: admin.protectReads,
      openReads: adminOpenReads(admin),
      timeouts: adminTimeouts(admin),
      maxBodyBytes: admin.maxBodyBytes,
    });
  }

  async updateLog(log: Config['log']): Promise<void> {
    if (isLevelLogger(this.log)) this.log.setLevel(log.level);
    setLogFormat(log.format);
    await this.observability.setAccessLog(log.access);
  }

  reload(input?: unknown): Promise<ReloadResult> {
    return this.runtime.reload(input);
  }

  setDiscovered(pool: string, servers: readonly ServerConfig[]): Promise<void> {
    return this.runtime.setDiscovered(pool, servers);
  }

  reloadRefused(errors: readonly string[]): void {
    this.runtime.refused(errors);
  }

  /** The last live statistics frame (admin API rates). */
  lastStats(): StatsView | undefined {
    return this.observability.live.last;
  }

  /** Requests in progress on the http listeners (Little's N in the live statistics). */
  private *inflightRequests(): IterableIterator<InflightRequest> {
    for (const l of this.listeners) {
      const inflight = kindOf(l).inflight;
      if (inflight !== undefined) yield* inflight(l);
    }
  }

  /** The running listeners of one kind. */
  private *listenersOf<L extends ListenerService>(kind: ListenerKind<any, L>): IterableIterator<L> {
    for (const l of this.listeners) if (kindKey(l) === kindKey(kind)) yield l as L;
  }

  /** `GET /api/v1/listeners/{listener}/{view}` for each view a listener kind offers (the tcp binding table ...). */
  private mountListenerViews(admin: AdminServer): void {
    const views = new Set(listenerKinds.flatMap((k) => Object.keys(k.adminViews ?? {})));
    for (const view of views) {
      const kinds = listenerKinds.filter((k) => k.adminViews?.[view] !== undefined);
      admin.route('GET', `/api/v1/listeners/{listener}/${view}`, (_req, _res, ctx) => {
        const name = ctx.params.listener;
        const l = this.listeners.find((x) => x.name === name);
        const read = l === undefined ? undefined : kindOf(l).adminViews?.[view];
        if (l === undefined || read === undefined) {
          throw new AdminError(404, 'LB_ADMIN_NOT_FOUND', `no ${[...new Set(kinds.map((k) => (k.dataPlane === undefined ? k.protocol : `${k.dataPlane} ${k.protocol}`)))].join(' or ')} listener named ${JSON.stringify(name)}`);
        }
        return read(l);
      });
    }
  }

  /** The status of a pool's discovery run by this process (undefined: a static pool, or discovery runs in the primary). */
  discovery(pool: string): DiscoveryStatus | undefined {
    const pc = this.config.pools.find((p) => p.name === pool);
    if (pc === undefined || pc.discovery.type === 'static') return undefined;
    const watcher = this.watchers.get(pool);
    return watcher === undefined ? undefined : discoveryStatus(pc.discovery, watcher.state);
  }

  private *discoveryStatuses(): IterableIterator<readonly [string, DiscoveryStatus]> {
    for (const pool of this.servicesByPool.keys()) {
      const st = this.discovery(pool);
      if (st !== undefined) yield [pool, st];
    }
  }

  /** The pools' health monitors (their probe results feed the metrics and the event stream). */
  private *probeSources(): IterableIterator<HealthMonitor> {
    for (const h of this.health.values()) if (h.monitor !== undefined) yield h.monitor;
  }

  /**
   * A listener's configuration with this process's share of its connection limit (as it is
   * built or updated, never per connection): with `cluster.workers` each worker counts its own.
   */
  private shareOf(kind: ListenerKind<ListenerConfig, ListenerService, AppBuildContext>, lc: ListenerConfig): ListenerConfig {
    return this.workers <= 1 || kind.shareOf === undefined ? lc : kind.shareOf(lc, this.workers);
  }

  prepare(next: Config): void {
    this.caches.update(next.caches);
  }

  /** One listener from its configuration, built by its kind. */
  private buildListener(config: ListenerConfig, handles: ReadonlyMap<string, PoolHandle> = this.handles): ListenerService {
    const kind = kindOf(config);
    return kind.build(this.shareOf(kind, config), this.buildContext(handles));
  }

  /** What a listener kind builds from: the pools of `handles` and what every listener shares. */
  private buildContext(handles: ReadonlyMap<string, PoolHandle>): AppBuildContext {
    return {
      handles,
      observer: this.stats,
      clock: this.clock,
      rng: this.rng,
      log: this.log,
      store: this.store,
      sharedStore: this.sharedStore,
      node: this.config.cluster.node,
      l4: this.tcpShared,
      routePhases: this.routePhases,
      kept: <T>(key: string, spec: unknown, build: () => T): T => this.listenerKept.get(key, spec, build) as T,
      storeErrorWarning: (consequence) => this.storeErrorWarning(consequence),
    };
  }

  private buildHandle(pc: PoolConfig, pool: Pool): PoolHandle {
    const limits: UpstreamPoolLimits = {
      maxIdlePerServer: pc.keepAlive.maxIdlePerServer,
      idleTimeoutMs: pc.keepAlive.idleTimeout,
      maxRequests: pc.keepAlive.maxRequests,
      readBuffer: pc.keepAlive.readBuffer,
    };
    const upstreams = this.upstreams;
    const tls = pc.tls === false ? undefined : UpstreamTls.fromConfig(pc.name, pc.tls, ['http/1.1']);
    const { factory, options } = balancerOf(pc);
    const requestKey = factory.requestKey?.(options);
    this.tcpShared.define(pc, requestKey !== undefined);
    return {
      pool,
      retries: pc.retries,
      connectTimeoutMs: pc.timeouts.connect,
      responseTimeoutMs: pc.timeouts.response,
      idleTimeoutMs: pc.timeouts.idle,
      retryAfterSec: 1,
      queueTimeoutMs: pc.queue.timeout,
      hashKey: requestKey === undefined ? undefined : hashKeyOf(requestKey),
      connections: (s: Server) => upstreams.of(s.id, limits, tls),
      persistence: this.persistenceOf(pc),
    };
  }

  /** The pool's persistence: the one it had while its `persistence` section is unchanged (stick tables survive a reload). */
  private persistenceOf(pc: PoolConfig): Persistence | undefined {
    const spec = pc.persistence;
    if (spec === false || spec.type === 'tls-session') {
      this.persistences.delete(pc.name);
      return undefined;
    }
    return this.persistences.get(pc.name, spec, () => {
      if (needsStateSecret(spec) && this.started) this.loadStateSecret();
      return createPersistence(pc.name, spec, {
        clock: this.clock,
        store: this.store,
        sharedStore: this.sharedStore,
        stateTokens: this.stateTokens,
        onStoreError: this.onStoreError,
      });
    });
  }

  /** The cookie secret kept in stateDir, loaded once when a pool needs it. */
  private loadStateSecret(): void {
    if (!this.stateTokens.hasSecret) this.stateTokens.setSecret(loadOrCreateSecret(this.config.stateDir));
  }

  /**
   * What uses the store carries on without it; say so (with what that means) at most every 10 s
   * per consequence.
   */
  private storeErrorWarning(consequence: string): (err: unknown) => void {
    return (err) => {
      const now = Date.now();
      if (now - (this.storeWarnedAt.get(consequence) ?? -Infinity) < 10_000) return;
      this.storeWarnedAt.set(consequence, now);
      this.log.warn(`state store failed; ${consequence}`, { error: err instanceof Error ? err.message : String(err) });
    };
  }

  private readonly onStoreError = this.storeErrorWarning('stick tables use their local entries only');

  async start(): Promise<void> {
    if (this.started) return;
    await this.runtime.loadJournal();
    if (this.config.pools.some((p) => p.persistence !== false && needsStateSecret(p.persistence))) this.loadStateSecret();
    this.started = true;
    const up: Service[] = [];
    try {
      for (const s of this.services) {
        await s.start();
        up.push(s);
      }
      if (this.admin !== undefined) this.log.info(`admin API on ${this.admin.url}/`);
      await this.runtime.settled(); // the first lists of discovery pools are in before the listeners accept
      for (const l of this.listeners) {
        await l.start().catch((err: unknown) => {
          throw listenFailure(`listener ${l.name}`, l.protocol, l.address, err);
        });
        up.push(l);
        this.log.info(`listener ${l.name} on ${l.protocol}://${fmtHost(l.address.host)}:${l.address.port}`);
      }
    } catch (err) {
      for (const s of up.reverse()) await s.stop(0);
      this.started = false;
      throw err;
    }
    this.sweepTimer = setInterval(() => this.tick(), 1000);
    this.sweepTimer.unref();
  }

  /** Once a second while started: idle upstream connections, and what the caches may no longer serve. */
  private tick(): void {
    const now = performance.now();
    this.upstreams.sweep(now);
    for (const c of this.caches.all()) c.prune(now);
  }

  async stop(graceMs = this.config.shutdownGrace): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await Promise.all(this.listeners.map((l) => l.stop(graceMs)));
    for (const s of [...this.services].reverse()) await s.stop(graceMs);
    for (const p of this.pools.values()) p.close();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.upstreams.closeAll();
    this.caches.close();
  }

  address(listener: string): { host: string; port: number } | undefined {
    return this.listeners.find((l) => l.name === listener)?.address;
  }
}

/** A server from its configuration; with `workers` processes its maxConnections is this one's share. */
export function buildServer(pool: string, sc: ServerConfig, workers = 1): Server {
  const meta: Record<string, string> = {};
  if (sc.url !== undefined) meta.url = sc.url;
  if (sc.dnsAddress !== undefined) meta.dnsAddress = sc.dnsAddress;
  if (sc.site !== undefined) meta.site = sc.site;
  if (sc.region !== undefined) meta.region = sc.region;
  return Object.freeze({
    id: serverId(pool, sc.name),
    name: sc.name,
    host: sc.address.host,
    port: sc.address.port,
    weight: sc.weight,
    backup: sc.backup,
    maxConnections: limitShare(sc.maxConnections, workers),
    meta: Object.freeze(meta),
  });
}

/** A pool from its configuration; with `workers` processes its servers' and queue's limits are this one's share. */
export function buildPool(pc: PoolConfig, clock: Clock, rng: Rng, workers = 1): Pool {
  const { factory, options } = balancerOf(pc);
  return new Pool(
    {
      name: pc.name,
      factory,
      balancerOptions: options,
      rng,
      clock,
      panicThresholdPct: pc.panicThreshold,
      slowStartMs: pc.slowStart,
      queueMax: limitShare(pc.queue.max, workers),
    },
    // With active checks a server is `starting` (available) until its first probe decides.
    pc.servers.map((sc) => ({ server: buildServer(pc.name, sc, workers), admin: sc.state, op: initialOp(pc) })),
  );
}

/** The balancer of a pool: its factory from the registry and its parsed options. */
function balancerOf(pc: PoolConfig): { factory: BalancerFactory<any>; options: unknown } {
  const factory = getBalancer(pc.balance);
  if (factory === undefined) throw new Error(`unknown balance ${pc.balance}`);
  return { factory, options: factory.parseOptions(balancerOptionsOf(pc)) };
}

/** With active checks a server is `starting` (available) until its first probe decides. */
function initialOp(pc: PoolConfig): OpState {
  return pc.health.type === 'none' ? 'up' : 'starting';
}

function fmtHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}

/** admin.timeouts in the admin server's terms (durations in ms). */
function adminTimeouts(a: Config['admin']): AdminTimeouts {
  return { headerMs: a.timeouts.header, bodyMs: a.timeouts.body, keepAliveMs: a.timeouts.keepAlive };
}

/** Paths readable without the token besides the readiness check when admin.protectReads is on. */
function adminOpenReads(a: Config['admin']): string[] {
  return a.metricsOpen ? ['/metrics'] : [];
}
