import { createRequire } from 'node:module';
import type * as IoRedisModule from 'ioredis';
import type { Redis, RedisOptions } from 'ioredis';
import type { StateStore } from './state-store.js';

/** The operations of a store, as counted in `portico_store_errors_total{op}`. */
export type StoreOp = 'get' | 'set' | 'delete' | 'incr' | 'publish' | 'subscribe' | 'connect';
export const STORE_OPS: readonly StoreOp[] = ['get', 'set', 'delete', 'incr', 'publish', 'subscribe', 'connect'];

export interface RedisStoreOptions {
  /** redis:// or rediss:// URL; `?prefix=NAME:` sets the key prefix (default `portico:`). */
  readonly url: string;
  /** A command not answered within this time fails (default 500 ms). */
  readonly commandTimeoutMs?: number | undefined;
  /** A connection attempt abandoned after this time (default 1000 ms). */
  readonly connectTimeoutMs?: number | undefined;
  /** Told of every failed operation (the owner logs, rate-limited). */
  readonly onError?: ((op: StoreOp, err: unknown) => void) | undefined;
  /** Told when the connection becomes usable (`true`, also after a reconnection) or is lost (`false`). */
  readonly onState?: ((up: boolean) => void) | undefined;
}

/** INCRBY that sets the TTL only when it creates the key, in one step on the server. */
const INCR_SCRIPT = `
local created = redis.call('EXISTS', KEYS[1]) == 0
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`;

type Handler = (msg: string) => void;

const require = createRequire(import.meta.url);
let ioredis: typeof IoRedisModule | undefined;

/** ioredis is loaded with the first store, not with Portico: a configuration without Redis never loads it. */
function newRedis(url: string, options: RedisOptions): Redis {
  ioredis ??= require('ioredis') as typeof IoRedisModule;
  return new ioredis.Redis(url, options);
}

/**
 * The StateStore of several nodes: a Redis server reached with ioredis. Every command fails
 * fast when Redis is unreachable (no offline queue, no retry of a command, a command timeout),
 * so a caller never waits on a dead Redis; the connection itself is retried in the background
 * with a capped, jittered back-off, so that many nodes do not reconnect in step. Keys and
 * channels carry a per-cluster prefix. Subscriptions use a second connection and are made
 * again after every reconnection. Failed operations are counted per operation (`errors`).
 */
export class RedisStore implements StateStore {
  readonly prefix: string;
  /** The URL without its password, for logs and the status. */
  readonly displayUrl: string;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly o: RedisStoreOptions;
  private readonly errorCounts = new Map<StoreOp, number>();
  private closed = false;
  private up = false;
  private everUp = false;
  /** The command connection is ready. */
  private cmdReady = false;
  /** The subscriber is ready and subscribed to every channel with a handler. */
  private subReady = false;
  /** Reconnections so far (StateStore.generation): Redis may have restarted empty. */
  generation = 0;

  constructor(options: RedisStoreOptions) {
    this.o = options;
    const u = new URL(options.url);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`not a redis:// URL: ${options.url}`);
    this.prefix = u.searchParams.get('prefix') ?? 'portico:';
    u.searchParams.delete('prefix');
    const shown = new URL(u.href);
    if (shown.password !== '') shown.password = '***';
    this.displayUrl = shown.href;
    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      enableReadyCheck: true,
      commandTimeout: options.commandTimeoutMs ?? 500,
      connectTimeout: options.connectTimeoutMs ?? 1000,
      // Reconnect forever, 100 ms doubling to 2 s, plus up to 500 ms of jitter per node.
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times - 1, 5), 2000) + Math.floor(Math.random() * 500),
    };
    this.cmd = newRedis(u.href, { ...base, keyPrefix: this.prefix, connectionName: 'portico' });
    this.sub = newRedis(u.href, { ...base, connectionName: 'portico-sub' });
    this.cmd.defineCommand('porticoIncr', { numberOfKeys: 1, lua: INCR_SCRIPT });
    // An 'error' event with no listener would end the process; failures are reported per operation.
    this.cmd.on('error', () => {});
    this.sub.on('error', () => {});
    this.cmd.on('ready', () => {
      this.cmdReady = true;
      this.setUp();
    });
    this.cmd.on('close', () => {
      this.cmdReady = false;
      this.setUp();
    });
    this.sub.on('ready', () => this.resubscribe());
    this.sub.on('close', () => {
      this.subReady = false;
      this.setUp();
    });
    this.sub.on('message', (channel: string, msg: string) => this.deliver(channel, msg));
  }

  /**
   * Whether the store is usable now: the command connection is ready and the subscriber is
   * subscribed again to every channel. A message published after the store came up is
   * delivered, and one published while it was down is for the reconnection hooks to read.
   */
  get isUp(): boolean {
    return this.up;
  }

  /**
   * The command connection (keys prefixed with `prefix`), for a client that needs commands this
   * interface does not have (the cache's shared tier, src/store/redis-cache.ts). Its failures are
   * the caller's to count.
   */
  commandConnection(): Redis {
    this.open();
    return this.cmd;
  }

  /** Failed operations so far, by operation. */
  errors(): ReadonlyMap<StoreOp, number> {
    return this.errorCounts;
  }

  /**
   * Open both connections. Resolves when they are ready, or rejects when the first attempt
   * fails; either way the connections keep being retried in the background.
   */
  async connect(): Promise<void> {
    this.open();
    try {
      await Promise.all([this.cmd.status === 'wait' ? this.cmd.connect() : undefined, this.sub.status === 'wait' ? this.sub.connect() : undefined]);
    } catch (err) {
      this.failed('connect', err);
      throw err;
    }
  }

  get(key: string): Promise<string | undefined> {
    return this.run('get', async () => (await this.cmd.get(key)) ?? undefined);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) return this.run('set', async () => void (await this.cmd.set(key, value)));
    const px = ttlOf(ttlMs);
    return this.run('set', async () => void (await this.cmd.set(key, value, 'PX', px)));
  }

  delete(key: string): Promise<void> {
    return this.run('delete', async () => void (await this.cmd.del(key)));
  }

  async incr(key: string, by: number, ttlMs?: number): Promise<number> {
    if (!Number.isSafeInteger(by)) throw new RangeError(`incr by ${by}: not an integer`);
    const px = ttlMs === undefined ? '' : String(ttlOf(ttlMs));
    return this.run('incr', async () => {
      const v = await (this.cmd as unknown as { porticoIncr(k: string, by: string, px: string): Promise<number> }).porticoIncr(key, String(by), px);
      return Number(v);
    });
  }

  async subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void> {
    this.open();
    if (signal.aborted) return;
    const ch = this.prefix + channel;
    let set = this.handlers.get(ch);
    const isNew = set === undefined;
    if (set === undefined) {
      set = new Set();
      this.handlers.set(ch, set);
    }
    const subs = set;
    const deliver: Handler = (msg) => onMessage(msg);
    subs.add(deliver);
    signal.addEventListener(
      'abort',
      () => {
        subs.delete(deliver);
        if (subs.size > 0 || this.handlers.get(ch) !== subs) return;
        this.handlers.delete(ch);
        if (!this.closed && this.sub.status === 'ready') this.sub.unsubscribe(ch).catch((err: unknown) => this.failed('subscribe', err));
      },
      { once: true },
    );
    if (!isNew) return;
    // Redis down: the subscription is kept and made when the connection is back (resubscribe).
    if (this.sub.status !== 'ready') return;
    try {
      await this.sub.subscribe(ch);
    } catch (err) {
      this.failed('subscribe', err);
    }
  }

  publish(channel: string, msg: string): Promise<void> {
    return this.run('publish', async () => void (await this.cmd.publish(this.prefix + channel, msg)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    this.up = false;
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  private async run<T>(op: StoreOp, fn: () => Promise<T>): Promise<T> {
    this.open();
    try {
      return await fn();
    } catch (err) {
      this.failed(op, err);
      throw err;
    }
  }

  private failed(op: StoreOp, err: unknown): void {
    this.errorCounts.set(op, (this.errorCounts.get(op) ?? 0) + 1);
    try {
      this.o.onError?.(op, err);
    } catch {
      // an observer's fault is not the store's
    }
  }

  private setUp(): void {
    const up = this.cmdReady && this.subReady;
    if (this.up === up || this.closed) return;
    this.up = up;
    if (up) {
      if (this.everUp) this.generation++;
      this.everUp = true;
    }
    try {
      this.o.onState?.(up);
    } catch {
      // an observer's fault is not the store's
    }
  }

  /** The subscriber (re)connected: subscribe to every channel again, then count it up. */
  private resubscribe(): void {
    if (this.closed) return;
    const channels = [...this.handlers.keys()];
    if (channels.length === 0) {
      this.subReady = true;
      this.setUp();
      return;
    }
    this.sub.subscribe(...channels).then(
      () => {
        this.subReady = true;
        this.setUp();
      },
      (err: unknown) => {
        this.failed('subscribe', err);
        // Not subscribed: drop the connection so that it is made again, subscriptions first.
        if (!this.closed) this.sub.disconnect(true);
      },
    );
  }

  private deliver(channel: string, msg: string): void {
    const subs = this.handlers.get(channel);
    if (subs === undefined) return;
    for (const fn of [...subs]) {
      try {
        fn(msg);
      } catch {
        // a subscriber's fault stays with the subscriber
      }
    }
  }

  private open(): void {
    if (this.closed) throw new Error('the store is closed');
  }
}

function ttlOf(ttlMs: number): number {
  if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be a positive number of milliseconds, got ${ttlMs}`);
  return Math.ceil(ttlMs);
}
