import { Etcd3, type IOptions, type Watcher } from 'etcd3';
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
    const options: IOptions = { hosts: endpoint, dialTimeout: this.opts.dialTimeoutMs ?? 3000 };
    const client = new Etcd3(options);
    let watcher: Watcher | undefined;
    let dirty = true;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const onAbort = (): void => poke();
    signal.addEventListener('abort', onAbort);
    try {
      try {
        watcher = await client.watch().prefix(prefix).create();
      } catch (err) {
        throw new DiscoveryError(this.name, `cannot watch ${prefix}: ${(err as Error).message}`, { cause: err });
      }
      const changed = (): void => {
        dirty = true;
        poke();
      };
      watcher.on('put', changed);
      watcher.on('delete', changed);
      watcher.on('connected', changed); // after a reconnection, read everything again
      watcher.on('disconnected', (err: unknown) => {
        failure = err ?? new Error('disconnected');
        poke();
      });
      watcher.on('error', (err: unknown) => {
        failure = err;
        poke();
      });
      while (!signal.aborted) {
        if (failure !== undefined) throw new DiscoveryError(this.name, `watch lost: ${failure instanceof Error ? failure.message : String(failure)}`, { cause: failure });
        if (dirty) {
          dirty = false;
          let kvs: Record<string, string>;
          try {
            kvs = await client.getAll().prefix(prefix).strings();
          } catch (err) {
            throw new DiscoveryError(this.name, `cannot read ${prefix}: ${(err as Error).message}`, { cause: err });
          }
          yield this.parse(kvs, prefix);
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (watcher !== undefined) void watcher.cancel().catch(() => undefined);
      client.close();
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
