import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Consul's health endpoint as its HTTP API documents it, served by the test (Consul's server is
 * not packaged here): `GET /v1/health/service/NAME` with `passing`, `tag` (repeatable, all must
 * match), `dc`, and blocking queries (`index`, `wait`): a query whose index is the current one
 * is held until the catalog changes or `wait` passes, and every answer carries X-Consul-Index.
 * With `token` set, a query without that X-Consul-Token gets 403 "ACL not found", as Consul's.
 */
export interface FakeInstance {
  /** The service it is an instance of (default web). */
  readonly service?: string;
  readonly id: string;
  readonly node: string;
  readonly address: string;
  readonly port: number;
  readonly tags?: readonly string[];
  readonly dc?: string;
  readonly weight?: number;
  /** Status of the instance's check: passing, warning or critical. */
  check: 'passing' | 'warning' | 'critical';
}

export interface QueryLog {
  readonly url: string;
  readonly token: string | undefined;
  /** The query was held (blocking) and released by a change, not by its wait. */
  releasedByChange: boolean;
}

export interface FakeConsul {
  readonly url: string;
  /** Every query received, in order. */
  readonly queries: QueryLog[];
  /** The catalog: change it through set(). */
  instances(): readonly FakeInstance[];
  /** Replace the catalog; the index moves on and held queries are answered. */
  set(instances: FakeInstance[]): void;
  /** Answer every query with this status (and an error text) until called with undefined. */
  failWith(status: number | undefined): void;
  /** Queries held right now. */
  held(): number;
  close(): Promise<void>;
}

export async function startFakeConsul(opts: { token?: string; datacenter?: string } = {}): Promise<FakeConsul> {
  const localDc = opts.datacenter ?? 'dc1';
  let catalog: FakeInstance[] = [];
  let index = 10;
  let failing: number | undefined;
  const queries: QueryLog[] = [];
  const waiting = new Set<() => void>();

  const parseWait = (w: string | null): number => {
    const m = /^(\d+)(ms|s|m)?$/.exec(w ?? '');
    if (m === null) return 5 * 60_000;
    const n = Number(m[1]);
    return Math.min(10 * 60_000, m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
  };

  const answer = (res: ServerResponse, service: string, q: URLSearchParams): void => {
    const dc = q.get('dc') ?? localDc;
    const tags = q.getAll('tag');
    const passing = q.has('passing') && q.get('passing') !== 'false';
    const body = catalog
      .filter((i) => (i.service ?? 'web') === service)
      .filter((i) => (i.dc ?? localDc) === dc)
      .filter((i) => tags.every((t) => (i.tags ?? []).includes(t)))
      .filter((i) => !passing || i.check === 'passing')
      .map((i) => ({
        Node: { ID: `id-${i.node}`, Node: i.node, Address: '127.0.0.9', Datacenter: i.dc ?? localDc },
        Service: { ID: i.id, Service: service, Tags: i.tags ?? [], Address: i.address, Port: i.port, Weights: { Passing: i.weight ?? 1, Warning: 1 }, Meta: {} },
        Checks: [
          { Node: i.node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing' },
          { Node: i.node, CheckID: `service:${i.id}`, Name: `Service '${service}' check`, Status: i.check, ServiceID: i.id },
        ],
      }));
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(index), 'x-consul-knownleader': 'true' });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://consul');
    const token = req.headers['x-consul-token'];
    const log: QueryLog = { url: req.url ?? '', token: typeof token === 'string' ? token : undefined, releasedByChange: false };
    queries.push(log);
    const m = /^\/v1\/health\/service\/([^/]+)$/.exec(u.pathname);
    if (req.method !== 'GET' || m === null) {
      res.writeHead(404).end('not found');
      return;
    }
    if (failing !== undefined) {
      res.writeHead(failing, { 'content-type': 'text/plain' }).end('rpc error: No cluster leader');
      return;
    }
    if (opts.token !== undefined && log.token !== opts.token) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('ACL not found');
      return;
    }
    const service = decodeURIComponent(m[1]!);
    const asked = Number(u.searchParams.get('index') ?? '0');
    if (!(asked > 0) || asked < index) {
      answer(res, service, u.searchParams);
      return;
    }
    // Blocking: hold until a change or the wait.
    const release = (): void => {
      clearTimeout(timer);
      waiting.delete(release);
      log.releasedByChange = true;
      if (failing !== undefined) res.writeHead(failing).end('rpc error');
      else answer(res, service, u.searchParams);
    };
    const timer = setTimeout(() => {
      waiting.delete(release);
      answer(res, service, u.searchParams);
    }, parseWait(u.searchParams.get('wait')));
    waiting.add(release);
    req.on('close', () => {
      clearTimeout(timer);
      waiting.delete(release);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    queries,
    instances: () => catalog,
    set(instances) {
      catalog = instances;
      index++;
      for (const r of [...waiting]) r();
    },
    failWith(status) {
      failing = status;
      index++;
      for (const r of [...waiting]) r();
    },
    held: () => waiting.size,
    async close() {
      for (const r of [...waiting]) r();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
