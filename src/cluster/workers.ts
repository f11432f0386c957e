import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { ConfigError } from '../config/errors.js';
import type { Config, PoolConfig, ServerConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Rng } from '../core/rng.js';
import type { Server } from '../core/server.js';
import { systemClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { createHealthMonitor } from '../health/from-config.js';
import type { HealthMonitor } from '../health/health-monitor.js';
import { createLogger, isLevelLogger, setLogFormat, setProcessTag, type Logger } from '../observability/logger.js';
import { loadOrCreateSecret, needsStateSecret } from '../persistence/index.js';
import type { Pool } from '../pool/pool.js';
import type { StateStore } from '../store/state-store.js';
import { MemoryStore } from '../store/memory-store.js';
import { Channel, type IpcPort } from './ipc.js';
import { serveStore, WorkerStore } from './workers-store.js';
import { KernelHub, KernelLink } from './workers-kernel.js';
import { notifyReady } from './systemd-notify.js';
import { mountWorkerUpgrade, Upgrader } from './upgrade.js';
import { attachWorkerStats, WorkersStatsHub, WorkerStatsClient, type StatsPortico } from './workers-stats.js';
import { CONFIG_CHANNEL, PrimaryConfig, WorkerLink, type ConfigDown, type ConfigUp, type LinkedPortico, type ReloadNote, type ReloadReply, type ServerOp, type StartConfig } from './workers-config.js';

/**
 * `cluster.workers: N`: N worker processes behind the same listening sockets (node:cluster; with
 * `cluster.accept: primary` the primary accepts and hands connections to the workers in turn, with
 * `shared` every worker accepts from the listening socket itself). The primary runs no listener:
 * it runs the active health checks once and sends every change of a server's state to every
 * worker, holds the StateStore of the workers (stick tables, rate-limit counters, runtime
 * changes; unless `cluster.store` is Redis, which each worker then uses itself), replaces a
 * worker that dies, and passes SIGHUP on to every worker. SIGUSR2 upgrades: new workers from
 * the code on disk, then the old ones drain (src/cluster/upgrade.ts).
 */

/** What a worker runs: a Portico (src/app), as far as the workers need it. */
export interface WorkerPortico extends StatsPortico, LinkedPortico {
  readonly config: Config;
  stop(): Promise<void>;
}

/**
 * What the processes are built with, given by the composition root (src/cli/main.ts), which
 * this module, below it, does not import.
 */
export interface WorkersDeps<P extends WorkerPortico> {
  /** A Portico from a loaded configuration, with these options (createPortico). */
  createPortico(
    config: Config,
    options: { configFile: string; probes: 'external'; discovery: 'external'; store?: StateStore; configSource?: (() => Config) | undefined; workers: number; reloadAll: () => Promise<unknown> },
  ): P;
  /** A pool as Portico builds it from its configuration, for the primary's checks. */
  buildPool(pc: PoolConfig, clock: Clock, rng: Rng): Pool;
  /** A server as Portico builds it from its configuration (a discovered server joining the primary's checks). */
  buildServer(pool: string, sc: ServerConfig): Server;
  /** Start, and stop gracefully on SIGTERM/SIGINT. */
  runUntilSignal(p: P): Promise<void>;
}

/** The number of worker processes for `cluster.workers`. */
export function workerCount(w: number | 'auto'): number {
  return w === 'auto' ? availableParallelism() : w;
}


/** The active health checks of every pool, run once for all workers. */
class HealthHub {
  private pools: Pool[] = [];
  private monitors: HealthMonitor[] = [];
  private readonly rng = new SeededRng((Date.now() ^ process.pid) >>> 0);
  /** Per server id: the probes' last change (its state and why), so that a worker that starts later logs the same. */
  private readonly lastChange = new Map<string, { readonly op: string; readonly detail: string | undefined }>();
  /** Told of each monitor made (the workers' statistics count and forward its results). */
  onMonitor: ((m: HealthMonitor) => void) | undefined;

  constructor(
    private readonly send: (m: ServerOp) => void,
    private readonly buildPool: (pc: PoolConfig, clock: Clock, rng: Rng) => Pool,
  ) {}

  /** Each probed pool's probe status (the admin API's probe details). */
  probes(): Record<string, ReturnType<HealthMonitor['status']>> {
    const out: Record<string, ReturnType<HealthMonitor['status']>> = {};
    for (let i = 0; i < this.pools.length; i++) out[this.pools[i]!.name] = this.monitors[i]!.status();
    return out;
  }

  async apply(config: Config): Promise<void> {
    await this.stop();
    for (const pc of config.pools) {
      if (pc.health.type === 'none') continue;
      const pool = this.buildPool(pc, systemClock, this.rng);
      const monitor = createHealthMonitor(pool, pc.health, this.rng);
      if (monitor === undefined) {
        pool.close();
        continue;
      }
      pool.onEvent((ev) => {
        if (ev.kind !== 'op') return;
        this.lastChange.set(`${ev.pool}/${ev.server}`, { op: ev.to, detail: ev.detail });
        this.send({ pool: ev.pool, server: ev.server, op: ev.to as ServerOp['op'], detail: ev.detail });
      });
      this.pools.push(pool);
      this.monitors.push(monitor);
      this.onMonitor?.(monitor);
    }
    for (const m of this.monitors) await m.start();
  }

  /** The checks' pool of a name (undefined: none, or no active checks). */
  pool(name: string): Pool | undefined {
    return this.pools.find((p) => p.name === name);
  }

  /** Why a probed server is in its state now (the detail of the probes' last change to it), if known. */
  detailOf(pool: string, server: string, op: string): string | undefined {
    const c = this.lastChange.get(`${pool}/${server}`);
    return c !== undefined && c.op === op ? c.detail : undefined;
  }

  /** Every probed server's state and its detail, for a worker that has just started. */
  snapshot(): ServerOp[] {
    const out: ServerOp[] = [];
    for (const pool of this.pools) {
      for (const rt of pool) {
        const server = rt.server.id.slice(pool.name.length + 1);
        out.push({ pool: pool.name, server, op: rt.op, detail: this.detailOf(pool.name, server, rt.op) });
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    for (const m of this.monitors) await m.stop(0);
    for (const p of this.pools) p.close();
    this.monitors = [];
    this.pools = [];
    this.lastChange.clear();
  }
}

/**
 * Run as the primary of `n` workers until SIGTERM/SIGINT; each worker runs `configFile`, or the
 * etcd document that `primaryConfig` watches and hands to the workers (src/cluster/workers-config.ts).
 */
export async function runPrimary(
  configFile: string,
  config: Config,
  n: number,
  log: Logger,
  buildPool: (pc: PoolConfig, clock: Clock, rng: Rng) => Pool,
  primaryConfig: PrimaryConfig,
): Promise<void> {
  // The cookie secret is made once, before the workers start, so that they all sign alike.
  if (config.pools.some((p) => p.persistence !== false && needsStateSecret(p.persistence))) loadOrCreateSecret(config.stateDir);
  const store = config.cluster.store === 'memory' ? new MemoryStore() : undefined;
  /** Each live worker's configuration channel (server states, lists, versions, reloads). */
  const workers = new Map<Worker, Channel<ConfigDown, ConfigUp>>();
  const hub = new HealthHub((m) => {
    for (const ch of workers.values()) ch.notify('op', m);
  }, buildPool);
  const stats = new WorkersStatsHub(() => hub.probes());
  // Kernel listeners: the workers' nft and conntrack commands run here, one worker writes (workers-kernel.ts).
  const kernel = new KernelHub(log, () => primaryConfig.current);
  stats.serveDiscovery(() => primaryConfig.discoveryStatus());
  hub.onMonitor = (m) => void stats.watch(m);
  let stopping = false;
  /** Set once every worker has started: before that, a worker that cannot start ends the group. */
  let anyReady = false;
  let readyAtStart = 0;
  const recentDeaths: number[] = [];
  // Who accepts (cluster.accept): fixed by node:cluster at the first setupPrimary/fork.
  cluster.schedulingPolicy = config.cluster.accept === 'shared' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  cluster.setupPrimary({ serialization: 'advanced' });

  const fork = (): Worker => {
    // PORTICO_WORKERS: how many processes share the limits (each enforces its share, src/core/limit-share.ts).
    const w = cluster.fork({ PORTICO_WORKER: '1', PORTICO_WORKERS: String(n) });
    const port = primaryPort(w);
    const ch = new Channel<ConfigDown, ConfigUp>(port, CONFIG_CHANNEL);
    workers.set(w, ch);
    const unserve = store === undefined ? undefined : serveStore(store, port);
    const unstats = stats.add(w.id, port);
    const unconfig = primaryConfig.serve(ch);
    const unupgrade = upgrader.serve(port);
    const unkernel = kernel.serve(w.id, port);
    ch.on('ready', () => {
      // A worker an upgrade started: it accepts now.
      upgrader.ready(w);
      // The first time every worker of the group is up: systemd is told (Type=notify).
      if (!anyReady && ++readyAtStart === n) notifyReady(log);
      if (readyAtStart >= n) anyReady = true;
      for (const s of hub.snapshot()) ch.notify('op', s);
    })
      .handle('reload', ({ ask }) => reloadAll(`POST /api/v1/reload through worker ${w.process.pid}`, { w, ask }))
      .handle('fatal', ({ error }) => {
        // A worker an upgrade started that cannot: the upgrade fails, the running workers go on.
        if (!upgrader.gone(w, `could not start: ${error.trim()}`)) startFailed(error);
      });
    w.on('exit', (code, signal) => {
      workers.delete(w);
      ch.close('the worker exited');
      unserve?.();
      unstats();
      unconfig();
      unupgrade();
      unkernel();
      if (stopping) return;
      // A worker an upgrade started or drained: the upgrade takes it (no other is started for it).
      if (upgrader.gone(w, `exited while starting (${signal ?? `code ${code}`})`)) {
        log.info(`worker ${w.process.pid} exited (${signal ?? `code ${code}`})`);
        return;
      }
      // Before any worker has started, one that dies will die again: the group ends, as one process would.
      if (!anyReady) return startFailed(`portico: worker ${w.process.pid} exited while starting (${signal ?? `code ${code}`})`);
      const now = Date.now();
      recentDeaths.push(now);
      while (recentDeaths.length > 0 && recentDeaths[0]! < now - 10_000) recentDeaths.shift();
      // A worker that keeps dying at once is replaced after a pause, not in a tight loop.
      const delayMs = recentDeaths.length > n * 3 ? 5000 : 0;
      log.warn(`worker ${w.process.pid} exited (${signal ?? `code ${code}`}); starting another${delayMs > 0 ? ` in ${delayMs} ms` : ''}`);
      setTimeout(() => {
        if (!stopping) fork();
      }, delayMs);
    });
    return w;
  };
  const upgrader = new Upgrader(
    {
      size: n,
      running: () => [...workers.keys()].filter((w) => !upgrader.isStarting(w)),
      fork,
      reload: (why) => reloadAll(why),
      drain: (w) => void w.process.kill('SIGTERM'),
      stopping: () => stopping,
      timeoutMs: () => primaryConfig.current.cluster.upgradeTimeout,
    },
    log,
  );

  // As in a single process: a fault is logged, and the primary (which holds the sockets) goes on.
  process.on('uncaughtException', (err) => log.error('uncaught exception (process continues)', { error: String(err?.stack ?? err) }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection (process continues)', { error: String(err) }));
  // Discovery runs here, once: the checks probe the discovered servers (PrimaryConfig sends the lists).
  primaryConfig.checks = (name) => hub.pool(name);
  primaryConfig.detailOf = (pool, server, op) => hub.detailOf(pool, server, op);
  await hub.apply(await primaryConfig.discover(config));
  // A new version from etcd: discovery and checks first, then every worker (PrimaryConfig sends it).
  primaryConfig.onVersion = async (next) => {
    if (isLevelLogger(log)) log.setLevel(next.log.level);
    setLogFormat(next.log.format);
    if (workerCount(next.cluster.workers) !== n) log.warn(`cluster.workers changed: a restart applies it (${n} workers run)`);
    if (next.cluster.accept !== config.cluster.accept) log.warn(`cluster.accept changed: a restart applies it (connections accepted as '${config.cluster.accept}')`);
    await hub.apply(await primaryConfig.discover(next));
  };
  /**
   * Reload every worker: the configuration read (or the etcd document taken again) and validated
   * here, once. Invalid: refused here alone, with every error; no worker is told. Valid: applied
   * to the discovery and the checks, then every worker applies the same version. `ask`: the
   * worker whose admin API asked, answered with its own result (or the refusal).
   */
  const reloadAll = async (why: string, asker?: { w: Worker; ask: number }): Promise<ReloadReply> => {
    if (stopping) return { ok: false, error: 'Portico is stopping' };
    log.info(`${why}: reloading the configuration in the primary and every worker`);
    // The asking worker is answered (the reply); every other records the refusal (its status shows the last reload), without logging it.
    const refuse = (r: ReloadReply & { ok: false }, errors: readonly string[]): ReloadReply => {
      for (const [w, ch] of workers) if (w !== asker?.w) ch.notify('refused', { errors });
      return r;
    };
    let next: Config;
    try {
      next = primaryConfig.reread();
    } catch (err) {
      // Refused here, once: the workers are not told to reload, and keep what they run.
      const errors = err instanceof ConfigError ? err.lines() : [String(err)];
      log.error('reload refused; the running configuration stays in every worker', { errors });
      return refuse(err instanceof ConfigError ? { ok: false, issues: err.issues } : { ok: false, error: String(err) }, errors);
    }
    // The primary's own lines follow log.level, as a single process's do.
    if (isLevelLogger(log)) log.setLevel(next.log.level);
    setLogFormat(next.log.format);
    if (workerCount(next.cluster.workers) !== n) log.warn(`cluster.workers changed: a restart applies it (${n} workers run)`);
    if (next.cluster.accept !== config.cluster.accept) log.warn(`cluster.accept changed: a restart applies it (connections accepted as '${config.cluster.accept}')`);
    // The workers apply the version validated here (a file read once; from etcd, the document they hold).
    const m: ReloadNote = { config: primaryConfig.fromEtcd ? undefined : next };
    try {
      await hub.apply(await primaryConfig.discover(next));
    } catch (err) {
      log.error('reload: the health checks could not be rebuilt', { error: String(err) });
      const error = `the health checks could not be rebuilt: ${String(err)}`;
      return refuse({ ok: false, error }, [error]);
    }
    // The note reaches the asker before this reply; it answers the worker's reloadAll once applied.
    for (const [w, ch] of workers) ch.notify('reload', w === asker?.w ? { ...m, ask: asker.ask } : m);
    return { ok: true };
  };
  process.on('SIGHUP', () => void reloadAll('SIGHUP'));
  /**
   * A worker could not start (a listener that cannot bind, a certificate that does not load ...):
   * its message, once, then the whole group ends with status 1, as a single process does.
   */
  const startFailed = (message: string): void => {
    if (stopping) return;
    process.stderr.write(message.endsWith('\n') ? message : message + '\n');
    stop(undefined, 1);
  };
  /** Stop every worker, then exit with `code`; `sig` (undefined: a failed start, already told) is logged. */
  const stop = (sig: string | undefined, code = 0): void => {
    if (stopping) return;
    stopping = true;
    if (sig !== undefined) log.info(`${sig}: stopping ${workers.size} workers; in-flight requests get up to ${config.shutdownGrace} ms`);
    for (const w of workers.keys()) w.process.kill('SIGTERM');
    const deadline = setTimeout(() => {
      for (const w of workers.keys()) w.process.kill('SIGKILL');
    }, config.shutdownGrace + 5000);
    const done = (): void => {
      if (workers.size > 0) return;
      clearTimeout(deadline);
      void Promise.all([hub.stop(), primaryConfig.stop(), kernel.stop()]).then(() => {
        if (sig !== undefined) log.info('stopped');
        process.exit(code);
      });
    };
    cluster.on('exit', done);
    done();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR2', () => void upgrader.upgrade('SIGUSR2'));
  process.title = 'portico: primary';
  log.info(`primary ${process.pid}: ${n} workers (connections accepted by ${config.cluster.accept === 'shared' ? 'the workers' : 'the primary'})`);
  for (let i = 0; i < n; i++) fork();
  await primaryConfig.watch();
}

/**
 * A worker: the whole of Portico with its listeners (their sockets are the primary's), without
 * active checks (the primary's results arrive over IPC), with the primary's store.
 */
export function createWorkerPortico<P extends WorkerPortico>(configFile: string, config: Config, deps: WorkersDeps<P>, link: WorkerLink): P {
  const port = workerPort();
  const store = config.cluster.store === 'memory' ? new WorkerStore(port) : undefined;
  // Kernel listeners: nft and conntrack run in the primary; this worker writes only when chosen.
  const kernel = new KernelLink(port);
  // A stopping worker writes no more. A listener of its own must not take away the signal's
  // default (the end of the process) while the worker has not yet installed its handlers: then it
  // steps aside and raises the signal again.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    const onSignal = (): void => {
      kernel.leave();
      if (process.listenerCount(sig) > 1) return;
      process.off(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.prependListener(sig, onSignal);
  }
  // What the primary sends (configuration versions, server lists and states, reloads) reaches it through `link`.
  const portico = deps.createPortico(config, { configFile, probes: 'external', discovery: 'external', configSource: link.source, workers: workersOfGroup(), reloadAll: () => link.reloadAll(), ...(store === undefined ? {} : { store }) });
  attachWorkerStats(portico, new WorkerStatsClient(port, () => portico.config.cluster.statsTimeout));
  if (portico.admin !== undefined) mountWorkerUpgrade(portico.admin.router, port, () => portico.config.cluster.upgradeTimeout);
  // Without its primary a worker has no sockets and no probes: it stops.
  process.once('disconnect', () => {
    kernel.leave();
    void portico.stop().finally(() => process.exit(0));
  });
  return portico;
}

/** In a worker: how many workers the primary runs (they share every connection and queue limit). */
function workersOfGroup(): number {
  const n = Number(process.env['PORTICO_WORKERS']);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** The IPC channel to the primary, as a worker sees it. */
function workerPort(): IpcPort {
  return {
    send: (m) => void process.send!(m),
    onMessage: (fn) => {
      process.on('message', fn);
      return () => void process.off('message', fn);
    },
    onClose: (fn) => {
      process.once('disconnect', fn);
      return () => void process.off('disconnect', fn);
    },
  };
}

/** The IPC channel to worker `w`, as the primary sees it; it closes when the worker exits. */
function primaryPort(w: Worker): IpcPort {
  return {
    send: (m) => void w.send(m as Parameters<Worker['send']>[0]),
    onMessage: (fn) => {
      w.on('message', fn);
      return () => void w.off('message', fn);
    },
    onClose: (fn) => {
      w.once('exit', fn);
      return () => void w.off('exit', fn);
    },
  };
}

/** True in a process forked by the primary of `cluster.workers`. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/**
 * Run as a worker (see isWorkerProcess): the configuration is the primary's etcd document, or the
 * file. A worker that cannot start tells its primary why (`report`: the lines a single process
 * would print) and exits 1; the primary ends the group.
 */
export async function startWorker<P extends WorkerPortico>(configFile: string, deps: WorkersDeps<P>, report: (err: unknown) => string): Promise<void> {
  const id = cluster.worker?.id ?? process.pid;
  process.title = `portico: worker ${id}`;
  // Every worker logs what it sees (a server's state, a listener): each line says which worker.
  setProcessTag(`worker ${id}`);
  let link: WorkerLink | undefined;
  try {
    link = new WorkerLink(workerPort());
    await link.ready();
    const portico = createWorkerPortico(configFile, link.load(configFile), deps, link);
    await link.attach(portico); // the discovered servers are in before the listeners accept
    await deps.runUntilSignal(portico);
  } catch (err) {
    // The primary answers once it has the message (or the call times out): then exit.
    if (link !== undefined && process.connected) await link.fatal(report(err)).catch(() => undefined);
    else process.stderr.write(report(err));
    process.exit(1);
  }
  link.started();
}

/**
 * `portico start` with `cluster.workers` above 1: run as the primary of the workers and return
 * true; false when this process is to run Portico alone (one worker).
 */
export async function startPrimary<P extends WorkerPortico>(configFile: string, start: StartConfig, deps: WorkersDeps<P>): Promise<boolean> {
  const n = workerCount(start.config.cluster.workers);
  if (n <= 1) return false;
  setLogFormat(start.config.log.format);
  const log = createLogger(start.config.log.level);
  await runPrimary(configFile, start.config, n, log, deps.buildPool, new PrimaryConfig(configFile, start, log, deps.buildServer));
  return true;
}
