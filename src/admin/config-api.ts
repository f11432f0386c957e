/**
 * The running configuration through the API (SPEC §5): `GET /api/v1/config`, pools and
 * listeners defined, changed and removed (`POST /api/v1/pools`, `PATCH`/`DELETE
 * /api/v1/pools/{pool}`, the same for listeners), and load balancers made in one step as ELB
 * makes them (`/api/v1/loadbalancers`). Every change is a definition in the runtime journal,
 * validated with the whole document as a file is (definitions.ts) and applied like a reload.
 */
import type { Config } from '../config/types.js';
import { documentOf } from '../config/validate.js';
import { deepEqual } from '../core/deep-equal.js';
import { AdminError, badRequest, conflict, invalid, notFound, type AdminIssue } from './admin-error.js';
import { JsonReply } from './admin-server.js';
import { checkDefinitions, defineOver, documentItem, jsonPath, loadBalancerPlace, redacted } from './definitions.js';
import { definitionChange, isDefinition, isPoolLevel, withDefinition, type DefinitionChange, type RuntimeChange } from './journal.js';
import { listenerNames, serverNameOf, withPort } from './load-balancer-spec.js';
import type { OverlayEntry } from './overlay.js';
import type { AdminContext, AdminHandler, AdminMethod } from './router.js';

/** What the endpoints need of the running Portico (the app's AdminRuntime fits). */
export interface ConfigApiRuntime {
  readonly config: Config;
  readonly listeners: readonly { readonly name: string; readonly protocol: string; readonly address: { readonly host: string; readonly port: number } }[];
  readonly runtime: {
    readonly fileConfig: Config;
    readonly entries: readonly OverlayEntry[];
    readonly journal: { readonly current: readonly RuntimeChange[] };
    change(edit: (changes: readonly RuntimeChange[], running: Config) => readonly RuntimeChange[]): Promise<void>;
  };
}

interface RouteTable {
  route(method: AdminMethod, pattern: string, handler: AdminHandler): void;
}

export const CONFIG_ENDPOINTS = [
  'GET /api/v1/config',
  'POST /api/v1/pools',
  'PATCH /api/v1/pools/{pool}',
  'DELETE /api/v1/pools/{pool}',
  'DELETE /api/v1/pools/{pool}/runtime-change',
  'POST /api/v1/listeners',
  'PATCH /api/v1/listeners/{listener}',
  'DELETE /api/v1/listeners/{listener}',
  'DELETE /api/v1/listeners/{listener}/runtime-change',
  'GET /api/v1/loadbalancers',
  'GET /api/v1/loadbalancers/{name}',
  'POST /api/v1/loadbalancers',
  'DELETE /api/v1/loadbalancers/{name}',
  'POST /api/v1/loadbalancers/{name}/instances',
  'DELETE /api/v1/loadbalancers/{name}/instances/{address}',
  'PUT /api/v1/loadbalancers/{name}/health',
];

type Kind = 'pool' | 'listener';
const KEY = { pool: 'pools', listener: 'listeners' } as const;

export function mountConfigApi(table: RouteTable, rt: ConfigApiRuntime): void {
  const api = new ConfigApi(rt);
  table.route('GET', '/api/v1/config', () => redacted(rt.config));
  for (const kind of ['pool', 'listener'] as const) {
    const base = `/api/v1/${KEY[kind]}`;
    const param = `{${kind}}`;
    table.route('POST', base, (_q, _s, ctx) => api.create(kind, ctx));
    table.route('PATCH', `${base}/${param}`, (_q, _s, ctx) => api.patch(kind, ctx));
    table.route('DELETE', `${base}/${param}`, (_q, _s, ctx) => api.remove(kind, ctx));
    table.route('DELETE', `${base}/${param}/runtime-change`, (_q, _s, ctx) => api.reset(kind, ctx));
  }
  table.route('GET', '/api/v1/loadbalancers', () => ({ loadbalancers: api.loadBalancers().map((d) => api.lbView(d)) }));
  table.route('GET', '/api/v1/loadbalancers/{name}', (_q, _s, ctx) => api.lbView(api.lb(ctx)));
  table.route('POST', '/api/v1/loadbalancers', (_q, _s, ctx) => api.createLb(ctx));
  table.route('DELETE', '/api/v1/loadbalancers/{name}', (_q, _s, ctx) => api.deleteLb(ctx));
  table.route('POST', '/api/v1/loadbalancers/{name}/instances', (_q, _s, ctx) => api.registerInstances(ctx));
  table.route('DELETE', '/api/v1/loadbalancers/{name}/instances/{address}', (_q, _s, ctx) => api.deregisterInstance(ctx));
  table.route('PUT', '/api/v1/loadbalancers/{name}/health', (_q, _s, ctx) => api.lbHealth(ctx));
}

/** A definition made through the API, as the status lists it. */
export function definitionView(e: OverlayEntry, file: Config): Record<string, unknown> {
  const c = e.change as DefinitionChange;
  const inFile = c.kind !== 'loadbalancer' && documentItem(file, KEY[c.kind], c.name) !== undefined;
  const out: Record<string, unknown> = {
    kind: c.kind === 'loadbalancer' ? 'loadbalancer' : c.removed === true ? `${c.kind} removed` : inFile ? `${c.kind} replaced` : `${c.kind} defined`,
    [c.kind]: c.name,
  };
  if (c.spec !== undefined) out.runtime = c.spec;
  if (c.kind !== 'loadbalancer') out.config = documentItem(file, KEY[c.kind], c.name) ?? null;
  out.at = c.at;
  if (!e.applied) out.reason = e.reason;
  return out;
}

const now = (): string => new Date().toISOString();

function objectBody(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('the body must be a JSON object');
  return v as Record<string, unknown>;
}

class ConfigApi {
  constructor(private readonly rt: ConfigApiRuntime) {}

  private get file(): Config {
    return this.rt.runtime.fileConfig;
  }

  /** The load balancer that made a pool or listener, if one did. */
  private ownerOf(kind: Kind, name: string, changes: readonly RuntimeChange[]): string | undefined {
    for (const c of changes) {
      if (c.kind !== 'loadbalancer' || c.spec === undefined) continue;
      if (kind === 'pool' && c.name === name) return c.name;
      const ls = Array.isArray(c.spec['listeners']) ? (c.spec['listeners'] as { port?: unknown }[]) : [];
      if (kind === 'listener' && listenerNames(c.name, ls.map((l) => Number(l.port) || 0)).includes(name)) return c.name;
    }
    return undefined;
  }

  private exists(kind: Kind, name: string): boolean {
    return (kind === 'pool' ? this.rt.config.pools : this.rt.config.listeners).some((x) => x.name === name);
  }

  /** Apply a new list of changes whose one definition `target` changed: validated first (every problem, by path), then applied like a reload. */
  private async define(what: string, edit: (changes: readonly RuntimeChange[]) => { list: readonly RuntimeChange[]; target: DefinitionChange }): Promise<void> {
    await this.change((changes) => {
      const { list, target } = edit(changes);
      // A removal is validated too (what would still use the pool or listener), even when it drops a definition rather than adding one.
      const checked = list.includes(target) ? list : target.removed === true ? [...list, target] : undefined;
      if (checked !== undefined) {
        const r = checkDefinitions(this.file, changes, checked, target);
        if (!r.ok) throw invalid(`${what} is not valid; nothing was changed`, r.issues);
      }
      this.keepsOthers(changes, list, target);
      return list;
    });
  }

  /** Refuse a change that would leave out a definition in force (a listener whose pool is removed ...). */
  private keepsOthers(before: readonly RuntimeChange[], after: readonly RuntimeChange[], target: DefinitionChange): void {
    const was = defineOver(this.file, before).entries;
    const next = defineOver(this.file, after).entries;
    const issues: AdminIssue[] = [];
    for (const e of next) {
      const c = e.change as DefinitionChange;
      if (e.applied || c === target) continue;
      const before = was.find((w) => (w.change as DefinitionChange).kind === c.kind && (w.change as DefinitionChange).name === c.name);
      if (before?.applied === true) issues.push({ path: `config.${c.kind}:${c.name}`, message: `would no longer apply: ${e.reason ?? ''}` });
    }
    if (issues.length > 0) throw invalid('the change would break definitions made through the API; nothing was changed', issues);
  }

  private async change(edit: (changes: readonly RuntimeChange[]) => readonly RuntimeChange[]): Promise<void> {
    try {
      await this.rt.runtime.change((changes) => edit(changes));
    } catch (err) {
      if (err instanceof AdminError) throw err;
      const e = err as NodeJS.ErrnoException;
      if (typeof e.code === 'string' && e.syscall !== undefined && e.syscall !== 'listen' && e.syscall !== 'bind') {
        throw new AdminError(500, 'LB_ADMIN_JOURNAL', `the change was not made: the runtime journal cannot be written (${e.code} ${e.path ?? ''})`.trim());
      }
      throw conflict(`the change cannot be applied; nothing was changed: ${(err as Error).message}`);
    }
  }

  // ---- pools and listeners ----------------------------------------------------------------

  async create(kind: Kind, ctx: AdminContext): Promise<JsonReply> {
    const body = objectBody(await ctx.body());
    const name = body['name'];
    if (typeof name !== 'string' || name === '') throw invalid(`the ${kind} is not valid; nothing was changed`, [{ path: 'name', message: name === undefined ? 'missing required key' : 'expected a name' }]);
    if (this.exists(kind, name)) throw conflict(`a ${kind} named ${name} exists: change it with PATCH /api/v1/${KEY[kind]}/${name}`);
    await this.define(`the ${kind}`, (changes) => {
      const target: DefinitionChange = { kind, name, spec: body, at: now() };
      return { list: withDefinition(changes, kind, name, target), target };
    });
    return new JsonReply(201, this.view(kind, name));
  }

  async patch(kind: Kind, ctx: AdminContext): Promise<unknown> {
    const name = ctx.params[kind]!;
    const body = objectBody(await ctx.body());
    if ('name' in body && body['name'] !== name) throw invalid(`the change is not valid; nothing was changed`, [{ path: 'name', message: `a ${kind} cannot be renamed (create ${String(body['name'])} and delete ${name})` }]);
    await this.define(`the ${kind}`, (changes) => {
      const owner = this.ownerOf(kind, name, changes);
      if (owner !== undefined) throw conflict(`${kind} ${name} belongs to load balancer ${owner}: change it through /api/v1/loadbalancers/${owner}`);
      const cur = definitionChange(changes, kind, name);
      const spec = cur?.spec ?? (cur?.removed === true ? undefined : documentItem(this.file, KEY[kind], name));
      if (spec === undefined || !this.exists(kind, name)) throw notFound(`no ${kind} ${name}`);
      const merged: Record<string, unknown> = { ...structuredClone(spec) };
      for (const [k, v] of Object.entries(body)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      const fileItem = documentItem(this.file, KEY[kind], name);
      const target: DefinitionChange = { kind, name, spec: merged, at: now() };
      // Patched back to the file's definition: no longer a runtime change.
      const list = fileItem !== undefined && deepEqual(fileItem, merged) ? withDefinition(changes, kind, name, undefined) : withDefinition(changes, kind, name, target);
      return { list, target };
    });
    return this.view(kind, name);
  }

  async remove(kind: Kind, ctx: AdminContext): Promise<unknown> {
    const name = ctx.params[kind]!;
    if (!this.exists(kind, name)) throw notFound(`no ${kind} ${name}`);
    await this.define(`removing ${kind} ${name}`, (changes) => {
      const owner = this.ownerOf(kind, name, changes);
      if (owner !== undefined) throw conflict(`${kind} ${name} belongs to load balancer ${owner}: DELETE /api/v1/loadbalancers/${owner}`);
      const inFile = documentItem(this.file, KEY[kind], name) !== undefined;
      const target: DefinitionChange = { kind, name, removed: true, at: now() };
      let list = withDefinition(changes, kind, name, inFile ? target : undefined);
      // A removed pool takes its server and health changes with it.
      if (kind === 'pool') list = list.filter((c) => !(isPoolLevel(c) && c.pool === name));
      return { list, target };
    });
    return { [kind]: name, state: 'removed' };
  }

  async reset(kind: Kind, ctx: AdminContext): Promise<unknown> {
    const name = ctx.params[kind]!;
    await this.define(`going back to the file's ${kind} ${name}`, (changes) => {
      const cur = definitionChange(changes, kind, name);
      if (cur === undefined) throw notFound(`${kind} ${name} has no runtime change: it runs as the file says`);
      if (documentItem(this.file, KEY[kind], name) === undefined) {
        throw conflict(`${kind} ${name} is not in the file (it was made through the API): remove it with DELETE /api/v1/${KEY[kind]}/${name}`);
      }
      return { list: withDefinition(changes, kind, name, undefined), target: cur };
    });
    return this.view(kind, name);
  }

  private view(kind: Kind, name: string): unknown {
    const item = (kind === 'pool' ? this.rt.config.pools : this.rt.config.listeners).find((x) => x.name === name);
    if (item === undefined) return { [kind]: name, state: 'removed' };
    const running = kind === 'listener' ? this.rt.listeners.find((l) => l.name === name) : undefined;
    return { [kind]: name, config: redacted(item as unknown as Config), ...(running !== undefined ? { address: fmt(running.address) } : {}) };
  }

  // ---- load balancers ---------------------------------------------------------------------

  loadBalancers(): DefinitionChange[] {
    return this.journal().filter((c): c is DefinitionChange => c.kind === 'loadbalancer');
  }

  private journal(): readonly RuntimeChange[] {
    return this.rt.runtime.journal.current.filter(isDefinition);
  }

  lb(ctx: AdminContext): DefinitionChange {
    const name = ctx.params.name!;
    const d = this.loadBalancers().find((c) => c.name === name);
    if (d === undefined) {
      const names = this.loadBalancers().map((c) => c.name);
      throw notFound(`no load balancer ${name}${names.length === 0 ? ' (there is none)' : ` (load balancers: ${names.join(', ')})`}`);
    }
    return d;
  }

  lbView(d: DefinitionChange): Record<string, unknown> {
    const spec = d.spec ?? {};
    const raw = documentOf(this.file)?.raw;
    const place = loadBalancerPlace((typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>);
    const ls = Array.isArray(spec['listeners']) ? (spec['listeners'] as Record<string, unknown>[]) : [];
    const names = listenerNames(d.name, ls.map((l) => Number(l['port']) || 0));
    const listeners = names.map((n, k) => {
      const running = this.rt.listeners.find((l) => l.name === n);
      return {
        name: n,
        protocol: String(ls[k]?.['protocol'] ?? '').toLowerCase(),
        serverPort: ls[k]?.['serverPort'] ?? null,
        listen: running === undefined ? null : fmt(running.address),
        address: running === undefined || place.address === undefined ? null : fmt({ host: place.address, port: running.address.port }),
      };
    });
    const zone = typeof spec['zone'] === 'string' ? spec['zone'].toLowerCase().replace(/\.$/, '') : place.zone;
    const pool = this.rt.config.pools.find((p) => p.name === d.name);
    const entry = this.rt.runtime.entries.find((e) => e.change === d);
    return {
      name: d.name,
      address: listeners[0]?.address ?? null,
      dnsName: zone === undefined || place.address === undefined ? null : `${d.name.toLowerCase()}.${zone}`,
      listeners,
      pool: d.name,
      servers: pool?.servers.map((s) => ({ name: s.name, address: fmt(s.address) })) ?? [],
      health: pool?.health ?? null,
      createdAt: d.at,
      ...(entry !== undefined && !entry.applied ? { applied: false, reason: entry.reason } : {}),
    };
  }

  async createLb(ctx: AdminContext): Promise<JsonReply> {
    const body = objectBody(await ctx.body());
    const name = body['name'];
    if (typeof name === 'string') {
      if (this.loadBalancers().some((c) => c.name === name)) throw conflict(`load balancer ${name} exists`);
      if (this.exists('pool', name)) throw conflict(`a pool named ${name} exists: a load balancer makes its own pool NAME`);
    }
    await this.define('the load balancer', (changes) => {
      const target: DefinitionChange = { kind: 'loadbalancer', name: typeof name === 'string' ? name : '', spec: body, at: now() };
      if (typeof name === 'string') {
        const ls = Array.isArray(body['listeners']) ? (body['listeners'] as { port?: unknown }[]) : [];
        const taken = listenerNames(name, ls.map((l) => Number(l?.port) || 0)).filter((n) => this.exists('listener', n));
        if (taken.length > 0) throw conflict(`a listener named ${taken.join(', ')} exists: a load balancer makes listeners named after it`);
      }
      return { list: [...changes, target], target };
    });
    return new JsonReply(201, this.lbView(this.loadBalancers().find((c) => c.name === name)!));
  }

  async deleteLb(ctx: AdminContext): Promise<unknown> {
    const d = this.lb(ctx);
    const view = this.lbView(d);
    await this.change((changes) => {
      const list = withDefinition(changes, 'loadbalancer', d.name, undefined).filter((c) => !(isPoolLevel(c) && c.pool === d.name));
      this.keepsOthers(changes, list, d);
      return list;
    });
    return { name: d.name, state: 'removed', listeners: (view.listeners as { name: string }[]).map((l) => l.name), note: 'its listeners stop accepting and their connections drain (up to shutdownGrace)' };
  }

  /** Change a load balancer's spec with `edit`, validated and applied like its creation. */
  private async editLb(d: DefinitionChange, what: string, edit: (spec: Record<string, unknown>) => Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.define(what, (changes) => {
      const cur = definitionChange(changes, 'loadbalancer', d.name);
      if (cur?.spec === undefined) throw notFound(`no load balancer ${d.name}`);
      const target: DefinitionChange = { kind: 'loadbalancer', name: d.name, spec: edit(structuredClone(cur.spec) as Record<string, unknown>), at: now() };
      return { list: withDefinition(changes, 'loadbalancer', d.name, target), target };
    });
    return this.lbView(this.loadBalancers().find((c) => c.name === d.name)!);
  }

  async registerInstances(ctx: AdminContext): Promise<unknown> {
    const d = this.lb(ctx);
    const body = objectBody(await ctx.body());
    const list = body['instances'];
    if (!Array.isArray(list) || list.length === 0) throw invalid('the instances are not valid; nothing was changed', [{ path: 'instances', message: 'expected a non-empty list of addresses (HOST or HOST:PORT)' }]);
    const issues: AdminIssue[] = [];
    list.forEach((a, i) => {
      if (typeof a !== 'string' || a.trim() === '') issues.push({ path: jsonPath(['instances', i]), message: 'expected an address (HOST or HOST:PORT)' });
    });
    if (issues.length > 0) throw invalid('the instances are not valid; nothing was changed', issues);
    return this.editLb(d, 'registering the instances', (spec) => {
      const servers = Array.isArray(spec['servers']) ? [...(spec['servers'] as unknown[])] : [];
      const sp = serverPortOf(spec);
      const have = new Set(servers.map((s) => (typeof s === 'string' ? withPort(s, sp) : String((s as { address?: unknown }).address))));
      for (const a of list as string[]) if (!have.has(withPort(a.trim(), sp))) servers.push(a.trim());
      return { ...spec, servers };
    });
  }

  async deregisterInstance(ctx: AdminContext): Promise<unknown> {
    const d = this.lb(ctx);
    const address = ctx.params.address!;
    const sp = serverPortOf(d.spec ?? {});
    const servers = Array.isArray(d.spec?.['servers']) ? (d.spec['servers'] as unknown[]) : [];
    const matches = (s: unknown): boolean =>
      typeof s === 'string' ? withPort(s, sp) === withPort(address, sp) || serverNameOf(withPort(s, sp)) === address : (s as { name?: unknown }).name === address;
    if (!servers.some(matches)) throw notFound(`load balancer ${d.name} has no instance ${address}`);
    return this.editLb(d, 'deregistering the instance', (spec) => ({ ...spec, servers: servers.filter((s) => !matches(s)) }));
  }

  async lbHealth(ctx: AdminContext): Promise<unknown> {
    const d = this.lb(ctx);
    const body = objectBody(await ctx.body());
    return this.editLb(d, 'the health check', (spec) => ({ ...spec, health: body }));
  }
}

function serverPortOf(spec: Record<string, unknown>): number {
  const ls = Array.isArray(spec['listeners']) ? (spec['listeners'] as Record<string, unknown>[]) : [];
  return Number(ls[0]?.['serverPort']) || 80;
}

function fmt(a: { readonly host: string; readonly port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
