import { createRequire } from 'node:module';
import type * as Etcd3Module from 'etcd3';
import type { Etcd3, IOptions, WatchBuilder, Watcher } from 'etcd3';
import { DiscoveryError, parseServerEntry, serverNameOf, type Discovery, type ServerSpec } from './discovery.js';
import { parseEtcdUrl } from './etcd-url.js';

export interface EtcdDiscoveryOptions {
  /** `etcd://HOST:PORT/PREFIX`: servers register as keys `/PREFIX/NAME`. */
  readonly url: string;
  /** An entry that is not a valid server is left out and reported here. */
  readonly warn?: (message: string) => void;
  /** Connection timeout of the etcd client (default 3 s). */
  readonly dialTimeoutMs?: number;
}

/**
 * Servers registered in etcd: one key per server under the prefix (`/PREFIX/NAME`), whose
 * value is a server of the configuration file as JSON (`{"address":"10.0.0.1:80","weight":2}`;
 * `name` defaults to NAME) or just its address (`10.0.0.1:80`). Servers write their key
 * with a lease that they keep alive, so the key of a server that dies expires. The whole
 * prefix is read at start and again after every change the watch reports.
 */
export class EtcdDiscovery implements Discovery {
  readonly name: string;
  private readonly opts: EtcdDiscoveryOptions;

  constructor(opts: EtcdDiscoveryOptions) {
    this.opts = opts;
    this.name = `etcd ${opts.url}`;
  }

  async *watch(signal: AbortSignal): AsyncIterable<readonly ServerSpec[]> {
    const { endpoint, prefix } = parseEtcdUrl(this.opts.url);
    const client = newEtcdClient(etcdClientOptions(endpoint, this.opts.dialTimeoutMs ?? 3000));
    const session = new WatchSession(client, signal);
    let dirty = true;
    try {
      let watcher: Watcher;
      try {
        // The client retries a dead endpoint for a long time: give up after the dial timeout, and back off.
        watcher = await session.connect(client.watch().prefix(prefix), (this.opts.dialTimeoutMs ?? 3000) + 2000);
      } catch (err) {
        throw new DiscoveryError(this.name, `cannot watch ${prefix}: ${(err as Error).message}`, { cause: err });
      }
      const changed = (): void => {
        dirty = true;
        session.poke();
      };
      watcher.on('put', changed);
      watcher.on('delete', changed);
      watcher.on('connected', changed); // after a reconnection, read everything again
      while (!signal.aborted) {
        const failure = session.failure;
        if (failure !== undefined) throw new DiscoveryError(this.name, `watch lost: ${failure instanceof Error ? failure.message : String(failure)}`, { cause: failure });
        if (dirty) {
          dirty = false;
          let kvs: Record<string, string>;
          try {
            kvs = await withTimeout(client.getAll().prefix(prefix).strings(), (this.opts.dialTimeoutMs ?? 3000) + 2000);
          } catch (err) {
            throw new DiscoveryError(this.name, `cannot read ${prefix}: ${(err as Error).message}`, { cause: err });
          }
          yield this.parse(kvs, prefix);
          continue;
        }
        await session.next();
      }
    } finally {
      session.close();
    }
  }

  private parse(kvs: Record<string, string>, prefix: string): ServerSpec[] {
    const out: ServerSpec[] = [];
    for (const [key, value] of Object.entries(kvs)) {
      const rest = key.slice(prefix.length);
      let raw: unknown;
      const v = value.trim();
      if (v.startsWith('{')) {
        try {
          raw = JSON.parse(v);
        } catch {
          this.opts.warn?.(`${this.name}: key ${key} is not JSON; left out`);
          continue;
        }
      } else {
        raw = { address: v };
      }
      const r = parseServerEntry(raw, serverNameOf(rest));
      if (r.ok) out.push(r.server);
      else this.opts.warn?.(`${this.name}: key ${key} is not a valid server (${r.message}); left out`);
    }
    return out;
  }
}

/** `p`, or a rejection after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * A connected etcd watcher, or a rejection after `ms`. A watcher that did not connect is
 * cancelled: the client would otherwise keep reconnecting for it, even after close().
 */
export async function connectWatcher(builder: WatchBuilder, ms: number): Promise<Watcher> {
  const watcher = builder.watcher();
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        watcher.once('connected', () => resolve());
        watcher.once('error', (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
      }),
      ms,
    );
    return watcher;
  } catch (err) {
    void watcher.cancel().catch(() => undefined);
    throw err;
  }
}

/**
 * What a loop that follows one etcd watch needs: poke() wakes it (an event, a failure, the abort
 * of `signal`) from next(); the watcher's 'error' and 'disconnected' become `failure`. close()
 * cancels the watcher and closes the client.
 */
export class WatchSession {
  /** Why the watch broke, once it did. */
  failure: unknown = undefined;
  private watcher: Watcher | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', this.poke);
  }

  /** The connected watcher of `builder` (see connectWatcher), its failures followed. */
  async connect(builder: WatchBuilder, ms: number): Promise<Watcher> {
    const watcher = await connectWatcher(builder, ms);
    this.watcher = watcher;
    watcher.on('disconnected', (err: unknown) => {
      this.failure = err ?? new Error('disconnected');
      this.poke();
    });
    watcher.on('error', (err: unknown) => {
      this.failure = err;
      this.poke();
    });
    return watcher;
  }

  readonly poke = (): void => {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  };

  /** Resolves at the next poke(). */
  next(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  close(): void {
    this.signal.removeEventListener('abort', this.poke);
    if (this.watcher !== undefined) void this.watcher.cancel().catch(() => undefined);
    this.client.close();
  }
}

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/** Reconnection delays of the client's watch streams: 100 ms doubling to 1 s (its own default goes to 30 s). */
class CappedBackoff {
  constructor(readonly duration: number) {}
  next(): CappedBackoff {
    return new CappedBackoff(Math.min(1000, Math.max(100, this.duration * 2)));
  }
}

const require = createRequire(import.meta.url);
let etcd3: typeof Etcd3Module | undefined;

/**
 * A new etcd client. The etcd3 package (and gRPC and protobuf under it) is loaded with the first
 * client, not with Portico: a process whose configuration names no etcd never loads it, and
 * neither its start nor its heap (which every full collection walks) pays for it.
 */
export function newEtcdClient(options: IOptions): Etcd3 {
  etcd3 ??= require('etcd3') as typeof Etcd3Module;
  return new etcd3.Etcd3(options);
}

/**
 * Options of an etcd client for Portico. The watch streams reconnect within a second, so that
 * a client whose watch was cancelled while etcd was unreachable lets the process exit soon;
 * Portico's own loops back off between watch sessions.
 */
export function etcdClientOptions(endpoint: string, dialTimeoutMs: number): IOptions {
  return { hosts: endpoint, dialTimeout: dialTimeoutMs, faultHandling: { watchBackoff: new CappedBackoff(50) as unknown as WatchBackoff } };
}
