import { ConfigError } from '../config/errors.js';
import { loadConfigFile, validateConfig } from '../config/load.js';
import type { Config, ServerConfig } from '../config/types.js';
import type { RuntimeJournal, RuntimeChange } from '../admin/journal.js';
import { hiddenByRuntime, overlay, type OverlayEntry } from '../admin/overlay.js';
import { defineOver, definitionsOverriding } from '../admin/definitions.js';
import { applyPlan, describePlan, planReload, type ApplyOptions, type ReloadHost } from './reload.js';

/** What a successful reload did. */
export interface ReloadResult {
  /** The configuration generation now running (1 at start, +1 per reload). */
  readonly generation: number;
  /** One line per change applied (empty: the file was unchanged). */
  readonly changes: readonly string[];
  /** Keys that changed but take effect only at the next start. */
  readonly restartRequired: readonly string[];
  /** Values the file changed that runtime changes (the admin API's) override: one line each, with how to drop it. */
  readonly overridden: readonly string[];
}

/** The last reload attempt, kept for the status endpoint. */
export interface ReloadAttempt {
  readonly at: number;
  readonly ok: boolean;
  readonly generation: number;
  readonly changes?: readonly string[] | undefined;
  readonly errors?: readonly string[] | undefined;
}

/** A running configuration that can change: the host plus where its configuration comes from. */
export interface ConfigHost extends ReloadHost {
  /** What runs: the file's configuration with the runtime changes applied. */
  config: Config;
  /** Apply a new admin token and Host allowlist (the admin socket is kept). */
  updateAdmin(admin: Config['admin']): void;
  /**
   * Apply `log` of a reload: the level at once; the access log turned on, off or moved (a file is
   * opened again even when unchanged, for log rotation). Throws when the new file cannot be opened.
   */
  updateLog(log: Config['log']): Promise<void>;
}

/**
 * Where the running configuration comes from and how it changes: the configuration file
 * (re-read on reload), the runtime journal (changes made through the admin API), and the
 * generation counter. Every change, from the file or the API, goes through one path: lay
 * the journal over the file, plan the difference with what runs, apply it. Changes are
 * serialised: a reload and an API call never interleave.
 */
export class ConfigRuntime {
  fileConfig: Config;
  /** The file with the pools, listeners and load balancers defined through the API laid over it (before server and health changes). */
  definedConfig: Config;
  readonly file: string | undefined;
  readonly journal: RuntimeJournal;
  generation = 1;
  loadedAt = Date.now();
  lastReload: ReloadAttempt | undefined;
  /** The runtime changes and whether each applies to the current file. */
  entries: readonly OverlayEntry[] = [];
  /** Set when the journal could not be read at start. */
  journalProblem: string | undefined;
  /**
   * Where a reload without input reads the configuration when it is not the file: the last good
   * document of `cluster.config: etcd://...` (src/cluster/etcd-config.ts).
   */
  source: (() => Config) | undefined;
  /**
   * In a worker of `cluster.workers`: how a reload through the admin API reloads every worker
   * (through the primary, which validates the configuration once); resolves with this worker's
   * result, or throws the ConfigError the primary found. Undefined: reload() alone.
   */
  reloadAll: (() => Promise<unknown>) | undefined;
  /**
   * Told of the changes in force after every change made through this node's admin API, and of
   * those before it (the cluster wiring shares the difference with the other nodes,
   * src/cluster/runtime-sync.ts).
   */
  onChange: ((changes: readonly RuntimeChange[], before: readonly RuntimeChange[]) => void) | undefined;
  private readonly host: ConfigHost;
  private readonly env: NodeJS.ProcessEnv;
  private tail: Promise<unknown> = Promise.resolve();
  /** The last list of each pool whose servers come from discovery (laid over the file, under the journal). */
  private readonly discovered = new Map<string, readonly ServerConfig[]>();

  constructor(host: ConfigHost, fileConfig: Config, file: string | undefined, journal: RuntimeJournal, env: NodeJS.ProcessEnv = process.env) {
    this.host = host;
    this.fileConfig = fileConfig;
    this.definedConfig = fileConfig;
    this.file = file;
    this.journal = journal;
    this.env = env;
  }

  /** Read the journal and lay it over the running configuration (once, before the listeners bind). */
  loadJournal(): Promise<void> {
    return this.exclusive(async () => {
      const r = this.journal.load();
      this.journalProblem = r.problem;
      if (r.problem !== undefined) this.host.log.error(`runtime journal ignored: ${r.problem}`);
      if (r.changes.length === 0) return;
      await this.applyOver(this.fileConfig, r.changes, {});
      const applied = this.entries.filter((e) => e.applied).length;
      this.host.log.info(`runtime journal: ${applied} change(s) in force, ${this.entries.length - applied} not applicable`, { path: this.journal.path });
    });
  }

  /**
   * Re-read the configuration file (or validate `input`) and apply the difference. An invalid
   * configuration throws its ConfigError and nothing changes; so does a listener that cannot bind.
   */
  reload(input?: unknown): Promise<ReloadResult> {
    return this.exclusive(async () => {
      let next: Config;
      try {
        next = this.read(input);
        // The access-log file first: a file that cannot be opened refuses the reload before anything changed.
        const wasLog = this.host.config.log;
        await this.host.updateLog(next.log);
        let plan: Awaited<ReturnType<ConfigRuntime['applyOver']>>;
        try {
          plan = await this.applyOver(next, this.journal.current, { cause: 'config' });
        } catch (err) {
          await this.host.updateLog(wasLog).catch(() => undefined);
          throw err;
        }
        const overridden = [...definitionsOverriding(this.fileConfig, next, this.journal.current), ...hiddenByRuntime(this.fileConfig, next, this.journal.current)];
        this.fileConfig = next;
        this.generation++;
        this.loadedAt = Date.now();
        const result: ReloadResult = { generation: this.generation, changes: describePlan(plan), restartRequired: plan.restartRequired, overridden };
        this.lastReload = { at: this.loadedAt, ok: true, generation: this.generation, changes: result.changes };
        this.host.log.info(`reload: generation ${this.generation}${result.changes.length === 0 ? ', nothing changed' : ''}`);
        for (const line of result.changes) this.host.log.info(`reload: ${line}`);
        for (const line of overridden) this.host.log.warn(`reload: ${line}`);
        return result;
      } catch (err) {
        const errors = err instanceof ConfigError ? err.lines() : [err instanceof Error ? err.message : String(err)];
        this.lastReload = { at: Date.now(), ok: false, generation: this.generation, errors };
        this.host.log.error(`reload refused; generation ${this.generation} keeps running`, { errors });
        throw err;
      }
    });
  }

  /** A reload refused elsewhere (the primary of `cluster.workers` validated the file): the last reload, as if refused here, without a log line. */
  refused(errors: readonly string[]): void {
    this.lastReload = { at: Date.now(), ok: false, generation: this.generation, errors: [...errors] };
  }

  /**
   * Change the runtime journal and apply it. `edit` sees the current changes and the running
   * configuration, and returns the new changes (or throws to refuse, changing nothing). The
   * journal is written before anything is applied; if it cannot be written, nothing changes.
   */
  change(edit: (changes: readonly RuntimeChange[], running: Config) => readonly RuntimeChange[], options: ApplyOptions = {}): Promise<void> {
    return this.exclusive(async () => {
      const before = this.journal.current;
      const next = edit(before, this.host.config);
      this.journal.save(next);
      try {
        await this.applyOver(this.fileConfig, next, { cause: 'admin', ...options });
      } catch (err) {
        this.journal.save(before);
        throw err;
      }
      try {
        this.onChange?.(next, before);
      } catch (err) {
        this.host.log.warn('runtime changes not shared', { error: err instanceof Error ? err.message : String(err) });
      }
    });
  }

  /**
   * Put in force the runtime changes of the cluster (the whole list, replacing this node's; or
   * computed from this node's list when it is applied, after any change queued before):
   * written to the local journal (kept if the store is lost), then laid over the file. Resolves
   * false when they are already in force. A list that cannot be applied is refused (throws)
   * and nothing changes.
   */
  adopt(next: readonly RuntimeChange[] | ((current: readonly RuntimeChange[]) => readonly RuntimeChange[])): Promise<boolean> {
    return this.exclusive(async () => {
      const before = this.journal.current;
      const changes = typeof next === 'function' ? next(before) : next;
      if (JSON.stringify(before) === JSON.stringify(changes)) return false;
      try {
        this.journal.save(changes);
      } catch (err) {
        this.host.log.warn('runtime journal not written; the changes apply in memory', { error: err instanceof Error ? err.message : String(err) });
      }
      try {
        await this.applyOver(this.fileConfig, changes, { cause: 'admin' });
      } catch (err) {
        try {
          this.journal.save(before);
        } catch {
          // already reported above
        }
        throw err;
      }
      return true;
    });
  }

  /**
   * A pool's discovery found a new server list: apply it like a reload applies the servers of
   * a pool (kept servers keep their runtime, new ones join with the pool's health checks,
   * those gone drain). Serialised with reloads and API changes; never throws.
   */
  setDiscovered(pool: string, servers: readonly ServerConfig[]): Promise<void> {
    return this.exclusive(async () => {
      const pc = this.definedConfig.pools.find((p) => p.name === pool);
      if (pc === undefined || pc.discovery.type === 'static') return;
      this.discovered.set(pool, servers);
      try {
        const plan = await this.applyOver(this.fileConfig, this.journal.current, { cause: 'discovery' });
        for (const line of describePlan(plan)) this.host.log.info(`discovery: ${line}`);
      } catch (err) {
        this.host.log.error(`discovery: pool ${pool}: the new server list could not be applied`, { error: err instanceof Error ? err.message : String(err) });
      }
    });
  }

  /** Resolves once every change queued so far has been applied. */
  settled(): Promise<void> {
    return this.exclusive(async () => undefined);
  }

  /** The file's configuration with the discovered servers of each discovery pool in place of its (empty) servers. */
  private withDiscovered(file: Config): Config {
    for (const name of this.discovered.keys()) {
      const pc = file.pools.find((p) => p.name === name);
      if (pc === undefined || pc.discovery.type === 'static') this.discovered.delete(name);
    }
    if (this.discovered.size === 0) return file;
    const pools = file.pools.map((pc) => {
      const servers = this.discovered.get(pc.name);
      return servers === undefined ? pc : { ...pc, servers: [...servers] };
    });
    return { ...file, pools };
  }

  private read(input: unknown): Config {
    if (input !== undefined) return validateConfig(input);
    if (this.source !== undefined) return this.source();
    if (this.file === undefined) {
      throw new ConfigError([
        { file: '(none)', line: 0, col: 0, path: '(file)', message: 'this Portico was started from a configuration object, not a file: there is nothing to re-read' },
      ]);
    }
    return loadConfigFile(this.file, this.env);
  }

  private async applyOver(file: Config, changes: readonly RuntimeChange[], options: ApplyOptions) {
    // Pools and listeners defined through the API first (validated with the file as one document), then their servers' changes.
    const defined = defineOver(file, changes);
    const o = overlay(this.withDiscovered(defined.config), changes);
    const plan = planReload(this.host.config, o.config);
    await applyPlan(this.host, o.config, plan, options);
    if (plan.admin) this.host.updateAdmin(o.config.admin);
    this.host.config = o.config;
    this.definedConfig = defined.config;
    this.entries = [...defined.entries, ...o.entries];
    return plan;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
