import { deepFreeze } from '../config/deep-freeze.js';
import { ConfigError, type ConfigIssue } from '../config/errors.js';
import { loadConfigFile } from '../config/load.js';
import type { Config, PoolConfig, ServerConfig } from '../config/types.js';
import { serverId, type OpState, type Server } from '../core/server.js';
import { createDiscovery } from '../discovery/from-config.js';
import { discoveryStatus, type DiscoveryStatus } from '../discovery/status.js';
import { DiscoveryWatcher } from '../discovery/watcher.js';
import { createLogger, type Logger } from '../observability/logger.js';
import type { Pool } from '../pool/pool.js';
import { EtcdConfigSource } from './etcd-config.js';
import type { IpcPort } from './workers-store.js';
import { isObject } from '../core/guards.js';

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
export interface OpMessage {
  readonly t: 'op';
  readonly pool: string;
  readonly server: string;
  readonly op: OpState;
  readonly detail?: string | undefined;
}
/** A worker asks for what it runs (worker → primary). */
interface ConfigRequest {
  readonly t: 'config?';
}
/** One discovery pool's servers and, where the primary probes them, their states. */
interface ServersMessage {
  readonly t: 'servers';
  readonly pool: string;
  readonly servers: readonly ServerConfig[];
  readonly ops: readonly OpMessage[];
}
/**
 * What a worker runs (primary → worker): the etcd document (undefined: the worker reads the
 * file) and the list of every discovery pool. The answer to a ConfigRequest, and each new etcd version.
 */
interface ConfigMessage {
  readonly t: 'config';
  readonly config: Config | undefined;
  readonly lists: readonly ServersMessage[];
}

/**
 * Reload (primary → workers), on SIGHUP: the configuration the primary read and validated
 * (undefined: the primary's etcd document, sent before as a ConfigMessage, stays).
 */
export interface ReloadMessage {
  readonly t: 'reload';
  readonly config: Config | undefined;
  /** The request of the worker that asked for this reload (ReloadRequest), in the message to that worker. */
  readonly id?: number | undefined;
}
/** A reload the primary refused (primary → every worker but the one that asked): recorded as the last reload, not logged. */
export interface RefusedMessage {
  readonly t: 'refused';
  readonly errors: readonly string[];
}
/** A reload through a worker's admin API, for every worker (worker → primary). */
export interface ReloadRequest {
  readonly t: 'reload?';
  readonly id: number;
}
/** The primary refused a worker's ReloadRequest: the configuration's issues, or why it could not be applied (primary → that worker). */
export interface ReloadRefused {
  readonly t: 'reload!';
  readonly id: number;
  readonly issues?: readonly ConfigIssue[] | undefined;
  readonly error?: string | undefined;
}


// ---- the primary ------------------------------------------------------------------------------

/** One watched source. */
interface Watched {
  readonly spec: string;
  readonly config: PoolConfig['discovery'];
  readonly watcher: DiscoveryWatcher;
}

/** The primary's side: the configuration and the server lists the workers run, and their changes. */
export class PrimaryConfig {
  private readonly ports = new Set<IpcPort>();
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
  serve(port: IpcPort): () => void {
    this.ports.add(port);
    const off = port.onMessage((m) => {
      if (isObject(m) && m['t'] === 'config?') send(port, { t: 'config', config: this.start.source === undefined ? undefined : this.current, lists: this.listMessages() });
    });
    return () => {
      off();
      this.ports.delete(port);
    };
  }

  private async newVersion(config: Config): Promise<void> {
    try {
      await this.onVersion?.(config);
    } catch (err) {
      this.log.error('etcd configuration: the primary could not apply the new version; the workers get it all the same', { error: err instanceof Error ? err.message : String(err) });
    }
    const m: ConfigMessage = { t: 'config', config, lists: this.listMessages() };
    for (const port of this.ports) send(port, m);
  }

  private listMessages(): ServersMessage[] {
    return [...this.lists].map(([pool, servers]) => ({ t: 'servers', pool, servers, ops: this.opsOf(pool) }));
  }

  /** The states of a pool's servers as the checks see them (those not decided yet are left out). */
  private opsOf(pool: string): OpMessage[] {
    const p = this.checks?.(pool);
    if (p === undefined) return [];
    const out: OpMessage[] = [];
    for (const rt of p) if (rt.op !== 'starting') out.push({ t: 'op', pool, server: rt.server.name, op: rt.op, detail: this.detailOf?.(pool, rt.server.name, rt.op) });
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
      const added = this.reconcile(p, servers);
      await decided(p, added, pc.health.timeout + 1000);
    }
    const m: ServersMessage = { t: 'servers', pool, servers, ops: this.opsOf(pool) };
    for (const port of this.ports) send(port, m);
  }

  /** Make the checks' pool hold `servers` (kept servers keep their state); the names added. */
  private reconcile(p: Pool, servers: readonly ServerConfig[]): string[] {
    const added: string[] = [];
    const wanted = new Set<string>();
    for (const sc of servers) {
      wanted.add(sc.name);
      const server = this.buildServer(p.name, sc);
      const rt = p.byName(sc.name);
      if (rt === undefined) {
        p.add(server, sc.state, 'starting', 'discovery');
        added.push(sc.name);
      } else if (rt.server.host !== server.host || rt.server.port !== server.port) {
        // Another address: another server as far as its health goes.
        p.remove(sc.name, 'discovery');
        p.add(server, sc.state, 'starting', 'discovery');
        added.push(sc.name);
      } else p.update(server, 'discovery');
    }
    for (const rt of [...p]) if (!wanted.has(rt.server.name)) p.remove(rt.server.name, 'discovery');
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

function send(port: IpcPort, m: ConfigMessage | ServersMessage): void {
  try {
    port.send(m);
  } catch {
    // the worker is gone; its exit ends this service
  }
}

// ---- a worker -------------------------------------------------------------------------------

/** What a worker's link to the primary changes: its Portico. */
export interface LinkedPortico {
  readonly pools: ReadonlyMap<string, Pick<Pool, 'setOp'>>;
  reload(): Promise<unknown>;
  /** A reload the primary refused: recorded as the last reload (the status shows it), not logged. */
  reloadRefused(errors: readonly string[]): void;
  setDiscovered(pool: string, servers: readonly ServerConfig[]): Promise<void>;
}

/**
 * A worker's side. Created first thing in the worker: it asks the primary for what to run and
 * keeps, in order, every message that follows; attach() applies them to the worker's Portico,
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
  private readonly queue: unknown[] = [];
  private portico: LinkedPortico | undefined;
  private draining = false;
  private first: ((m: ConfigMessage) => void) | undefined;
  private readonly answered: Promise<ConfigMessage>;

  /** This worker's reloads for every worker (reloadAll), by request id. */
  private readonly asked = new Map<number, { resolve(r: unknown): void; reject(err: unknown): void; timer: NodeJS.Timeout }>();
  private nextId = 1;

  constructor(private readonly port: IpcPort) {
    this.answered = new Promise((resolve) => (this.first = resolve));
    port.onMessage((m) => this.receive(m));
    port.send({ t: 'config?' } satisfies ConfigRequest);
  }

  /** Wait for the primary's answer. Without one within `timeoutMs` the worker cannot run (throws). */
  async ready(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the primary did not say what to run within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.answered, late]);
    } finally {
      clearTimeout(timer);
    }
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
  }

  /**
   * A reload through this worker's admin API: the primary validates the configuration once and
   * has every worker apply it. Resolves with this worker's result (as reload() gives it); throws
   * the ConfigError the primary found (nothing reloads then), or why it could not be done.
   */
  reloadAll(timeoutMs = 30_000): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.asked.delete(id);
        reject(new Error(`the primary did not answer the reload within ${timeoutMs} ms`));
      }, timeoutMs);
      this.asked.set(id, { resolve, reject, timer });
      try {
        this.port.send({ t: 'reload?', id } satisfies ReloadRequest);
      } catch (err) {
        this.answer(id, err, false);
      }
    });
  }

  private answer(id: number | undefined, r: unknown, ok: boolean): void {
    const a = id === undefined ? undefined : this.asked.get(id);
    if (a === undefined) return;
    this.asked.delete(id!);
    clearTimeout(a.timer);
    if (ok) a.resolve(r);
    else a.reject(r);
  }

  private receive(m: unknown): void {
    if (!isObject(m)) return;
    const t = m['t'];
    if (t === 'reload!') {
      const r = m as unknown as ReloadRefused;
      const err = r.issues !== undefined ? new ConfigError(r.issues) : new Error(r.error ?? 'reload refused');
      this.portico?.reloadRefused(err instanceof ConfigError ? err.lines() : [err.message]);
      this.answer(r.id, err, false);
      return;
    }
    if (t === 'config' && this.first !== undefined) {
      const c = m as unknown as ConfigMessage;
      this.config = received(c.config);
      this.takeLists(c.lists);
      const f = this.first;
      this.first = undefined;
      f(c);
      return;
    }
    if (t !== 'config' && t !== 'servers' && t !== 'op' && t !== 'reload' && t !== 'refused') return;
    this.queue.push(m);
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining || this.portico === undefined) return;
    this.draining = true;
    try {
      for (let m = this.queue.shift(); m !== undefined; m = this.queue.shift()) await this.apply(this.portico, m as Record<string, unknown>);
    } finally {
      this.draining = false;
    }
  }

  private async apply(portico: LinkedPortico, m: Record<string, unknown>): Promise<void> {
    switch (m['t']) {
      case 'op':
        applyOp(portico, m as unknown as OpMessage);
        return;
      case 'servers': {
        const s = m as unknown as ServersMessage;
        this.lists.set(s.pool, s.servers);
        await portico.setDiscovered(s.pool, s.servers);
        for (const o of s.ops) applyOp(portico, o);
        return;
      }
      case 'config': {
        const c = m as unknown as ConfigMessage;
        const next = received(c.config);
        if (next !== undefined) this.config = next;
        this.takeLists(c.lists);
        await this.reload(portico);
        return;
      }
      case 'refused':
        portico.reloadRefused((m as unknown as RefusedMessage).errors);
        return;
      case 'reload': {
        // The file as the primary read and validated it: every worker applies the same version,
        // and an invalid file never reaches the workers (the primary alone refuses it).
        const r = m as unknown as ReloadMessage;
        this.validated = received(r.config);
        try {
          const [ok, result] = await this.reload(portico);
          this.answer(r.id, result, ok);
        } finally {
          this.validated = undefined;
        }
        return;
      }
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
    try {
      this.port.send({ t: 'ready' });
    } catch {
      // the primary is gone; the worker stops
    }
    return out;
  }

  private takeLists(lists: readonly ServersMessage[]): void {
    this.lists.clear();
    for (const l of lists) this.lists.set(l.pool, l.servers);
    this.pendingOps = lists.flatMap((l) => l.ops);
  }

  private pendingOps: OpMessage[] = [];

  private async applyLists(): Promise<void> {
    const portico = this.portico!;
    for (const [pool, servers] of this.lists) await portico.setDiscovered(pool, servers);
    for (const o of this.pendingOps) applyOp(portico, o);
    this.pendingOps = [];
  }
}

/** A server's state from the primary. `starting` (not probed yet) never replaces a state the worker knows. */
function applyOp(portico: LinkedPortico, o: OpMessage): void {
  if (o.op === 'starting') return;
  portico.pools.get(o.pool)?.setOp(serverId(o.pool, o.server), o.op, 'probe', o.detail);
}

/** A configuration as it arrives over IPC (a structured clone): frozen again, like the loader's. */
function received(c: Config | undefined): Config | undefined {
  return c === undefined ? undefined : deepFreeze(c);
}
