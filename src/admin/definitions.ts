import { networkInterfaces } from 'node:os';
import { dnsZones } from '../config/checks/load-balancers.js';
import type { ConfigPath, PathIssue } from '../config/path.js';
import { fileDurations } from '../config/schema/fields.js';
import type { Config } from '../config/types.js';
import { documentOf, validateTree } from '../config/validate.js';
import { deepEqual } from '../core/deep-equal.js';
import type { AdminIssue } from './admin-error.js';
import { isDefinition, type DefinitionChange, type RuntimeChange } from './journal.js';
import { expandLoadBalancer, type Expansion } from './load-balancer-spec.js';
import type { OverlayEntry } from './overlay.js';

type Raw = Record<string, unknown>;

/** `listeners[3].port`, `servers[0].address`, `name`; the root is `(root)`. */
export function jsonPath(path: ConfigPath): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Where a part of the built document came from: the definition, and how a path inside it reads in that definition's body. */
interface Origin {
  readonly def: DefinitionChange;
  readonly map: (rest: ConfigPath) => ConfigPath;
}

interface Built {
  readonly raw: Raw;
  /** Items of the document (pools, listeners, DNS records) a definition put there. */
  readonly origins: Map<object, Origin>;
  /** Definitions that could not even be laid (a malformed load balancer), with their problems. */
  readonly failed: Map<DefinitionChange, PathIssue[]>;
}

/** The machine's address a load balancer's name answers with when its listeners bind 0.0.0.0. */
function firstIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** `loadBalancers:` of a document: where new load balancers bind and the address their names answer with. */
export function loadBalancerPlace(root: Raw): { listen: string; address: string | undefined; zone: string | undefined; zones: string[] } {
  const lb = (typeof root['loadBalancers'] === 'object' && root['loadBalancers'] !== null ? root['loadBalancers'] : {}) as Raw;
  const listen = typeof lb['listen'] === 'string' ? lb['listen'] : '0.0.0.0';
  const given = typeof lb['address'] === 'string' ? lb['address'] : undefined;
  const address = given ?? (listen === '0.0.0.0' ? firstIPv4() : listen);
  const zones = dnsZones(root);
  const zone = typeof lb['zone'] === 'string' ? lb['zone'].toLowerCase().replace(/\.$/, '') : zones.length === 1 ? zones[0] : undefined;
  return { listen, address, zone, zones };
}

function listOf(root: Raw, key: 'pools' | 'listeners'): unknown[] {
  const v = root[key];
  if (Array.isArray(v)) return v;
  const list: unknown[] = [];
  root[key] = list;
  return list;
}

function place(list: unknown[], item: Raw): void {
  const at = list.findIndex((x) => typeof x === 'object' && x !== null && (x as Raw)['name'] === item['name']);
  if (at < 0) list.push(item);
  else list[at] = item;
}

/** The file's document with `defs` laid over it, in order: a definition replaces the item of its name or is added. */
function build(base: unknown, defs: readonly DefinitionChange[]): Built {
  const raw = structuredClone(base) as Raw;
  const origins = new Map<object, Origin>();
  const failed = new Map<DefinitionChange, PathIssue[]>();
  const identity = (rest: ConfigPath): ConfigPath => rest;
  for (const def of defs) {
    if (def.kind === 'loadbalancer') {
      const x: Expansion = expandLoadBalancer(def.spec ?? {}, loadBalancerPlace(raw));
      if (x.issues.length > 0) {
        failed.set(def, x.issues);
        continue;
      }
      const pool = x.pool!;
      place(listOf(raw, 'pools'), pool);
      origins.set(pool, { def, map: x.mapPool });
      x.listeners.forEach((l, k) => {
        place(listOf(raw, 'listeners'), l);
        origins.set(l, { def, map: (rest) => x.mapListener(k, rest) });
      });
      if (x.record !== undefined) {
        for (const l of listOf(raw, 'listeners')) {
          const lm = l as Raw;
          if (lm['protocol'] !== 'dns' || !Array.isArray(lm['zones'])) continue;
          for (const z of lm['zones'] as unknown[]) {
            const zm = z as Raw;
            if (typeof zm?.['name'] !== 'string' || zm['name'].toLowerCase().replace(/\.$/, '') !== x.zone) continue;
            const records = Array.isArray(zm['records']) ? (zm['records'] as unknown[]) : (zm['records'] = []);
            const rec = { ...x.record };
            (records as unknown[]).push(rec);
            origins.set(rec, { def, map: () => ['name'] });
          }
        }
      }
      continue;
    }
    const list = listOf(raw, def.kind === 'pool' ? 'pools' : 'listeners');
    if (def.removed === true) {
      const at = list.findIndex((x) => typeof x === 'object' && x !== null && (x as Raw)['name'] === def.name);
      if (at >= 0) list.splice(at, 1);
      continue;
    }
    const item = structuredClone(def.spec ?? {}) as Raw;
    place(list, item);
    origins.set(item, { def, map: identity });
  }
  return { raw, origins, failed };
}

/** The definition whose item holds `path`, and the path inside its body. */
function attribute(b: Built, path: ConfigPath): { def: DefinitionChange; path: ConfigPath } | undefined {
  let node: unknown = b.raw;
  for (let i = 0; i < path.length; i++) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[path[i]!];
    if (typeof node === 'object' && node !== null) {
      const o = b.origins.get(node);
      if (o !== undefined) return { def: o.def, path: o.map(path.slice(i + 1)) };
    }
  }
  return undefined;
}

function validate(doc: { raw: unknown; file: boolean }, raw: Raw): ReturnType<typeof validateTree> {
  return doc.file ? fileDurations(() => validateTree(raw)) : validateTree(raw);
}

export interface Defined {
  /** The file with the definitions that validate laid over it (the file itself when there are none). */
  readonly config: Config;
  /** One entry per definition: applied, or why not. */
  readonly entries: readonly OverlayEntry[];
}

/**
 * Lay the pools, listeners and load balancers defined through the API over the file's
 * configuration, and validate the result as one document, exactly as a file is validated (the
 * schema, the cross-checks, what this version can run). A definition that does not validate
 * against this file (the file changed since, or the journal came from elsewhere) is left out
 * and reported; the others apply.
 */
export function defineOver(file: Config, changes: readonly RuntimeChange[]): Defined {
  const defs = changes.filter(isDefinition);
  if (defs.length === 0) return { config: file, entries: [] };
  const doc = documentOf(file);
  if (doc === undefined) {
    return { config: file, entries: defs.map((change) => ({ change, applied: false, reason: 'this configuration was not validated from a document: nothing can be defined over it' })) };
  }
  const left = new Map<DefinitionChange, string>();
  let active = [...defs];
  for (;;) {
    const b = build(doc.raw, active);
    for (const [def, issues] of b.failed) left.set(def, describe(issues));
    active = active.filter((d) => !b.failed.has(d));
    const r = validate(doc, b.raw);
    if (!r.ok && active.length === 0) {
      return { config: file, entries: defs.map((change) => ({ change, applied: false, reason: left.get(change) ?? 'the file alone does not validate again' })) };
    }
    if (r.ok) {
      const entries = defs.map((change): OverlayEntry => (left.has(change) ? { change, applied: false, reason: left.get(change) } : { change, applied: true }));
      return { config: r.config, entries };
    }
    const blamed = new Map<DefinitionChange, PathIssue[]>();
    for (const i of r.issues) {
      const a = attribute(b, i.path);
      const def = a?.def ?? active[active.length - 1]!;
      const list = blamed.get(def) ?? [];
      list.push({ path: a?.path ?? ['config', ...i.path], message: i.message });
      blamed.set(def, list);
    }
    for (const [def, issues] of blamed) left.set(def, describe(issues));
    active = active.filter((d) => !blamed.has(d));
  }
}

/**
 * Validate `after` (the list `before` with the definition `target` changed) as defineOver would
 * lay it: every problem, as a path in the body of `target` (`listeners[0].port`), or
 * `config.PATH` for a part of the running document that the change breaks. Definitions that
 * did not apply before stay out, as they are now.
 */
export function checkDefinitions(
  file: Config,
  before: readonly RuntimeChange[],
  after: readonly RuntimeChange[],
  target: DefinitionChange,
): { ok: true; config: Config } | { ok: false; issues: AdminIssue[] } {
  const doc = documentOf(file);
  if (doc === undefined) return { ok: false, issues: [{ path: '(root)', message: 'this Portico was started from a configuration that was not validated from a document' }] };
  const inForce = new Set(defineOver(file, before).entries.filter((e) => e.applied).map((e) => e.change));
  const active = after.filter(isDefinition).filter((c) => c === target || inForce.has(c));
  const b = build(doc.raw, active);
  const own = b.failed.get(target);
  if (own !== undefined) return { ok: false, issues: own.map((i) => ({ path: jsonPath(i.path), message: i.message })) };
  const r = validate(doc, b.raw);
  if (r.ok) return { ok: true, config: r.config };
  const issues: AdminIssue[] = [];
  for (const i of r.issues) {
    const a = attribute(b, i.path);
    const path = a !== undefined && a.def === target ? jsonPath(a.path) : `config.${jsonPath(i.path)}`;
    if (!issues.some((x) => x.path === path && x.message === i.message)) issues.push({ path, message: i.message });
  }
  return { ok: false, issues };
}

/** The item `name` of the file's document (`pools` or `listeners`), as the file wrote it. */
export function documentItem(file: Config, key: 'pools' | 'listeners', name: string): Raw | undefined {
  const raw = documentOf(file)?.raw as Raw | undefined;
  const list = raw?.[key];
  if (!Array.isArray(list)) return undefined;
  const item = list.find((x) => typeof x === 'object' && x !== null && (x as Raw)['name'] === name) as Raw | undefined;
  return item === undefined ? undefined : structuredClone(item);
}

/** The running configuration as JSON, with secrets (tokens, passwords, secrets, URL passwords) replaced by "(redacted)". */
export function redacted(config: Config): unknown {
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'string') {
      if (/^(token|password|passphrase|secret)$/i.test(key) && v !== '') return '(redacted)';
      return v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]+@/i, '$1(redacted)@');
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (typeof v === 'object' && v !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, k);
      return out;
    }
    return v;
  };
  return walk(config, '');
}

/** What a new file hides of the definitions made through the API: one line per name both define. */
export function definitionsOverriding(before: Config, after: Config, changes: readonly RuntimeChange[]): string[] {
  const out: string[] = [];
  const doc = (c: Config, key: 'pools' | 'listeners', name: string) => documentItem(c, key, name);
  for (const c of changes.filter(isDefinition)) {
    const names: ['pools' | 'listeners', string][] =
      c.kind === 'loadbalancer' ? [['pools', c.name]] : [[c.kind === 'pool' ? 'pools' : 'listeners', c.name]];
    for (const [key, name] of names) {
      const a = doc(after, key, name);
      if (a === undefined || deepEqual(a, doc(before, key, name))) continue;
      const what = key === 'pools' ? 'pool' : 'listener';
      out.push(
        c.kind === 'loadbalancer'
          ? `${what} ${name}: the file defines it; load balancer ${c.name}, created through the API, stays in force (DELETE /api/v1/loadbalancers/${c.name} to use the file's)`
          : `${what} ${name}: the file's definition changed; the one ${c.removed === true ? 'removing it' : 'made'} through the API stays in force (DELETE /api/v1/${key}/${name}/runtime-change to use the file's)`,
      );
    }
  }
  return out;
}

function describe(issues: readonly PathIssue[]): string {
  return issues.map((i) => `${jsonPath(i.path)}: ${i.message}`).join('; ');
}
