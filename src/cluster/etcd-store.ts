import type { Etcd3, Watcher } from 'etcd3';
import { etcdClientOptions, newEtcdClient, withTimeout } from '../discovery/etcd-discovery.js';
import { parseEtcdUrl } from '../discovery/etcd-url.js';
import type { StateStore } from '../store/state-store.js';

/** The keys of the runtime changes, under the prefix of `cluster.config: etcd://HOST:PORT/PREFIX`. */
export const ETCD_RUNTIME_DIR = 'runtime/';

/**
 * The runtime changes of the admin API written back to etcd when `cluster.config` is etcd: a
 * StateStore over the etcd of the configuration document, keys under PREFIX/runtime/, for
 * RuntimeSync (the same numbered deltas, applied in order on every node, as through Redis).
 * `incr` is a compare-and-swap on the key's revision, a TTL a lease, a channel a key whose
 * every put is a message to its watchers.
 */
export class EtcdStateStore implements StateStore {
  readonly endpoint: string;
  private readonly prefix: string;
  private readonly client: Etcd3;
  private readonly timeoutMs: number;

  constructor(url: string, opts: { readonly timeoutMs?: number } = {}) {
    const { endpoint, prefix } = parseEtcdUrl(url);
    this.endpoint = endpoint;
    this.prefix = prefix + ETCD_RUNTIME_DIR;
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.client = newEtcdClient(etcdClientOptions(endpoint, this.timeoutMs));
  }

  private key(k: string): string {
    return this.prefix + k;
  }

  async get(key: string): Promise<string | undefined> {
    const v = await withTimeout(this.client.get(this.key(key)).string(), this.timeoutMs);
    return v ?? undefined;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) {
      await withTimeout(this.client.put(this.key(key)).value(value).exec(), this.timeoutMs);
      return;
    }
    const lease = this.client.lease(Math.max(1, Math.ceil(ttlMs / 1000)), { autoKeepAlive: false });
    await withTimeout(lease.put(this.key(key)).value(value).exec(), this.timeoutMs);
  }

  async delete(key: string): Promise<void> {
    await withTimeout(this.client.delete().key(this.key(key)).exec(), this.timeoutMs);
  }

  async incr(key: string, by: number): Promise<number> {
    const k = this.key(key);
    for (let attempt = 0; attempt < 100; attempt++) {
      const r = await withTimeout(this.client.get(k).exec(), this.timeoutMs);
      const kv = r.kvs[0];
      const next = (kv === undefined ? 0 : Number(kv.value.toString('utf8')) || 0) + by;
      // Written only if nobody wrote in between (the key absent: created revision 0).
      const cmp = kv === undefined ? this.client.if(k, 'Create', '==', 0) : this.client.if(k, 'Mod', '==', kv.mod_revision);
      const t = await withTimeout(cmp.then(this.client.put(k).value(String(next))).commit(), this.timeoutMs);
      if (t.succeeded) return next;
    }
    throw new Error(`etcd ${this.endpoint}: ${k} kept changing; increment given up`);
  }

  async subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void> {
    const watcher: Watcher = await withTimeout(this.client.watch().key(this.key(`channel/${channel}`)).create(), this.timeoutMs);
    watcher.on('put', (kv) => onMessage(kv.value.toString('utf8')));
    watcher.on('error', () => undefined);
    const stop = (): void => void watcher.cancel().catch(() => undefined);
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  }

  async publish(channel: string, msg: string): Promise<void> {
    await withTimeout(this.client.put(this.key(`channel/${channel}`)).value(msg).exec(), this.timeoutMs);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
