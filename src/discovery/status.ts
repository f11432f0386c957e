import type { DiscoveryConfig } from '../config/types.js';
import { CollectedMetric } from '../observability/metrics.js';
import { consulSource } from './consul-discovery.js';
import { parseEtcdUrl } from './etcd-url.js';
import type { WatcherState } from './watcher.js';

/**
 * What the admin API shows of a pool's discovery (`discovery` of `GET /api/v1/pools/{pool}`),
 * and what the metrics `portico_discovery_*` are read from. Plain JSON: with `cluster.workers`
 * the primary, which runs discovery, sends it to the worker that answers.
 */
export interface DiscoveryStatus {
  readonly type: string;
  /** Where the servers come from: the file's path, the DNS name, the etcd endpoint and prefix (never credentials). */
  readonly source: string;
  /** Servers of the list in force. */
  readonly servers: number;
  /** New lists handed on to the pool. */
  readonly updates: number;
  /** Attempts that failed (resolution, invalid file, etcd unreachable ...). */
  readonly failures: number;
  /** Empty lists after a non-empty one, ignored. */
  readonly ignoredEmpty: number;
  /** The last failure's message (null before the first); it stays after the source recovers. */
  readonly lastError: string | null;
  readonly lastUpdateAt: string | null;
  readonly lastErrorAt: string | null;
  /** The last attempt failed and the list of before stays in force. */
  readonly usingLastKnownGood: boolean;
}

/** Where a discovery section takes its servers from, without credentials. */
export function discoverySource(dc: DiscoveryConfig): string {
  switch (dc.type) {
    case 'static':
      return 'servers';
    case 'file':
      return dc.path;
    case 'dns-srv':
      return dc.name;
    case 'dns':
      return `${dc.name}:${dc.port}`;
    case 'consul':
      return consulSource(dc.url, dc.service, dc.datacenter);
    case 'zookeeper':
      return `zookeeper://${dc.hosts.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)).join(',')}${dc.path}`;
    case 'etcd': {
      try {
        const loc = parseEtcdUrl(dc.url);
        return `etcd://${loc.endpoint.slice('http://'.length)}${loc.prefix}`;
      } catch {
        return 'etcd';
      }
    }
  }
}

/** The status of a pool's discovery from its section and its watcher's state. */
export function discoveryStatus(dc: DiscoveryConfig, state: WatcherState): DiscoveryStatus {
  return {
    type: dc.type,
    source: discoverySource(dc),
    servers: state.servers?.length ?? 0,
    updates: state.updates,
    failures: state.failures,
    ignoredEmpty: state.ignoredEmpty,
    lastError: state.lastError ?? null,
    lastUpdateAt: iso(state.lastUpdateAt),
    lastErrorAt: iso(state.lastErrorAt),
    usingLastKnownGood: state.failing && state.servers !== undefined,
  };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/**
 * `portico_discovery_updates_total`, `_failures_total`, `_servers` and
 * `_last_update_timestamp_seconds`, by pool, read at scrape time from `statuses` (each
 * discovery pool and its status). With `cluster.workers` only the primary has any: the workers
 * run no discovery, so the merged figures are the primary's, once.
 */
export function discoveryMetrics(statuses: () => Iterable<readonly [string, DiscoveryStatus]>): CollectedMetric[] {
  const metric = (name: string, help: string, type: 'counter' | 'gauge', value: (s: DiscoveryStatus) => number): CollectedMetric =>
    new CollectedMetric(
      name,
      help,
      type,
      function* () {
        for (const [pool, s] of statuses()) yield { labels: { pool }, value: value(s) };
      },
      type === 'counter' ? 'sum' : 'max',
    );
  return [
    metric('portico_discovery_updates_total', 'New server lists that discovery handed on to the pool', 'counter', (s) => s.updates),
    metric('portico_discovery_failures_total', 'Discovery attempts that failed (the last good list stayed)', 'counter', (s) => s.failures),
    metric('portico_discovery_servers', 'Servers of the discovered list in force', 'gauge', (s) => s.servers),
    metric(
      'portico_discovery_last_update_timestamp_seconds',
      'When discovery last handed on a new list (seconds since the epoch; 0 before the first)',
      'gauge',
      (s) => (s.lastUpdateAt === null ? 0 : Date.parse(s.lastUpdateAt) / 1000),
    ),
  ];
}
