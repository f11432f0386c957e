import { DiscoveryError, parseServerEntry, serverNameOf, type Discovery, type ServerSpec } from './discovery.js';
import { ZK_NONODE, ZkClient, ZkError, type ZkWatchEvent } from './zookeeper-client.js';

export interface ZookeeperDiscoveryOptions {
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  /** The znode whose children are the servers. */
  readonly path: string;
  /** Session timeout asked of ZooKeeper (ms). */
  readonly sessionTimeoutMs: number;
  /** Time to get a session from one host (ms). */
  readonly connectTimeoutMs: number;
  /** A child that is not a valid server is left out and reported here. */
  readonly warn?: (message: string) => void;
}

/**
 * Servers registered in ZooKeeper: the children of a znode, one per server, usually ephemeral
 * (a server's node goes when its session ends). A child's data is the server: `host:port`, a
 * JSON object `{"host": ..., "port": ..., "weight"?: ...}`, a server of the configuration file
 * as JSON (`{"address": "host:port", ...}`), or the JSON of Apache Curator's ServiceInstance
 * (`{"address": ..., "port": ..., "sslPort": ..., "enabled": ...}`). Its name is the child's.
 * The children and each child's data are watched; any change reads the whole list again.
 * A lost connection is a failure: the last list stays and a new session is opened after the
 * watcher's back-off.
 */
export class ZookeeperDiscovery implements Discovery {
  readonly name: string;
  private readonly opts: ZookeeperDiscoveryOptions;

  constructor(opts: ZookeeperDiscoveryOptions) {
    this.opts = opts;
    this.name = `zookeeper ${opts.hosts.map(formatHost).join(',')}${opts.path}`;
  }

  async *watch(signal: AbortSignal): AsyncIterable<readonly ServerSpec[]> {
    const client = new ZkClient({ hosts: this.opts.hosts, sessionTimeoutMs: this.opts.sessionTimeoutMs, connectTimeoutMs: this.opts.connectTimeoutMs });
    let dirty = true;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    client.onWatch = (e: ZkWatchEvent) => {
      // Only node events matter (a state-only event has type -1); any of them reads everything again.
      if (e.type > 0) {
        dirty = true;
        poke();
      }
    };
    let lost: Error | undefined;
    void client.closed.then((reason) => {
      lost = reason;
      poke();
    });
    signal.addEventListener('abort', poke);
    try {
      try {
        await client.connect();
      } catch (err) {
        throw new DiscoveryError(this.name, (err as Error).message, { cause: err });
      }
      while (!signal.aborted) {
        if (lost !== undefined) throw new DiscoveryError(this.name, `session lost: ${lost.message}`, { cause: lost });
        if (dirty) {
          dirty = false;
          let list: ServerSpec[];
          try {
            list = await this.read(client);
          } catch (err) {
            if (signal.aborted) return;
            throw new DiscoveryError(this.name, `cannot read ${this.opts.path}: ${(err as Error).message}`, { cause: err });
          }
          yield list;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', poke);
      await client.close();
    }
  }

  /** The children of the path and their data, each watched; a missing path is an empty list, watched for its creation. */
  private async read(client: ZkClient): Promise<ServerSpec[]> {
    const path = this.opts.path;
    let children: string[];
    try {
      ({ children } = await client.getChildren(path, true));
    } catch (err) {
      if (err instanceof ZkError && err.code === ZK_NONODE) {
        // Created between the two calls: exists() sees it and the next round reads it.
        if ((await client.exists(path, true)) === null) return [];
        return this.read(client);
      }
      throw err;
    }
    const base = path === '/' ? '' : path;
    // Pipelined: ZooKeeper answers a session's requests in order.
    const datas = await Promise.all(
      children.map((c) =>
        client.getData(`${base}/${c}`, true).then(
          (r) => r.data.toString('utf8'),
          (err: unknown) => {
            if (err instanceof ZkError && err.code === ZK_NONODE) return undefined; // gone meanwhile; its parent's watch fires
            throw err;
          },
        ),
      ),
    );
    const out: ServerSpec[] = [];
    children.forEach((child, i) => {
      const data = datas[i];
      if (data === undefined) return;
      const r = parseZookeeperEntry(data, child);
      if (r.ok) {
        if (r.server !== null) out.push(r.server);
      } else this.opts.warn?.(`${this.name}: node ${base}/${child} is not a valid server (${r.message}); left out`);
    });
    return out;
  }
}

/**
 * One child's data as a server named after the child (see ZookeeperDiscovery); `server: null`
 * for a Curator instance registered with `enabled: false`.
 */
export function parseZookeeperEntry(data: string, child: string): { ok: true; server: ServerSpec | null } | { ok: false; message: string } {
  const name = serverNameOf(child);
  const text = data.trim();
  if (!text.startsWith('{')) {
    if (text === '') return { ok: false, message: 'no data (expected host:port or JSON)' };
    return parseServerEntry({ address: text }, name);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, message: 'not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, message: 'expected a JSON object' };
  const o = raw as Record<string, unknown>;
  // {host, port, weight?}
  if (typeof o.host === 'string') {
    const { host, port, ...rest } = o;
    return parseServerEntry({ ...rest, address: joinAddress(host, port) }, name);
  }
  // Curator's ServiceInstance: address without a port, port (or sslPort), and fields of its own.
  if (typeof o.address === 'string' && ('port' in o || 'sslPort' in o) && ('registrationTimeUTC' in o || 'serviceType' in o || 'id' in o || 'payload' in o)) {
    if (o.enabled === false) return { ok: true, server: null };
    const port = typeof o.port === 'number' ? o.port : o.sslPort;
    const weight = typeof o.weight === 'number' ? o.weight : undefined;
    return parseServerEntry({ name, address: joinAddress(o.address, port), ...(weight === undefined ? {} : { weight }) });
  }
  return parseServerEntry(o, name);
}

function joinAddress(host: string, port: unknown): string {
  const p = typeof port === 'number' || typeof port === 'string' ? String(port) : '';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${p}` : `${host}:${p}`;
}

function formatHost(h: { readonly host: string; readonly port: number }): string {
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}
