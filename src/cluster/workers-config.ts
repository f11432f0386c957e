import { deepFreeze } from '../config/deep-freeze.js';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { EtcdConfigSource } from './etcd-config.js';
import type { IpcPort } from './workers-store.js';

/**
 * Where the configuration of a Portico process comes from, and how the workers of
 * `cluster.workers` get theirs. With a file, every process reads the file (a worker at start
 * and on each reload). With `cluster.config: etcd://...` only the primary watches etcd
 * (EtcdConfigSource: validated, last good kept and cached in stateDir): it hands the validated
 * document to each worker when the worker starts, and every valid new version to every
 * worker, so all the processes run the same version. An invalid version is refused once, in
 * the primary; the workers never see it.
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
  if (config.cluster.workers !== 1 && config.cluster.workers !== doc.cluster.workers) {
    log.warn(`cluster.workers of ${file} (${config.cluster.workers}) is not used: the etcd document's applies (${doc.cluster.workers})`);
  }
  return { config: doc, source };
}

/** A worker asks for its configuration (worker → primary). */
interface ConfigRequest {
  readonly t: 'config?';
}
/** The configuration a worker runs (primary → worker): the etcd document, or none (the worker reads the file). */
interface ConfigMessage {
  readonly t: 'config';
  readonly config: Config | undefined;
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** The primary's side: the configuration the workers run, and its changes. */
export class PrimaryConfig {
  private readonly ports = new Set<IpcPort>();
  /**
   * A valid new version from etcd (not called for a file): the primary applies it to its own
   * part (health checks) and resolves; then every worker gets it.
   */
  onVersion: ((config: Config) => Promise<void>) | undefined;

  constructor(
    private readonly file: string,
    private readonly start: StartConfig,
    private readonly log: Logger,
  ) {
    const source = start.source;
    if (source !== undefined) source.onUpdate = () => this.newVersion(source.current!);
  }

  /** What runs now: the last good etcd document, or the file as last read. */
  get current(): Config {
    return this.start.source?.current ?? this.last ?? this.start.config;
  }

  private last: Config | undefined;

  /** Watch etcd (nothing for a file). */
  async watch(): Promise<void> {
    await this.start.source?.start();
  }

  async stop(): Promise<void> {
    await this.start.source?.stop();
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

  /** Answer one worker's requests for its configuration, and send it every new version, until the returned function is called. */
  serve(port: IpcPort): () => void {
    this.ports.add(port);
    const off = port.onMessage((m) => {
      if (isObj(m) && m['t'] === 'config?') this.send(port, this.start.source === undefined ? undefined : this.current);
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
    for (const port of this.ports) this.send(port, config);
  }

  private send(port: IpcPort, config: Config | undefined): void {
    try {
      port.send({ t: 'config', config } satisfies ConfigMessage);
    } catch {
      // the worker is gone; its exit ends this service
    }
  }
}

/**
 * A worker's side: ask the primary for the configuration to run, and follow its new versions.
 * Without an answer within `timeoutMs` the worker cannot run (it throws, and exits).
 */
export class WorkerConfig {
  /** What the worker runs: the primary's document (undefined: the worker reads the file). */
  private config: Config | undefined;

  private constructor(
    private readonly port: IpcPort,
    first: Config | undefined,
  ) {
    this.config = first;
  }

  static async fetch(port: IpcPort, timeoutMs = 10_000): Promise<WorkerConfig> {
    let off: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const config = await new Promise<Config | undefined>((resolve, reject) => {
        off = port.onMessage((m) => {
          if (isObj(m) && m['t'] === 'config') resolve(received((m as unknown as ConfigMessage).config));
        });
        timer = setTimeout(() => reject(new Error(`the primary did not give the configuration within ${timeoutMs} ms`)), timeoutMs);
        port.send({ t: 'config?' } satisfies ConfigRequest);
      });
      return new WorkerConfig(port, config);
    } finally {
      off?.();
      clearTimeout(timer);
    }
  }

  /** The configuration to start with: the primary's document, or the file. Throws the file's ConfigError. */
  load(file: string): Config {
    return this.config ?? loadConfigFile(file);
  }

  /** Where a reload reads the configuration: the primary's last document (undefined: the file). */
  get source(): (() => Config) | undefined {
    if (this.config === undefined) return undefined;
    return () => this.config!;
  }

  /**
   * Each new version from the primary: kept as what a reload reads, then `apply` (the worker's
   * reload), then `applied`. Until the returned function is called.
   */
  follow(apply: () => Promise<unknown>, applied: () => void): () => void {
    let tail: Promise<unknown> = Promise.resolve();
    return this.port.onMessage((m) => {
      if (!isObj(m) || m['t'] !== 'config') return;
      const next = received((m as unknown as ConfigMessage).config);
      if (next === undefined) return;
      this.config = next;
      tail = tail.then(apply).then(applied, applied);
    });
  }
}

/** A configuration as it arrives over IPC (a structured clone): frozen again, like the loader's. */
function received(c: Config | undefined): Config | undefined {
  return c === undefined ? undefined : deepFreeze(c);
}
