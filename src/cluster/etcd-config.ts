import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { ConfigError } from '../config/errors.js';
import { parseConfigText } from '../config/load.js';
import type { Config } from '../config/types.js';
import { DEFAULT_BACKOFF, repeatWithBackoff } from '../discovery/backoff.js';
import { etcdClientOptions, newEtcdClient, WatchSession, withTimeout } from '../discovery/etcd-discovery.js';
import { parseEtcdUrl } from '../discovery/etcd-url.js';
import type { Logger } from '../observability/logger.js';

/** The key, under the prefix of `cluster.config`, that holds the configuration document. */
export const CONFIG_KEY = 'config';
/** The last good document, kept in stateDir so that a node starts while etcd is down. */
export const CACHE_FILE = 'etcd-config.yaml';

export interface EtcdConfigOptions {
  /** `cluster.config`: etcd://HOST:PORT/PREFIX */
  readonly url: string;
  /** Where the last good document is cached. */
  readonly stateDir: string;
  readonly log: Logger;
  /** `${VAR}` values of the document come from here (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** How long the first read may take before the cache is used (default 3 s). */
  readonly dialTimeoutMs?: number;
  /** Back-off of the watch after a failure (default 1 s doubling to 30 s). */
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
}

/**
 * The configuration document in etcd (key PREFIX/config, YAML or JSON) that every node runs.
 * `load()` gives the document to start with: the one in etcd, or, when etcd cannot be reached
 * (or holds an invalid document), the last good one cached in stateDir. After start(), every
 * new version is validated: a valid one becomes `current`, is cached and `onUpdate` applies it
 * (a reload); an invalid one is refused with every error and the last good one keeps running.
 */
export class EtcdConfigSource {
  readonly name = 'etcd configuration';
  readonly key: string;
  readonly endpoint: string;
  /** The last good configuration (undefined before load()). */
  current: Config | undefined;
  /** Apply `current` (set by the composition root: the node's reload). */
  onUpdate: (() => Promise<unknown>) | undefined;
  /** The errors of the last refused document, if the last version seen was refused. */
  refused: readonly string[] | undefined;
  private text: string | undefined;
  private readonly opts: EtcdConfigOptions;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(opts: EtcdConfigOptions) {
    this.opts = opts;
    const { endpoint, prefix } = parseEtcdUrl(opts.url);
    this.endpoint = endpoint;
    this.key = prefix + CONFIG_KEY;
  }

  get cachePath(): string {
    return join(this.opts.stateDir, CACHE_FILE);
  }

  /** The configuration to start with. Throws a ConfigError when there is neither a valid document in etcd nor a cache. */
  async load(): Promise<Config> {
    let fromEtcd: string | undefined;
    let why: string;
    const client = this.client();
    try {
      const text = await withTimeout(client.get(this.key).string(), this.opts.dialTimeoutMs ?? 3000);
      if (text === null) why = `${this.opts.url} holds no configuration yet (key ${this.key}; store one with portico ctl config push FILE)`;
      else {
        fromEtcd = text;
        why = '';
      }
    } catch (err) {
      why = `etcd ${this.endpoint} cannot be reached (${(err as Error).message})`;
    } finally {
      client.close();
    }
    if (fromEtcd !== undefined) {
      try {
        const config = this.parse(fromEtcd, this.source());
        this.take(fromEtcd, config);
        this.opts.log.info(`configuration from ${this.opts.url}`);
        return config;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        this.refused = err.lines();
        this.opts.log.error(`the configuration in ${this.opts.url} is invalid; trying the last good one`, { errors: err.lines() });
        why = 'the document in etcd is invalid';
      }
    }
    let cached: string;
    try {
      cached = readFileSync(this.cachePath, 'utf8');
    } catch {
      throw new ConfigError([{ file: this.opts.url, line: 0, col: 0, path: 'cluster.config', message: `${why}, and there is no last good configuration in ${this.cachePath}` }]);
    }
    const config = this.parse(cached, this.cachePath);
    this.text = cached;
    this.current = config;
    this.opts.log.warn(`${why}: starting from the last good configuration (${this.cachePath}); etcd is watched for the next one`);
    return config;
  }

  /** Watch the document (in the background) until stop(). */
  async start(): Promise<void> {
    if (this.loop !== undefined) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    // A watch still connecting to a dead etcd does not see the abort: do not wait for it long.
    await Promise.race([this.loop, sleep(1000)]);
    this.loop = undefined;
  }

  private run(signal: AbortSignal): Promise<void> {
    return repeatWithBackoff(
      signal,
      this.opts.backoff ?? DEFAULT_BACKOFF,
      (healthy) => this.watchOnce(signal, healthy),
      (err) => this.opts.log.warn(`etcd configuration: watch of ${this.key} failed (${(err as Error).message}); the running configuration stays`),
    );
  }

  /** One watch session: read the key, then follow its versions until a failure or abort. */
  private async watchOnce(signal: AbortSignal, healthy: () => void): Promise<void> {
    const client = this.client();
    const session = new WatchSession(client, signal);
    const pending: string[] = [];
    try {
      const watcher = await session.connect(client.watch().key(this.key), (this.opts.dialTimeoutMs ?? 3000) + 2000);
      watcher.on('put', (kv) => {
        pending.push(kv.value.toString('utf8'));
        session.poke();
      });
      // A version written while this node was not watching.
      const now = await withTimeout(client.get(this.key).string(), (this.opts.dialTimeoutMs ?? 3000) + 2000);
      if (now !== null) pending.unshift(now);
      healthy();
      while (!signal.aborted) {
        const failure = session.failure;
        if (failure !== undefined) throw failure instanceof Error ? failure : new Error(String(failure));
        const text = pending.shift();
        if (text !== undefined) {
          await this.consider(text);
          continue;
        }
        await session.next();
      }
    } finally {
      session.close();
    }
  }

  /** A version of the document: refused with its errors, or taken and applied. */
  private async consider(text: string): Promise<void> {
    if (text === this.text) return;
    let config: Config;
    try {
      config = this.parse(text, this.source());
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (this.refused !== undefined && this.refusedText === text) return;
      this.refused = err.lines();
      this.refusedText = text;
      this.opts.log.error(`etcd configuration refused; the running configuration stays`, { errors: err.lines() });
      return;
    }
    this.take(text, config);
    this.opts.log.info(`etcd configuration: a new version of ${this.key}`);
    try {
      await this.onUpdate?.();
    } catch {
      // The reload logs why it was refused (a listener that cannot bind ...); the last good one runs.
    }
  }

  private refusedText: string | undefined;

  private take(text: string, config: Config): void {
    this.text = text;
    this.current = config;
    this.refused = undefined;
    this.refusedText = undefined;
    try {
      mkdirSync(this.opts.stateDir, { recursive: true });
      const tmp = `${this.cachePath}.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, this.cachePath);
    } catch (err) {
      this.opts.log.warn(`the last good configuration could not be cached in ${this.cachePath}`, { error: (err as Error).message });
    }
  }

  private parse(text: string, name: string): Config {
    return parseConfigText(text, name, this.opts.env ?? process.env);
  }

  private source(): string {
    return `${this.opts.url.replace(/\/$/, '')}/${CONFIG_KEY}`;
  }

  private client(): Etcd3 {
    return newEtcdClient(etcdClientOptions(this.endpoint, this.opts.dialTimeoutMs ?? 3000));
  }
}

/**
 * `portico ctl config push FILE`: validate FILE like `portico check` (every error printed, nothing
 * stored) and store it as the configuration document of `url` for every node. Resolves with the
 * etcd revision of the write.
 */
export async function pushConfig(url: string, text: string, opts: { readonly dialTimeoutMs?: number } = {}): Promise<number> {
  const { endpoint, prefix } = parseEtcdUrl(url);
  const client = newEtcdClient({ hosts: endpoint, dialTimeout: opts.dialTimeoutMs ?? 3000 });
  try {
    const r = await client.put(prefix + CONFIG_KEY).value(text).exec();
    return Number(r.header.revision);
  } finally {
    client.close();
  }
}
