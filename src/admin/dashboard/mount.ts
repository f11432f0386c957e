import { readFileSync } from 'node:fs';
import type { Observability } from '../../observability/observability.js';
import type { AdminHandler, AdminMethod } from '../router.js';
import { eventsRoute } from './events-route.js';
import { DashboardAssets, staticRoute } from './static-route.js';

/** Where routes are mounted (an AdminServer). */
export interface RouteTable {
  route(method: AdminMethod, pattern: string, handler: AdminHandler): void;
}

export interface DashboardInfo {
  readonly node: string;
  /** Default: the version in Portico's package.json. */
  readonly version?: string;
  /** Whether mutations need a bearer token (the page asks for it before the first change). */
  readonly hasToken: () => boolean;
}

/** `GET /metrics`: the Prometheus text format. */
export function metricsRoute(obs: Observability): AdminHandler {
  return async (req, res) => {
    const text = await obs.metrics.render();
    res.writeHead(200, {
      'content-type': obs.metrics.contentType,
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(text),
    });
    res.end(req.method === 'HEAD' ? undefined : text);
    return undefined;
  };
}

/** Mount `/metrics`, `/api/v1/events` and the dashboard (`/`, `/dashboard/{file}`) on the admin server. */
export function mountObservability(table: RouteTable, obs: Observability, info: DashboardInfo): void {
  const startedAt = Date.now();
  const assets = new DashboardAssets();
  table.route('GET', '/metrics', metricsRoute(obs));
  table.route(
    'GET',
    '/api/v1/events',
    eventsRoute(obs.hub, {
      info: () => ({
        node: info.node,
        version: info.version ?? packageVersion(),
        startedAt,
        intervalMs: obs.live.intervalMs,
        tokenRequired: info.hasToken(),
      }),
    }),
  );
  table.route('GET', '/', staticRoute(assets, 'index.html'));
  table.route('GET', '/dashboard/{file}', staticRoute(assets));
}

let version: string | undefined;
/** Portico's version, from its package.json (read once). */
function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
