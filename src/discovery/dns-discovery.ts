import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiscoveryError, serverNameOf, type Discovery, type ServerSpec } from './discovery.js';

export interface DnsDiscoveryOptions {
  /** An SRV name (`_http._tcp.web.example.com`), or with `port` a name whose A/AAAA records are the servers. */
  readonly name: string;
  /** Resolve A/AAAA records of `name` and use this port, instead of SRV records. */
  readonly port?: number | undefined;
  readonly refreshMs: number;
  /** Name servers to ask (`host:port`); default: the system's. */
  readonly nameservers?: readonly string[] | undefined;
  /** Per-query timeout (default 2 s). */
  readonly timeoutMs?: number;
}

/** DNS codes that mean "this name has no such record": an empty answer, not a failure. */
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND']);

/**
 * Servers from DNS, resolved again every `refreshMs`: SRV records (target, port, weight;
 * records of the lowest priority are primaries, the others backups), each target resolved to
 * its A and AAAA addresses; or, with `port`, the A and AAAA records of a name. A resolution
 * that fails (timeout, SERVFAIL, refused) is a failure; the last good list stays.
 */
export class DnsDiscovery implements Discovery {
  readonly name: string;
  private readonly opts: DnsDiscoveryOptions;

  constructor(opts: DnsDiscoveryOptions) {
    this.opts = opts;
    this.name = opts.port === undefined ? `dns-srv ${opts.name}` : `dns ${opts.name}:${opts.port}`;
  }

  async *watch(signal: AbortSignal): AsyncIterable<readonly ServerSpec[]> {
    const resolver = new Resolver({ timeout: this.opts.timeoutMs ?? 2000, tries: 2 });
    if (this.opts.nameservers !== undefined && this.opts.nameservers.length > 0) resolver.setServers([...this.opts.nameservers]);
    const onAbort = (): void => resolver.cancel();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        yield await this.resolveOnce(resolver);
        try {
          await sleep(this.opts.refreshMs, undefined, { signal });
        } catch {
          return;
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** One resolution of the whole list. */
  async resolveOnce(resolver: Resolver): Promise<ServerSpec[]> {
    const port = this.opts.port;
    if (port !== undefined) {
      const addrs = await this.addresses(resolver, this.opts.name);
      return addrs.map((a) => server(addrs.length === 1 ? `${this.opts.name}-${port}` : `${a}-${port}`, a, port, 1, false));
    }
    let records: { name: string; port: number; priority: number; weight: number }[];
    try {
      records = await resolver.resolveSrv(this.opts.name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (NO_RECORDS.has(code)) return [];
      throw new DiscoveryError(this.name, `SRV lookup failed: ${code || String(err)}`, { cause: err });
    }
    if (records.length === 0) return [];
    const primary = Math.min(...records.map((r) => r.priority));
    const out: ServerSpec[] = [];
    for (const r of records) {
      const target = r.name.replace(/\.$/, '');
      const addrs = await this.addresses(resolver, target);
      const weight = Math.max(1, Math.min(256, r.weight));
      for (const a of addrs) {
        const name = addrs.length === 1 ? `${target}-${r.port}` : `${target}-${a}-${r.port}`;
        out.push(server(name, a, r.port, weight, r.priority !== primary));
      }
    }
    return out;
  }

  /** The A and AAAA addresses of a name (an address literal is itself). */
  private async addresses(resolver: Resolver, host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const out: string[] = [];
    const errors: string[] = [];
    for (const r of [v4, v6]) {
      if (r.status === 'fulfilled') out.push(...r.value);
      else {
        const code = (r.reason as NodeJS.ErrnoException).code ?? String(r.reason);
        if (!NO_RECORDS.has(code)) errors.push(code);
      }
    }
    if (errors.length > 0) throw new DiscoveryError(this.name, `address lookup of ${host} failed: ${errors.join(', ')}`);
    return out;
  }
}

function server(name: string, host: string, port: number, weight: number, backup: boolean): ServerSpec {
  return { name: serverNameOf(name), address: { host, port }, weight, backup, maxConnections: 0, state: 'ready' };
}
