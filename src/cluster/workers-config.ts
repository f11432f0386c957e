import { deepFreeze } from '../config/deep-freeze.js';
import { ConfigError, type ConfigIssue } from '../config/errors.js';
import { loadConfigFile } from '../config/load.js';
import type { Config, PoolConfig, ServerConfig } from '../config/types.js';
import { serverId, type OpState, type Server } from '../core/server.js';
import { createDiscovery } from '../discovery/from-config.js';
import { discoveryStatus, type DiscoveryStatus } from '../discovery/status.js';
import { DiscoveryWatcher } from '../discovery/watcher.js';
import { createLogger, setLogFormat, type Logger } from '../observability/logger.js';
import type { Pool } from '../pool/pool.js';
import { EtcdConfigSource } from './etcd-config.js';
import { Channel, IpcTimeoutError, type IpcPort } from './ipc.js';

/**
 * What the processes of `cluster.workers` run, decided once, in the primary:
 *
 * - **The configuration.** With a file, every process reads the file (a worker at start and on
 *   each reload). With `cluster.config: etcd://...` only the primary watches etcd
 *   (EtcdConfigSource: validated, last good kept and cached in stateDir): it hands the
 *   validated document to each worker when the worker starts, and every valid new version to
 *   every worker. An invalid version is refused once, in the primary; the workers never see it.
 * - **The discovered servers.** The primary runs the discovery of every pool (one watcher per
 *   source, not one per worker); its health checks probe the discovered servers; each new list
 *   goes to every worker once the new servers' first probes have decided, with the servers'
 *   states. A worker that starts gets every list before its listeners accept.
 *
 * A worker applies what the primary sends in the order it was sent: configuration versions,
 * server lists, server states, reloads (WorkerLink).
 */

/** The configuration to start with, and the etcd document's source when there is one. */
export interface StartConfig {
  readonly config: Config;
  readonly source: EtcdConfigSource | undefined;
}

/**
 * Read `file`; when it points at etcd (`cluster.config`), load the document (or its last good
 * copy). Throws a ConfigError with every problem.
 */
export async function loadStartConfig(file: string): Promise<StartConfig> {
  const config = loadConfigFile(file);
  // The process log's format from the first line on (a reload applies a new one).
  setLogFormat(config.log.format);
  if (config.cluster.config === 'file') return { config, source: undefined };
  const log = createLogger(config.log.level);
  const source = new EtcdConfigSource({ url: config.cluster.config, stateDir: config.stateDir, log });
  const doc = await source.load();
  // Every key comes from the document, cluster.workers too: say so when the file asks for another number.
  if (config.cluster.workers !== 'auto' && config.cluster.workers !== doc.cluster.workers) {
    log.warn(`cluster.workers of ${file} (${config.cluster.workers}) is not used: the etcd document's applies (${doc.cluster.workers})`);
  }
  return { config: doc, source };
}

// ---- messages -----------------------------------------------------------------------------

/** A server's observed state, primary → workers (also sent by the health checks of workers.ts). */
export interface ServerOp {
  readonly pool: string;
  readonly server: string;
  readonly op: OpState;
  readonly detail?: string | undefined;
}
/** The servers a worker runs in one pool. */
interface RunningPool {
  readonly pool: string;
  readonly servers: readonly ServerConfig[];
}
/** One discovery pool's servers and, where the primary probes them, their states. */
interface ServerList {
  readonly pool: string;
  readonly servers: readonly ServerConfig[];
  readonly ops: readonly ServerOp[];
}
/**
 * What a worker runs: the etcd document (undefined: the worker reads the file) and the list of
 * every discovery pool. The answer to the worker's `config` request, and each new etcd version.
 */
interface RunWhat {
  readonly config: Config | undefined;
  readonly lists: readonly ServerList[];
}
/**
 * Reload, on SIGHUP: the configuration the primary read and validated (undefined: the primary's
 * etcd document, sent before, stays).
 */
export interface ReloadNote {
  readonly config: Config | undefined;
  /** The `reload` request of the worker that asked for this reload, in the note to that worker. */
  readonly ask?: number | undefined;
}
/** The primary's answer to a worker's `reload` request: the reload goes to every worker, or is refused with why. */
export type ReloadReply = { readonly ok: true } | { readonly ok: false; readonly issues?: readonly ConfigIssue[] | undefined; readonly error?: string | undefined };

/** What a worker asks the primary, and tells it. */
export type ConfigUp = {
  calls: {
    /** What to run (asked once, at start). */
    config: { req: undefined; res: RunWhat };
    /** A reload through this worker's admin API, for every worker; `ask` comes back in the ReloadNote to this worker. */
    reload: { req: { ask: number }; res: ReloadReply };
    /** The worker could not start: the lines a single process would print; the primary ends the group. */
    fatal: { req: { error: string }; res: void };
    /**
     * The servers this worker runs in its static pools with active checks, after each change of
     * its running configuration (servers registered through the admin API are in no file): the
     * primary's checks probe them. Answered with the states the checks have decided for them.
     */
    running: { req: { pools: readonly RunningPool[] }; res: readonly ServerOp[] };
  };
  notes: {
    /** The worker started, or reloaded: it wants every server's state. */
    ready: undefined;
  };
};

/** What the primary tells a worker, applied in the order sent. */
export type ConfigDown = {
  calls: Record<never, never>;
  notes: {
    /** A new etcd version. */
    config: RunWhat;
    servers: ServerList;
    op: ServerOp;
    reload: ReloadNote;
    /** A reload the primary refused (told to every worker but the one that asked): recorded as the last reload, not logged. */
    refused: { readonly errors: readonly string[] };
  };
};

/** The channel's name on a worker's IPC port. */
export const CONFIG_CHANNEL = 'config';

// ---- the primary ------------------------------------------------------------------------------

/** One watched source. */
interface Watched {
  readonly spec: string;
  readonly config: PoolConfig['discovery'];
  readonly watcher: DiscoveryWatcher;
}

/** The primary's side: the configuration and the server lists the workers run, and their changes. */
export class PrimaryConfig {
  private readonly workers = new Set<Channel<ConfigDown, ConfigUp>>();
  /**
   * A valid new version from etcd (not called for a file): the primary applies it to its own
   * part (discovery, health checks) and resolves; then every worker gets it.
   */
  onVersion: ((config: Config) => Promise<void>) | undefined;
  /** The primary's pool of a name, as its health checks run it (undefined: that pool has no active checks). */
  checks: ((pool: string) => Pool | undefined) | undefined;
  /** Why a probed server is in state `op` (the detail of the checks' last change to it), if known. */
  detailOf: ((pool: string, server: string, op: string) => string | undefined) | undefined;
  private last: Config | undefined;
  /** What discover() was last given. */
  private running: Config | undefined;
  private readonly watched = new Map<string, Watched>();
  private readonly lists = new Map<string, readonly ServerConfig[]>();
  /** Per pool: the list being applied (new lists of one pool are applied in turn). */
  private readonly applying = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(
    private readonly file: string,
    private readonly start: StartConfig,
    private readonly log: Logger,
    private readonly buildServer: (pool: string, sc: ServerConfig) => Server,
  ) {
    const source = start.source;
    if (source !== undefined) source.onUpdate = () => this.newVersion(source.current!);
  }

  /** What runs now: the last good etcd document, or the file as last read. */
  get current(): Config {
    return this.start.source?.current ?? this.last ?? this.start.config;
  }

  /** True when the configuration is the etcd document (the workers hold it), false for a file. */
  get fromEtcd(): boolean {
    return this.start.source !== undefined;
  }

  /** Watch etcd (nothing for a file). */
  async watch(): Promise<void> {
    await this.start.source?.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.start.source?.stop();
    for (const w of this.watched.values()) await w.watcher.stop();
    this.watched.clear();
  }

  /**
   * SIGHUP: the file read again, or (from etcd) the last good document again. Throws the
   * file's ConfigError.
   */
  reread(): Config {
    if (this.start.source !== undefined) return this.current;
    this.last = loadConfigFile(this.file);
    return this.last;
  }

  /**
   * Run the discovery of `config`'s pools (a source whose section is unchanged keeps running;
   * a new one is waited for, up to 5 s, for its first list) and resolve with `config` with the
   * discovered servers in place of each discovery pool's (empty) servers: what the checks probe.
   */
  async discover(config: Config): Promise<Config> {
    this.running = config;
    const wanted = new Map<string, PoolConfig>();
    for (const pc of config.pools) if (pc.discovery.type !== 'static') wanted.set(pc.name, pc);
    for (const [name, w] of this.watched) {
      const pc = wanted.get(name);
      if (pc !== undefined && JSON.stringify(pc.discovery) === w.spec) continue;
      this.watched.delete(name);
      await w.watcher.stop();
      // The last list stays until the new source gives its first (as in one process).
      if (pc === undefined) this.lists.delete(name);
    }
    const starting: Promise<void>[] = [];
    for (const [name, pc] of wanted) {
      if (this.watched.has(name) || this.stopped) continue;
      const provider = createDiscovery(pc.discovery, { warn: (m) => this.log.warn(m) });
      if (provider === undefined) continue;
      const watcher = new DiscoveryWatcher(provider, { onServers: (servers) => this.newList(name, servers), log: this.log });
      this.watched.set(name, { spec: JSON.stringify(pc.discovery), config: pc.discovery, watcher });
      starting.push(watcher.start());
    }
    await Promise.all(starting);
    return this.over(config);
  }

  /** The status of every pool's discovery (the admin API and metrics of the workers show it). */
  discoveryStatus(): Record<string, DiscoveryStatus> {
    const out: Record<string, DiscoveryStatus> = {};
    for (const [name, w] of this.watched) out[name] = discoveryStatus(w.config, w.watcher.state);
    return out;
  }

  /** `config` with each discovery pool's last list as its servers. */
  private over(config: Config): Config {
    if (!config.pools.some((pc) => this.lists.has(pc.name) && pc.discovery.type !== 'static')) return config;
    const pools = config.pools.map((pc) => {
      const servers = this.lists.get(pc.name);
      return servers === undefined || pc.discovery.type === 'static' ? pc : { ...pc, servers: [...servers] };
    });
    return { ...config, pools };
  }

  /** Answer one worker's requests for what it runs, and send it every change, until the returned function is called. */
  serve(ch: Channel<ConfigDown, ConfigUp>): () => void {
    this.workers.add(ch);
    ch.handle('config', () => ({ config: this.start.source === undefined ? undefined : this.current, lists: this.listMessages() }));
    ch.handle('running', ({ pools }) => this.workerServers(pools));
    return () => void this.workers.delete(ch);
  }

  /**
   * A worker's servers of its static pools with active checks (with those registered or
   * deregistered through the admin API, which the file does not say): the checks' pools follow,
   * so that every server is probed however it arrived. The workers share their runtime changes,
   * so their lists agree once each has applied the same changes; the last one told is kept (a
   * reload rebuilds the checks from the file, and every worker tells its lists again once it
   * has reloaded). The states already decided are the answer.
   */
  private workerServers(pools: readonly RunningPool[]): ServerOp[] {
    const out: ServerOp[] = [];
    for (const { pool, servers } of pools) {
      const pc = this.running?.pools.find((x) => x.name === pool);
      const p = this.checks?.(pool);
      if (pc === undefined || p === undefined || pc.discovery.type !== 'static' || pc.health.type === 'none') continue;
      this.reconcile(p, servers, 'admin');
      out.push(...this.opsOf(pool));
    }
    return out;
  }

  private async newVersion(config: Config): Promise<void> {
    try {
      await this.onVersion?.(config);
    } catch (err) {
      this.log.error('etcd configuration: the primary could not apply the new version; the workers get it all the same', { error: err instanceof Error ? err.message : String(err) });
    }
    const m: RunWhat = { config, lists: this.listMessages() };
    for (const ch of this.workers) ch.notify('config', m);
  }

  private listMessages(): ServerList[] {
    return [...this.lists].map(([pool, servers]) => ({ pool, servers, ops: this.opsOf(pool) }));
  }

  /** The states of a pool's servers as the checks see them (those not decided yet are left out). */
  private opsOf(pool: string): ServerOp[] {
    const p = this.checks?.(pool);
    if (p === undefined) return [];
    const out: ServerOp[] = [];
    for (const rt of p) if (rt.op !== 'starting') out.push({ pool, server: rt.server.name, op: rt.op, detail: this.detailOf?.(pool, rt.server.name, rt.op) });
    return out;
  }

  /** A discovery pool's new list: into the checks' pool, then (its new servers probed once) to every worker. */
  private newList(pool: string, servers: readonly ServerConfig[]): void {
    this.lists.set(pool, servers);
    const prev = this.applying.get(pool) ?? Promise.resolve();
    const next = prev.then(() => this.applyList(pool, servers));
    this.applying.set(pool, next);
    void next.finally(() => {
      if (this.applying.get(pool) === next) this.applying.delete(pool);
    });
  }

  private async applyList(pool: string, servers: readonly ServerConfig[]): Promise<void> {
    if (this.lists.get(pool) !== servers) return; // a newer list follows
    const p = this.checks?.(pool);
    const pc = this.running?.pools.find((x) => x.name === pool);
    if (p !== undefined && pc !== undefined && pc.health.type !== 'none') {
      const added = this.reconcile(p, servers, 'discovery');
      await decided(p, added, pc.health.timeout + 1000);
    }
    const m: ServerList = { pool, servers, ops: this.opsOf(pool) };
    for (const ch of this.workers) ch.notify('servers', m);
  }

  /**
   * Make the checks' pool hold `servers` (kept servers keep their state and take their admin
   * state: one in maint is not probed); the names added.
   */
  private reconcile(p: Pool, servers: readonly ServerConfig[], cause: 'discovery' | 'admin'): string[] {
    const added: string[] = [];
    const wanted = new Set<string>();
    for (const sc of servers) {
      wanted.add(sc.name);
      const server = this.buildServer(p.name, sc);
      const rt = p.byName(sc.name);
      if (rt === undefined) {
        p.add(server, sc.state, 'starting', cause);
        added.push(sc.name);
      } else if (rt.server.host !== server.host || rt.server.port !== server.port) {
        // Another address: another server as far as its health goes.
        p.remove(sc.name, cause);
        p.add(server, sc.state, 'starting', cause);
        added.push(sc.name);
      } else {
        p.update(server, cause);
        p.setAdmin(sc.name, sc.state, cause);
      }
    }
    for (const rt of [...p]) if (!wanted.has(rt.server.name)) p.remove(rt.server.name, cause);
    return added;
  }
}

/** Resolves once none of `names` is `starting` in `pool` any more (its first probe decided), or after `ms`. */
function decided(pool: Pool, names: readonly string[], ms: number): Promise<void> {
  const pending = (): boolean => names.some((n) => pool.byName(n)?.op === 'starting');
  if (!pending()) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      off();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const off = pool.onEvent(() => {
      if (!pending()) done();
    });
  });
}

// ---- a worker -------------------------------------------------------------------------------

/** What a worker's link to the primary changes: its Portico. */
export interface LinkedPortico {
  readonly pools: ReadonlyMap<string, Pick<Pool, 'setOp'>>;
  /** What runs (the file or document, with the runtime changes and discovered lists). */
  readonly config: Config;
  /** Told of each new running configuration (app.ts: Portico.onConfig). */
  onConfig(fn: (config: Config) => void): () => void;
  reload(): Promise<unknown>;
  /** A reload the primary refused: recorded as the last reload (the status shows it), not logged. */
  reloadRefused(errors: readonly string[]): void;
  setDiscovered(pool: string, servers: readonly ServerConfig[]): Promise<void>;
}

/**
 * A worker's side. Created first thing in the worker: it asks the primary for what to run
 * (ready()) and keeps, in order, every message that comes; attach() applies them to the worker's Portico,
 * then each as it comes.
 */
export class WorkerLink {
  /** The primary's document (undefined: the worker reads the file). */
  private config: Config | undefined;
  /** The file the worker was started with (load()). */
  private file: string | undefined;
  /** The configuration of the reload being applied, as the primary validated it (SIGHUP). */
  private validated: Config | undefined;
  private readonly lists = new Map<string, readonly ServerConfig[]>();
  /** What the primary sent, applied in order once attached. */
  private readonly queue: ((portico: LinkedPortico) => Promise<void> | void)[] = [];
  private portico: LinkedPortico | undefined;
  private draining = false;
  private readonly ch: Channel<ConfigUp, ConfigDown>;

  /** This worker's reloads for every worker (reloadAll), by their `ask` number. */
  private readonly asked = new Map<number, { resolve(r: unknown): void; reject(err: unknown): void; timer: NodeJS.Timeout }>();
  private nextAsk = 1;

  constructor(port: IpcPort) {
    this.ch = new Channel<ConfigUp, ConfigDown>(port, CONFIG_CHANNEL);
    this.ch
      .on('op', (o) => this.enqueue((p) => applyOp(p, o)))
      .on('servers', (s) => this.enqueue((p) => this.applyServers(p, s)))
      .on('config', (c) => this.enqueue((p) => this.applyConfig(p, c)))
      .on('refused', ({ errors }) => this.enqueue((p) => p.reloadRefused(errors)))
      .on('reload', (r) => this.enqueue((p) => this.applyReload(p, r)));
  }

  /**
   * Ask the primary what to run and wait for its answer (what it sends meanwhile is kept, in
   * order). Without an answer within `timeoutMs` the worker cannot run (throws).
   */
  async ready(timeoutMs = 10_000): Promise<void> {
    let c: RunWhat;
    try {
      c = await this.ch.call('config', undefined, timeoutMs);
    } catch (err) {
      throw err instanceof IpcTimeoutError ? new Error(`the primary did not say what to run within ${timeoutMs} ms`) : err;
    }
    this.config = received(c.config);
    this.takeLists(c.lists);
  }

  /** The configuration to start with: the primary's document, or the file. Throws the file's ConfigError. */
  load(file: string): Config {
    this.file = file;
    return this.config ?? loadConfigFile(file);
  }

  /**
   * Where a reload reads the configuration: during a reload the primary passed on (SIGHUP), the
   * configuration the primary validated; otherwise the primary's last etcd document, or the file
   * read again (a reload through this worker's admin API).
   */
  get source(): () => Config {
    return () => this.validated ?? this.config ?? loadConfigFile(this.file!);
  }

  /** Give the primary's server lists to `portico` (before it starts), then apply every message in order. */
  async attach(portico: LinkedPortico): Promise<void> {
    this.portico = portico;
    await this.applyLists();
    await this.drain();
    // The primary probes every server this worker runs, those registered through the admin API too.
    portico.onConfig((c) => this.tellRunning(c));
    this.tellRunning(portico.config);
  }

  /**
   * Tell the primary the servers of each static pool with active checks (its checks follow them),
   * and apply the states it has decided for them. A discovery pool's list comes from the primary.
   */
  private tellRunning(config: Config): void {
    const pools: RunningPool[] = [];
    for (const pc of config.pools) if (pc.discovery.type === 'static' && pc.health.type !== 'none') pools.push({ pool: pc.name, servers: pc.servers });
    if (pools.length === 0) return;
    this.ch.call('running', { pools }, 10_000).then(
      (ops) => {
        for (const o of ops) this.enqueue((p) => applyOp(p, o));
      },
      // The primary is gone (the worker stops) or slow: the next change tells it again.
      () => undefined,
    );
  }

  /** Tell the primary this worker runs (its listeners accept): it answers with every server's state. */
  started(): void {
    this.ch.notify('ready', undefined);
  }

  /** This worker could not start: tell the primary why (it prints it once and ends the group). */
  fatal(error: string): Promise<void> {
    return this.ch.call('fatal', { error }, 2000);
  }

  /**
   * A reload through this worker's admin API: the primary validates the configuration once and
   * has every worker apply it. Resolves with this worker's result (as reload() gives it); throws
   * the ConfigError the primary found (nothing reloads then), or why it could not be done.
   */
  reloadAll(timeoutMs = 30_000): Promise<unknown> {
    const ask = this.nextAsk++;
    const late = (): Error => new Error(`the primary did not answer the reload within ${timeoutMs} ms`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.answer(ask, late(), false), timeoutMs);
      this.asked.set(ask, { resolve, reject, timer });
      // Accepted: the ReloadNote to this worker came before this answer, and answers `ask` once applied.
      this.ch.call('reload', { ask }, timeoutMs).then(
        (r) => {
          if (r.ok) return;
          const err = r.issues !== undefined ? new ConfigError(r.issues) : new Error(r.error ?? 'reload refused');
          this.portico?.reloadRefused(err instanceof ConfigError ? err.lines() : [err.message]);
          this.answer(ask, err, false);
        },
        (err: unknown) => this.answer(ask, err instanceof IpcTimeoutError ? late() : err, false),
      );
    });
  }

  private answer(ask: number | undefined, r: unknown, ok: boolean): void {
    const a = ask === undefined ? undefined : this.asked.get(ask);
    if (a === undefined) return;
    this.asked.delete(ask!);
    clearTimeout(a.timer);
    if (ok) a.resolve(r);
    else a.reject(r);
  }

  private enqueue(apply: (portico: LinkedPortico) => Promise<void> | void): void {
    this.queue.push(apply);
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining || this.portico === undefined) return;
    this.draining = true;
    try {
      for (let apply = this.queue.shift(); apply !== undefined; apply = this.queue.shift()) await apply(this.portico);
    } finally {
      this.draining = false;
    }
  }

  private async applyServers(portico: LinkedPortico, s: ServerList): Promise<void> {
    this.lists.set(s.pool, s.servers);
    await portico.setDiscovered(s.pool, s.servers);
    for (const o of s.ops) applyOp(portico, o);
  }

  private async applyConfig(portico: LinkedPortico, c: RunWhat): Promise<void> {
    const next = received(c.config);
    if (next !== undefined) this.config = next;
    this.takeLists(c.lists);
    await this.reload(portico);
  }

  /**
   * The file as the primary read and validated it: every worker applies the same version, and an
   * invalid file never reaches the workers (the primary alone refuses it).
   */
  private async applyReload(portico: LinkedPortico, r: ReloadNote): Promise<void> {
    this.validated = received(r.config);
    try {
      const [ok, result] = await this.reload(portico);
      this.answer(r.ask, result, ok);
    } finally {
      this.validated = undefined;
    }
  }

  /**
   * Apply the configuration (the primary's document, or the file read again); the lists again
   * (a pool new to this version has its list now); then ask for every server's state (a new
   * pool's first probe results may have come before it).
   */
  private async reload(portico: LinkedPortico): Promise<[ok: boolean, result: unknown]> {
    let out: [boolean, unknown];
    try {
      out = [true, await portico.reload()];
    } catch (err) {
      // the reload logs why it was refused; what ran stays
      out = [false, err];
    }
    await this.applyLists();
    // false: the primary is gone; the worker stops
    this.ch.notify('ready', undefined);
    return out;
  }

  private takeLists(lists: readonly ServerList[]): void {
    this.lists.clear();
    for (const l of lists) this.lists.set(l.pool, l.servers);
    this.pendingOps = lists.flatMap((l) => l.ops);
  }

  private pendingOps: ServerOp[] = [];

  private async applyLists(): Promise<void> {
    const portico = this.portico!;
    for (const [pool, servers] of this.lists) await portico.setDiscovered(pool, servers);
    for (const o of this.pendingOps) applyOp(portico, o);
    this.pendingOps = [];
  }
}

/** A server's state from the primary. `starting` (not probed yet) never replaces a state the worker knows. */
function applyOp(portico: LinkedPortico, o: ServerOp): void {
  if (o.op === 'starting') return;
  portico.pools.get(o.pool)?.setOp(serverId(o.pool, o.server), o.op, 'probe', o.detail);
}

/** A configuration as it arrives over IPC (a structured clone): frozen again, like the loader's. */
function received(c: Config | undefined): Config | undefined {
  return c === undefined ? undefined : deepFreeze(c);
}
