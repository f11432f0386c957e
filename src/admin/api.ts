import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { checkAvailability } from '../config/availability.js';
import { ConfigError } from '../config/errors.js';
import { errorMap, toPathIssues } from '../config/issues.js';
import { formatPath } from '../config/path.js';
import { serverSchema } from '../config/schema/server.js';
import type { Config, PoolConfig, ServerConfig } from '../config/types.js';
import { deepEqual } from '../core/deep-equal.js';
import { discoverySource, type DiscoveryStatus } from '../discovery/status.js';
import type { PoolFrame } from '../observability/live-stats.js';
import { lawsView } from '../observability/laws-view.js';
import { parseDuration } from '../config/values/duration.js';
import type { Pool } from '../pool/pool.js';
import type { ServerRuntime } from '../pool/server-runtime.js';
import { CACHE_ENDPOINTS } from './cache-api.js';
import { CONFIG_ENDPOINTS, definitionView, mountConfigApi } from './config-api.js';
import { AdminError, badRequest, conflict, invalid, notFound, type AdminIssue } from './admin-error.js';
import { JsonReply } from './admin-server.js';
import { isPoolLevel, serverChange, withHealthChange, withServerChange, type RuntimeChange, type ServerChange, type ServerSettings } from './journal.js';
import { overlay, parseHealth, parseServer, type OverlayEntry } from './overlay.js';
import type { AdminContext, AdminHandler, AdminMethod } from './router.js';

/** The last probe results of a pool's servers (a HealthMonitor fits). */
export interface HealthView {
  readonly kind: string;
  status(): readonly {
    readonly server: string;
    readonly passed: number;
    readonly failed: number;
    readonly last?: unknown;
    readonly lastAt: number;
  }[];
}

/** Rates of the last statistics interval (the live statistics frame fits). */
export interface RateFrame {
  readonly rps: number;
  readonly errorRate: number | null;
  readonly bytesPerSec: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
}

export interface StatsView {
  readonly time: number;
  readonly intervalMs: number;
  readonly pools: readonly (RateFrame & { readonly name: string; readonly servers: readonly (RateFrame & { readonly name: string })[] } & Partial<Pick<PoolFrame, 'laws' | 'operational'>>)[];
}

/** Where the running configuration comes from and how it changes (src/app/config-runtime.ts fits). */
export interface ConfigSource {
  readonly fileConfig: Config;
  readonly file: string | undefined;
  readonly generation: number;
  readonly loadedAt: number;
  readonly lastReload:
    | { readonly at: number; readonly ok: boolean; readonly generation: number; readonly changes?: readonly string[] | undefined; readonly errors?: readonly string[] | undefined }
    | undefined;
  readonly entries: readonly OverlayEntry[];
  readonly journal: { readonly path: string | undefined; readonly current: readonly RuntimeChange[] };
  /** The file with the pools, listeners and load balancers defined through the API laid over it (before their servers' changes). */
  readonly definedConfig: Config;
  readonly journalProblem: string | undefined;
  reload(): Promise<{ readonly generation: number; readonly changes: readonly string[]; readonly restartRequired: readonly string[] }>;
  /**
   * Set in a worker of `cluster.workers`: a reload through the admin API reloads every worker
   * (the primary validates the configuration once); resolves with this worker's result.
   */
  readonly reloadAll?: (() => Promise<unknown>) | undefined;
  change(
    edit: (changes: readonly RuntimeChange[], running: Config) => readonly RuntimeChange[],
    options?: { readonly cut?: ReadonlySet<string> | undefined },
  ): Promise<void>;
}

/** What the admin API reads and changes: the running Portico, through its public parts. */
export interface AdminRuntime {
  /** What runs (the file with the runtime changes laid over it). */
  readonly config: Config;
  readonly pools: ReadonlyMap<string, Pool>;
  readonly listeners: readonly { readonly name: string; readonly protocol: string; readonly address: { readonly host: string; readonly port: number } }[];
  readonly health: ReadonlyMap<string, { readonly monitor?: HealthView | undefined }>;
  readonly runtime: ConfigSource;
  readonly isStarted: boolean;
  /** The last live statistics frame, for per-server rates (undefined before the first). */
  lastStats?(): StatsView | undefined;
  /** The status of a pool's discovery run by this process (undefined: static, or run by the primary of `cluster.workers`). */
  discovery?(pool: string): DiscoveryStatus | undefined;
}

export interface ApiInfo {
  readonly node: string;
  readonly version?: string;
  /** The shared store's state (`cluster.store: redis://...`), shown as `store` in the status. */
  readonly store?: (() => unknown) | undefined;
}

interface RouteTable {
  route(method: AdminMethod, pattern: string, handler: AdminHandler): void;
}

/** Mount the endpoints of SPEC §5 (all but /metrics, /api/v1/events and the dashboard) under /api/v1. */
export function mountAdminApi(table: RouteTable, rt: AdminRuntime, info: ApiInfo): void {
  const startedAt = Date.now();
  const version = info.version ?? packageVersion();
  const api = new AdminApi(rt);
  table.route('GET', '/api/v1', () => ({ endpoints: ENDPOINTS }));
  table.route('GET', '/api/v1/status', () => {
    const status = api.status(info.node, version, startedAt);
    return info.store === undefined ? status : { ...(status as object), store: info.store() };
  });
  table.route('GET', '/api/v1/status/ready', () => api.ready());
  table.route('GET', '/api/v1/pools', () => ({ pools: [...rt.pools.values()].map((p) => api.poolView(p)) }));
  table.route('GET', '/api/v1/pools/{pool}', (_q, _s, ctx) => api.poolView(api.pool(ctx)));
  table.route('GET', '/api/v1/pools/{pool}/laws', (_q, _s, ctx) => api.laws(ctx));
  table.route('GET', '/api/v1/pools/{pool}/servers/{name}', (_q, _s, ctx) => api.serverView(api.pool(ctx), api.server(api.pool(ctx), ctx)));
  table.route('POST', '/api/v1/pools/{pool}/servers', (_q, _s, ctx) => api.register(ctx));
  table.route('PATCH', '/api/v1/pools/{pool}/servers/{name}', (_q, _s, ctx) => api.patch(ctx));
  table.route('DELETE', '/api/v1/pools/{pool}/servers/{name}', (_q, _s, ctx) => api.deregister(ctx));
  table.route('DELETE', '/api/v1/pools/{pool}/servers/{name}/runtime-change', (_q, _s, ctx) => api.reset(ctx));
  table.route('PUT', '/api/v1/pools/{pool}/health', (_q, _s, ctx) => api.setHealth(ctx));
  table.route('POST', '/api/v1/reload', () => api.reload());
  mountConfigApi(table, rt);
}

const ENDPOINTS = [
  'GET /api/v1/status',
  'GET /api/v1/status/ready',
  'GET /api/v1/pools',
  'GET /api/v1/pools/{pool}',
  'GET /api/v1/pools/{pool}/laws?z=THINKTIME',
  'GET /api/v1/pools/{pool}/servers/{name}',
  'POST /api/v1/pools/{pool}/servers',
  'PATCH /api/v1/pools/{pool}/servers/{name}',
  'DELETE /api/v1/pools/{pool}/servers/{name}?now=true',
  'DELETE /api/v1/pools/{pool}/servers/{name}/runtime-change',
  'PUT /api/v1/pools/{pool}/health',
  'POST /api/v1/reload',
  'POST /api/v1/upgrade',
  'GET /api/v1/listeners/{listener}/{view} (a kind\'s views: tcp bindings, kernel flows and kernel)',
  ...CONFIG_ENDPOINTS,
  ...CACHE_ENDPOINTS,
  'GET /api/v1/events',
  'GET /metrics',
];

/** The fields PATCH may change, validated as the configuration validates them. */
const patchSchema = serverSchema.pick({ weight: true, state: true, maxConnections: true }).partial();

class AdminApi {
  constructor(private readonly rt: AdminRuntime) {}

  // ---- reads ------------------------------------------------------------------------------

  status(node: string, version: string, startedAt: number): unknown {
    const rt = this.rt;
    const src = rt.runtime;
    const now = Date.now();
    return {
      node,
      version,
      pid: process.pid,
      startedAt: new Date(startedAt).toISOString(),
      uptimeSec: Math.round((now - startedAt) / 1000),
      ready: this.readiness().ready,
      listeners: rt.listeners.map((l) => ({ name: l.name, protocol: l.protocol, address: fmtAddress(l.address) })),
      config: {
        file: src.file ?? null,
        generation: src.generation,
        loadedAt: new Date(src.loadedAt).toISOString(),
        lastReload:
          src.lastReload === undefined
            ? null
            : {
                at: new Date(src.lastReload.at).toISOString(),
                ok: src.lastReload.ok,
                generation: src.lastReload.generation,
                ...(src.lastReload.changes !== undefined ? { changes: src.lastReload.changes } : {}),
                ...(src.lastReload.errors !== undefined ? { errors: src.lastReload.errors } : {}),
              },
        pools: src.fileConfig.pools.length,
        listeners: src.fileConfig.listeners.length,
      },
      runtimeChanges: {
        journal: src.journal.path ?? null,
        ...(src.journalProblem !== undefined ? { problem: src.journalProblem } : {}),
        inForce: src.entries.filter((e) => e.applied).map((e) => this.changeView(e)),
        notApplied: src.entries.filter((e) => !e.applied).map((e) => this.changeView(e)),
      },
    };
  }

  ready(): JsonReply {
    const r = this.readiness();
    return new JsonReply(r.ready ? 200 : 503, r);
  }

  private readiness(): { ready: boolean; reason?: string } {
    if (!this.rt.isStarted) return { ready: false, reason: 'starting or stopping' };
    if (this.rt.listeners.length === 0) return { ready: false, reason: 'no listener is up' };
    return { ready: true };
  }

  /** One runtime change, with the file's values beside the runtime ones. */
  private changeView(e: OverlayEntry): Record<string, unknown> {
    const c = e.change;
    if (!isPoolLevel(c)) return definitionView(e, this.rt.runtime.fileConfig);
    const file = this.rt.runtime.definedConfig.pools.find((p) => p.name === c.pool);
    const base: Record<string, unknown> = { pool: c.pool };
    if (c.kind === 'health') {
      Object.assign(base, { kind: 'health', runtime: c.health, config: file?.health ?? null });
    } else {
      const fileServer = file?.servers.find((s) => s.name === c.server);
      base.server = c.server;
      if (c.removed === true) Object.assign(base, { kind: 'deregistered', config: fileServer === undefined ? null : fileServerView(fileServer) });
      else if (c.spec !== undefined) {
        Object.assign(base, { kind: 'registered', runtime: { ...c.spec, ...c.set }, config: fileServer === undefined ? null : fileServerView(fileServer) });
      } else {
        const was: Record<string, unknown> = {};
        for (const k of Object.keys(c.set ?? {})) was[k] = fileServer === undefined ? null : fileServer[k as keyof ServerSettings];
        Object.assign(base, { kind: 'changed', runtime: c.set ?? {}, config: was });
      }
    }
    base.at = c.at;
    if (!e.applied) base.reason = e.reason;
    return base;
  }

  pool(ctx: AdminContext): Pool {
    const name = ctx.params.pool!;
    const p = this.rt.pools.get(name);
    if (p === undefined) throw notFound(`no pool ${name}${this.known()}`);
    return p;
  }

  server(pool: Pool, ctx: AdminContext): ServerRuntime {
    const name = ctx.params.name!;
    const s = pool.byName(name);
    if (s === undefined) throw notFound(`no server ${name} in pool ${pool.name}`);
    return s;
  }

  private known(): string {
    const names = [...this.rt.pools.keys()];
    return names.length === 0 ? ' (there is no pool)' : ` (pools: ${names.join(', ')})`;
  }

  poolView(pool: Pool): Record<string, unknown> {
    const pc = this.rt.config.pools.find((p) => p.name === pool.name);
    const stats = this.rt.lastStats?.();
    const frame = stats?.pools.find((p) => p.name === pool.name);
    const set = pool.current.set;
    const probes = new Map((this.rt.health.get(pool.name)?.monitor?.status() ?? []).map((p) => [p.server, p]));
    return {
      name: pool.name,
      balance: pc?.balance ?? null,
      health: pc?.health ?? null,
      servers: [...pool].map((s) => this.serverView(pool, s, frame?.servers.find((f) => f.name === s.server.name), probes.get(s.server.name))),
      size: pool.size,
      available: set.available.length,
      usingBackups: set.usingBackups,
      inflight: pool.inflight,
      rates: frame === undefined ? null : rates(frame, stats!.intervalMs),
      discovery: this.discoveryView(pool.name, pc),
    };
  }

  /** Every operational law of a pool over the last statistics frame; `z` (a duration, default 0) is the think time of the bounds. */
  laws(ctx: AdminContext): Record<string, unknown> {
    const pool = this.pool(ctx);
    const Z = thinkTime(ctx.url.searchParams.get('z'));
    const stats = this.rt.lastStats?.();
    const frame = stats?.pools.find((p) => p.name === pool.name);
    if (stats === undefined || frame === undefined || frame.operational === undefined) {
      return { pool: pool.name, at: null, Z, summary: 'no statistics yet (the first frame comes a second after the start)' };
    }
    const available = new Set(pool.current.set.available.map((s) => s.name));
    return lawsView(frame as unknown as PoolFrame, stats.time, (name) => available.has(name), Z);
  }

  /**
   * null for a static pool. Where another process runs the discovery (the primary of
   * `cluster.workers`), only its type and source: the merged answer takes the primary's status.
   */
  private discoveryView(pool: string, pc: PoolConfig | undefined): DiscoveryStatus | { type: string; source: string } | null {
    if (pc === undefined || pc.discovery.type === 'static') return null;
    return this.rt.discovery?.(pool) ?? { type: pc.discovery.type, source: discoverySource(pc.discovery) };
  }

  serverView(pool: Pool, s: ServerRuntime, frame?: RateFrame, probe?: ReturnType<HealthView['status']>[number]): Record<string, unknown> {
    const src = this.rt.runtime;
    const inFile = src.definedConfig.pools.find((p) => p.name === pool.name)?.servers.some((x) => x.name === s.server.name) === true;
    const change = serverChange(src.entries.map((e) => e.change), pool.name, s.server.name);
    if (probe === undefined) probe = this.rt.health.get(pool.name)?.monitor?.status().find((p) => p.server === s.server.name);
    if (frame === undefined) frame = this.rt.lastStats?.()?.pools.find((p) => p.name === pool.name)?.servers.find((f) => f.name === s.server.name);
    const stats = this.rt.lastStats?.();
    // Without active checks a server is taken as up: said as HAProxy says it, not as a check's verdict.
    const check = this.rt.config.pools.find((p) => p.name === pool.name)?.health.type ?? 'none';
    return {
      name: s.server.name,
      address: fmtAddress(s.server),
      weight: s.server.weight,
      effectiveWeight: s.weight,
      backup: s.server.backup,
      maxConnections: s.server.maxConnections,
      state: s.removing ? 'removing' : s.admin,
      health: check === 'none' && s.op === 'up' ? 'no check' : s.op,
      check,
      available: pool.current.set.available.some((x) => x.id === s.server.id),
      active: s.active,
      requests: s.requests,
      failures: s.failures,
      serverErrors: s.serverErrors,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      source: inFile && change?.spec === undefined ? 'config' : 'runtime',
      ...(change !== undefined && change.removed !== true ? { runtimeChange: { ...(change.spec !== undefined ? { registered: true } : {}), ...change.set } } : {}),
      ...(probe !== undefined
        ? { probe: { passed: probe.passed, failed: probe.failed, last: probe.last ?? null, lastAt: probe.lastAt === 0 ? null : new Date(probe.lastAt).toISOString() } }
        : {}),
      rates: frame === undefined || stats === undefined ? null : rates(frame, stats.intervalMs),
      ...(Object.keys(s.server.meta).length > 0 ? { meta: s.server.meta } : {}),
    };
  }

  // ---- mutations --------------------------------------------------------------------------

  async register(ctx: AdminContext): Promise<JsonReply> {
    const pool = this.pool(ctx);
    const body = objectBody(await ctx.body());
    const parsed = parseServer(body);
    if (!parsed.ok) throw invalid(`the server is not valid`, parsed.issues);
    const sc = parsed.value;
    await this.change((changes, running) => {
      const pc = poolConfig(running, pool.name);
      const existing = pool.byName(sc.name);
      if (existing !== undefined) {
        throw conflict(
          existing.removing
            ? `server ${sc.name} is being removed from pool ${pool.name} (it drains); register it again once it is gone`
            : `pool ${pool.name} already has a server named ${sc.name}`,
        );
      }
      if (pc.discovery.type !== 'static') throw conflict(`the servers of pool ${pool.name} come from discovery (${pc.discovery.type})`);
      const fileServer = poolConfig(this.rt.runtime.definedConfig, pool.name).servers.find((s) => s.name === sc.name);
      // Registering exactly the file's definition of a deregistered server undoes the deregistration.
      const next: ServerChange | undefined =
        fileServer !== undefined && deepEqual(fileServer, sc) ? undefined : { kind: 'server', pool: pool.name, server: sc.name, spec: body, at: now() };
      return this.checked(withServerChange(changes, pool.name, sc.name, next), pool.name);
    });
    return new JsonReply(201, this.serverView(pool, pool.byName(sc.name)!));
  }

  async patch(ctx: AdminContext): Promise<unknown> {
    const pool = this.pool(ctx);
    const target = this.server(pool, ctx);
    const body = objectBody(await ctx.body());
    const r = patchSchema.strict().safeParse(body, { error: errorMap });
    if (!r.success) throw invalid('the change is not valid', issuesOf(r.error.issues));
    // The schema fills defaults in for absent keys: keep only what the body gives.
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.data)) if (k in body) fields[k] = v;
    if (Object.keys(fields).length === 0) throw badRequest('nothing to change: give weight, state or maxConnections');
    if (target.removing) throw conflict(`server ${target.server.name} is being removed from pool ${pool.name}`);
    const name = target.server.name;
    await this.change((changes) => {
      const prev = serverChange(changes, pool.name, name);
      const base = this.baseOf(pool.name, name, prev);
      const set: Record<string, unknown> = { ...prev?.set, ...fields };
      // A field set back to its configured value is no longer a runtime change.
      for (const k of Object.keys(set)) if (base !== undefined && deepEqual(base[k as keyof ServerConfig], set[k])) delete set[k];
      const keep = prev?.spec !== undefined || Object.keys(set).length > 0;
      const next: ServerChange | undefined = keep
        ? { kind: 'server', pool: pool.name, server: name, spec: prev?.spec, set: Object.keys(set).length > 0 ? (set as ServerSettings) : undefined, at: now() }
        : undefined;
      return this.checked(withServerChange(changes, pool.name, name, next), pool.name);
    });
    return this.serverView(pool, pool.byName(name)!);
  }

  async deregister(ctx: AdminContext): Promise<JsonReply> {
    const pool = this.pool(ctx);
    const target = this.server(pool, ctx);
    const nowParam = ctx.url.searchParams.get('now');
    if (nowParam !== null && nowParam !== 'true' && nowParam !== 'false') throw badRequest(`now must be true or false, got ${JSON.stringify(nowParam)}`);
    const cut = nowParam === 'true';
    const name = target.server.name;
    if (target.removing && !cut) return new JsonReply(202, { pool: pool.name, server: name, state: 'removing', active: target.active });
    await this.change(
      (changes) => {
        const inFile = poolConfig(this.rt.runtime.definedConfig, pool.name).servers.some((s) => s.name === name);
        const next: ServerChange | undefined = inFile ? { kind: 'server', pool: pool.name, server: name, removed: true, at: now() } : undefined;
        return withServerChange(changes, pool.name, name, next);
      },
      { cut: cut ? new Set([target.server.id]) : undefined },
    );
    const still = pool.byName(name);
    if (still === undefined) return new JsonReply(200, { pool: pool.name, server: name, state: 'removed' });
    return new JsonReply(202, { pool: pool.name, server: name, state: 'removing', active: still.active });
  }

  /**
   * Drop the runtime change of a server of the file (its weight, state or maxConnections set
   * through the API, a registration replacing it, or its removal): the file's definition applies
   * again. A server that exists only through the API has no file values to return to (409).
   */
  async reset(ctx: AdminContext): Promise<unknown> {
    const pool = this.pool(ctx);
    const name = ctx.params.name!;
    await this.change((changes) => {
      if (serverChange(changes, pool.name, name) === undefined) {
        throw notFound(`server ${name} of pool ${pool.name} has no runtime change: it runs as the file says`);
      }
      if (!poolConfig(this.rt.runtime.definedConfig, pool.name).servers.some((s) => s.name === name)) {
        throw conflict(`server ${name} is not in the file (it was registered through the API): remove it with DELETE /api/v1/pools/${pool.name}/servers/${name}`);
      }
      return withServerChange(changes, pool.name, name, undefined);
    });
    return this.serverView(pool, pool.byName(name)!);
  }

  async setHealth(ctx: AdminContext): Promise<unknown> {
    const pool = this.pool(ctx);
    const body = objectBody(await ctx.body());
    const parsed = parseHealth(body);
    if (!parsed.ok) throw invalid('the health check is not valid', parsed.issues);
    await this.change((changes) => {
      const fileHealth = poolConfig(this.rt.runtime.definedConfig, pool.name).health;
      const next = deepEqual(fileHealth, parsed.value) ? undefined : { kind: 'health' as const, pool: pool.name, health: body, at: now() };
      return this.checked(withHealthChange(changes, pool.name, next), pool.name);
    });
    return { pool: pool.name, health: poolConfig(this.rt.config, pool.name).health };
  }

  async reload(): Promise<unknown> {
    try {
      const all = this.rt.runtime.reloadAll;
      return await (all !== undefined ? all() : this.rt.runtime.reload());
    } catch (err) {
      if (err instanceof ConfigError) {
        throw new AdminError(
          422,
          'LB_CONFIG_INVALID',
          `the configuration is invalid; generation ${this.rt.runtime.generation} keeps running`,
          err.issues.map((i) => ({ path: i.line > 0 ? `${i.file}:${i.line}:${i.col} ${i.path}` : `${i.file} ${i.path}`, message: i.message })),
        );
      }
      throw new AdminError(409, 'LB_ADMIN_CONFLICT', `the configuration cannot be applied: ${(err as Error).message}`);
    }
  }

  // ---- helpers ----------------------------------------------------------------------------

  /** The definition a server has before its `set` fields: its registered spec, or the file's. */
  private baseOf(pool: string, name: string, prev: ServerChange | undefined): ServerConfig | undefined {
    if (prev?.spec !== undefined) {
      const p = parseServer(prev.spec);
      if (p.ok) return p.value;
    }
    return poolConfig(this.rt.runtime.definedConfig, pool).servers.find((s) => s.name === name);
  }

  /** Refuse changes that this version cannot run (the same check as the configuration file). */
  private checked(changes: readonly RuntimeChange[], pool: string): readonly RuntimeChange[] {
    const o = overlay(this.rt.runtime.definedConfig, changes);
    const i = o.config.pools.findIndex((p) => p.name === pool);
    const issues: AdminIssue[] = checkAvailability(o.config)
      .filter((x) => x.path[0] === 'pools' && x.path[1] === i)
      .map((x) => ({ path: formatPath(x.path.slice(2)), message: x.message }));
    if (issues.length > 0) throw invalid('this version of Portico cannot run that', issues);
    return changes;
  }

  private async change(edit: Parameters<ConfigSource['change']>[0], options?: Parameters<ConfigSource['change']>[1]): Promise<void> {
    try {
      await this.rt.runtime.change(edit, options);
    } catch (err) {
      if (err instanceof AdminError) throw err;
      const e = err as NodeJS.ErrnoException;
      if (typeof e.code === 'string' && e.syscall !== undefined) {
        throw new AdminError(500, 'LB_ADMIN_JOURNAL', `the change was not made: the runtime journal cannot be written (${e.code} ${e.path ?? ''})`.trim());
      }
      throw err;
    }
  }
}

function poolConfig(c: Config, name: string): PoolConfig {
  const p = c.pools.find((x) => x.name === name);
  if (p === undefined) throw notFound(`no pool ${name} in the configuration`);
  return p;
}

function objectBody(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('the body must be a JSON object');
  return v as Record<string, unknown>;
}

function issuesOf(issues: readonly z.core.$ZodIssue[]): AdminIssue[] {
  return toPathIssues(issues).map((i) => ({ path: formatPath(i.path), message: i.message }));
}

function fileServerView(s: ServerConfig): Record<string, unknown> {
  return { ...s, address: fmtAddress({ host: s.address.host, port: s.address.port }) };
}

/** The `z` query parameter: a duration (`500ms`, `2s`, or ms as a bare number), 0 when absent. */
export function thinkTime(z: string | null): number {
  if (z === null || z === '') return 0;
  const r = parseDuration(/^\d+(\.\d+)?$/.test(z) ? `${z}ms` : z);
  if (!r.ok || r.value < 0 || r.value > 3_600_000) throw badRequest(`z (think time) must be a duration from 0 to 1h, such as 500ms or 2s; got ${JSON.stringify(z)}`);
  return r.value;
}

function rates(f: RateFrame, intervalMs: number): Record<string, unknown> {
  return { rps: f.rps, errorRate: f.errorRate, bytesPerSec: f.bytesPerSec, p50Ms: f.p50, p90Ms: f.p90, p99Ms: f.p99, intervalMs };
}

function fmtAddress(a: { readonly host: string; readonly port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const now = (): string => new Date().toISOString();

let version: string | undefined;
function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
