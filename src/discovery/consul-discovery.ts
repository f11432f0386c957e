import { setTimeout as sleep } from 'node:timers/promises';
import { DiscoveryError, serverNameOf, type Discovery, type ServerSpec } from './discovery.js';

export interface ConsulDiscoveryOptions {
  /** The agent's HTTP API, `http://127.0.0.1:8500`. */
  readonly url: string;
  readonly service: string;
  /** Only instances that carry every one of these tags. */
  readonly tags: readonly string[];
  /** Another datacenter than the agent's. */
  readonly datacenter?: string | undefined;
  /** ACL token, sent as X-Consul-Token. */
  readonly token?: string | undefined;
  /** How long Consul may hold a blocking query (ms). */
  readonly waitMs: number;
  /** Least time between the starts of two queries (ms, default 100): a Consul that stops blocking is not hammered. */
  readonly minIntervalMs?: number;
}

/** One entry of /v1/health/service/NAME, as far as Portico reads it. */
interface HealthEntry {
  readonly Node?: { readonly Node?: unknown; readonly Address?: unknown; readonly Datacenter?: unknown };
  readonly Service?: { readonly ID?: unknown; readonly Address?: unknown; readonly Port?: unknown; readonly Tags?: unknown; readonly Weights?: { readonly Passing?: unknown } };
  readonly Checks?: readonly { readonly Status?: unknown }[];
}

/**
 * Servers of a Consul service whose checks all pass: `GET /v1/health/service/NAME?passing=true`
 * (with `dc` and `tag` when set), repeated as blocking queries (`index` = the last
 * X-Consul-Index, `wait`) so that a change is seen as soon as Consul has it. The index
 * handling follows Consul's documented rules: an index that goes backwards restarts at 0, one
 * below 1 is taken as 1, and queries are spaced by `minIntervalMs`. A failure (refused, an
 * error status, a body that is not the expected JSON) throws; the watcher keeps the last list.
 */
export class ConsulDiscovery implements Discovery {
  readonly name: string;
  private readonly opts: ConsulDiscoveryOptions;
  private readonly base: string;

  constructor(opts: ConsulDiscoveryOptions) {
    this.opts = opts;
    this.name = `consul ${consulSource(opts.url, opts.service, opts.datacenter)}`;
    const q = new URLSearchParams({ passing: 'true' });
    if (opts.datacenter !== undefined) q.set('dc', opts.datacenter);
    for (const t of opts.tags) q.append('tag', t);
    this.base = `${opts.url.replace(/\/+$/, '')}/v1/health/service/${encodeURIComponent(opts.service)}?${q.toString()}`;
  }

  async *watch(signal: AbortSignal): AsyncIterable<readonly ServerSpec[]> {
    let index = 0;
    const waitS = Math.max(1, Math.ceil(this.opts.waitMs / 1000));
    // Consul adds up to wait/16 of jitter; then allow 10 s for the network.
    const timeoutMs = waitS * 1000 + Math.ceil((waitS * 1000) / 16) + 10_000;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token !== undefined) headers['x-consul-token'] = this.opts.token;
    const minInterval = this.opts.minIntervalMs ?? 100;
    let lastStart = -Infinity;
    while (!signal.aborted) {
      const since = performance.now() - lastStart;
      if (since < minInterval) {
        try {
          await sleep(minInterval - since, undefined, { signal });
        } catch {
          return;
        }
      }
      lastStart = performance.now();
      const url = index > 0 ? `${this.base}&index=${index}&wait=${waitS}s` : this.base;
      let res: Response;
      let body: unknown;
      try {
        res = await fetch(url, { headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
        const text = await res.text();
        if (!res.ok) throw new Error(`HTTP ${res.status}${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}`);
        body = JSON.parse(text);
      } catch (err) {
        if (signal.aborted) return;
        throw new DiscoveryError(this.name, `health query failed: ${(err as Error).message}`, { cause: err });
      }
      const list = this.parse(body);
      const next = Number(res.headers.get('x-consul-index'));
      if (!Number.isSafeInteger(next) || next < index) index = 0;
      else index = Math.max(1, next);
      yield list;
    }
  }

  /** The instances of an answer whose checks all pass and that carry the tags. */
  parse(body: unknown): ServerSpec[] {
    if (!Array.isArray(body)) throw new DiscoveryError(this.name, `health query answered ${typeof body}, not a list`);
    const out: ServerSpec[] = [];
    const ids = new Map<string, number>();
    for (const e of body as HealthEntry[]) {
      const id = typeof e?.Service?.ID === 'string' ? e.Service.ID : '';
      ids.set(id, (ids.get(id) ?? 0) + 1);
    }
    for (const e of body as HealthEntry[]) {
      const s = e?.Service;
      if (s === undefined || typeof s !== 'object' || s === null) continue;
      // passing=true already filters; a check that is not passing (an older agent, a proxy) still leaves the instance out.
      if (Array.isArray(e.Checks) && e.Checks.some((c) => c?.Status !== 'passing')) continue;
      const tags = Array.isArray(s.Tags) ? s.Tags : [];
      if (!this.opts.tags.every((t) => tags.includes(t))) continue;
      const host = typeof s.Address === 'string' && s.Address !== '' ? s.Address : typeof e.Node?.Address === 'string' ? e.Node.Address : '';
      const port = typeof s.Port === 'number' ? s.Port : 0;
      if (host === '' || !Number.isInteger(port) || port < 1 || port > 65535) continue;
      const id = typeof s.ID === 'string' && s.ID !== '' ? s.ID : `${host}-${port}`;
      const node = typeof e.Node?.Node === 'string' ? e.Node.Node : host;
      const name = serverNameOf((ids.get(id) ?? 0) > 1 ? `${node}-${id}` : id);
      const w = typeof s.Weights?.Passing === 'number' ? s.Weights.Passing : 1;
      out.push({ name, address: { host, port }, weight: Math.max(1, Math.min(256, Math.round(w))), backup: false, maxConnections: 0, state: 'ready' });
    }
    return out;
  }
}

/** `URL/SERVICE` (with `@DC`), what the status and the log show; the token is never in it. */
export function consulSource(url: string, service: string, datacenter: string | undefined): string {
  let origin = url;
  try {
    const u = new URL(url);
    origin = `${u.protocol}//${u.host}`;
  } catch {
    // a URL the schema accepted parses; keep it as it is otherwise
  }
  return `${origin}/${service}${datacenter === undefined ? '' : `@${datacenter}`}`;
}
