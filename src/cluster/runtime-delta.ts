import { definitionChange, isDefinition, parseJournal, serverChange, withDefinition, withHealthChange, withServerChange, type DefinitionChange, type RuntimeChange, type ServerChange } from '../admin/journal.js';
import { deepEqual } from '../core/deep-equal.js';

/**
 * One change made through the admin API, as the difference it made to the list of runtime
 * changes: per entry (a server of a pool, or a pool's health check), the parts it changed. A
 * part present is its new value, `null` that it is gone; a part absent was not touched. Two
 * deltas made at the same instant on two nodes, applied one after the other, keep both changes
 * (a drain of one server and a weight of another; even a weight and a state of the same
 * server); only the same part changed by both keeps the later one.
 */
export type EntryDelta = ServerDelta | HealthDelta | DefinitionDelta;
export type ChangeDelta = readonly EntryDelta[];

export interface ServerDelta {
  readonly kind: 'server';
  readonly pool: string;
  readonly server: string;
  readonly at: string;
  readonly spec?: Readonly<Record<string, unknown>> | null;
  readonly removed?: true | null;
  /** Changed fields of `set` (weight, state, maxConnections); null: back to the configured value. */
  readonly set?: Readonly<Record<string, unknown>>;
}

export interface HealthDelta {
  readonly kind: 'health';
  readonly pool: string;
  readonly at: string;
  readonly health: Readonly<Record<string, unknown>> | null;
}

/** A pool, listener or load balancer defined through the API: its whole entry, or null when it is gone. */
export interface DefinitionDelta {
  readonly kind: 'definition';
  readonly of: DefinitionChange['kind'];
  readonly name: string;
  readonly at: string;
  readonly entry: DefinitionChange | null;
}

/** What turned `before` into `after` (both lists of runtime changes). */
export function diffChanges(before: readonly RuntimeChange[], after: readonly RuntimeChange[]): EntryDelta[] {
  const out: EntryDelta[] = [];
  const keys = new Map<string, { b?: RuntimeChange; a?: RuntimeChange }>();
  for (const c of before) keys.set(keyOf(c), { ...keys.get(keyOf(c)), b: c });
  for (const c of after) keys.set(keyOf(c), { ...keys.get(keyOf(c)), a: c });
  for (const { b, a } of keys.values()) {
    const one = (a ?? b)!;
    const at = a?.at ?? new Date().toISOString();
    if (isDefinition(one)) {
      if (!deepEqual(a, b)) out.push({ kind: 'definition', of: one.kind, name: one.name, at, entry: (a as DefinitionChange | undefined) ?? null });
      continue;
    }
    if (one.kind === 'health') {
      const bh = b?.kind === 'health' ? b.health : undefined;
      const ah = a?.kind === 'health' ? a.health : undefined;
      if (!deepEqual(bh, ah)) out.push({ kind: 'health', pool: one.pool, at, health: ah ?? null });
      continue;
    }
    const bs = b as ServerChange | undefined;
    const as = a as ServerChange | undefined;
    const d: { -readonly [K in keyof ServerDelta]: ServerDelta[K] } = { kind: 'server', pool: one.pool, server: one.server, at };
    let changed = false;
    if (!deepEqual(bs?.spec, as?.spec)) {
      d.spec = as?.spec ?? null;
      changed = true;
    }
    if ((bs?.removed ?? null) !== (as?.removed ?? null)) {
      d.removed = as?.removed ?? null;
      changed = true;
    }
    const set: Record<string, unknown> = {};
    const bset = (bs?.set ?? {}) as Record<string, unknown>;
    const aset = (as?.set ?? {}) as Record<string, unknown>;
    for (const f of new Set([...Object.keys(bset), ...Object.keys(aset)])) {
      if (!deepEqual(bset[f], aset[f])) set[f] = aset[f] ?? null;
    }
    if (Object.keys(set).length > 0) {
      d.set = set;
      changed = true;
    }
    if (changed) out.push(d);
  }
  return out;
}

/** `list` with `delta` applied; entries it does not touch are kept as they are, in their order. */
export function applyDelta(list: readonly RuntimeChange[], delta: ChangeDelta): readonly RuntimeChange[] {
  let out = list;
  for (const d of delta) {
    if (d.kind === 'definition') {
      const cur = definitionChange(out, d.of, d.name);
      if (deepEqual(cur ?? null, d.entry)) continue;
      out = withDefinition(out, d.of, d.name, d.entry ?? undefined);
      continue;
    }
    if (d.kind === 'health') {
      const cur = out.find((c) => c.kind === 'health' && c.pool === d.pool);
      const next = d.health === null ? undefined : { kind: 'health' as const, pool: d.pool, health: d.health, at: d.at };
      if (cur === undefined ? next === undefined : next !== undefined && deepEqual(cur, next)) continue;
      out = withHealthChange(out, d.pool, next);
      continue;
    }
    const cur = serverChange(out, d.pool, d.server);
    const spec = d.spec === undefined ? cur?.spec : (d.spec ?? undefined);
    const removed = d.removed === undefined ? cur?.removed : (d.removed ?? undefined);
    const set: Record<string, unknown> = { ...cur?.set };
    for (const [f, v] of Object.entries(d.set ?? {})) {
      if (v === null) delete set[f];
      else set[f] = v;
    }
    let next: ServerChange | undefined;
    if (spec !== undefined || removed !== undefined || Object.keys(set).length > 0) {
      const e: { -readonly [K in keyof ServerChange]: ServerChange[K] } = { kind: 'server', pool: d.pool, server: d.server, at: d.at };
      if (spec !== undefined) e.spec = spec;
      if (removed !== undefined) e.removed = removed;
      if (Object.keys(set).length > 0) e.set = set;
      next = e;
    }
    if (cur === undefined ? next === undefined : next !== undefined && deepEqual(cur, next)) continue;
    out = withServerChange(out, d.pool, d.server, next);
  }
  return out;
}

/** A delta read from the store, checked: every value it sets must be one the journal accepts. Undefined when it is not. */
export function parseDelta(raw: unknown): ChangeDelta | undefined {
  if (!Array.isArray(raw)) return undefined;
  const out: EntryDelta[] = [];
  for (const x of raw as unknown[]) {
    if (typeof x !== 'object' || x === null) return undefined;
    const e = x as Record<string, unknown>;
    if (e.kind === 'definition') {
      if ((e.of !== 'pool' && e.of !== 'listener' && e.of !== 'loadbalancer') || typeof e.name !== 'string' || typeof e.at !== 'string') return undefined;
      if (e.entry !== null) {
        const entry = e.entry as Record<string, unknown> | undefined;
        if (!accepted(entry) || entry?.kind !== e.of || entry?.name !== e.name) return undefined;
      }
      out.push({ kind: 'definition', of: e.of, name: e.name, at: e.at, entry: e.entry as DefinitionChange | null });
      continue;
    }
    if (typeof e.pool !== 'string' || typeof e.at !== 'string') return undefined;
    if (e.kind === 'health') {
      if (e.health !== null && !accepted({ kind: 'health', pool: e.pool, at: e.at, health: e.health })) return undefined;
      out.push({ kind: 'health', pool: e.pool, at: e.at, health: e.health as HealthDelta['health'] });
      continue;
    }
    if (e.kind !== 'server' || typeof e.server !== 'string') return undefined;
    if (e.set !== undefined && (typeof e.set !== 'object' || e.set === null || Array.isArray(e.set))) return undefined;
    const setValues = Object.fromEntries(Object.entries((e.set ?? {}) as Record<string, unknown>).filter(([, v]) => v !== null));
    const probe: Record<string, unknown> = { kind: 'server', pool: e.pool, server: e.server, at: e.at, set: setValues };
    if (e.spec !== undefined && e.spec !== null) probe.spec = e.spec;
    if (e.removed !== undefined && e.removed !== null) probe.removed = e.removed;
    if (!accepted(probe)) return undefined;
    // Only the fields of `set` that the journal knows may be cleared.
    for (const k of Object.keys((e.set ?? {}) as object)) if (k !== 'weight' && k !== 'state' && k !== 'maxConnections') return undefined;
    const d: { -readonly [K in keyof ServerDelta]: ServerDelta[K] } = { kind: 'server', pool: e.pool, server: e.server, at: e.at };
    if (e.spec !== undefined) d.spec = e.spec as ServerDelta['spec'];
    if (e.removed !== undefined) d.removed = e.removed as ServerDelta['removed'];
    if (e.set !== undefined) d.set = e.set as ServerDelta['set'];
    out.push(d);
  }
  return out;
}

function accepted(entry: unknown): boolean {
  return typeof parseJournal(JSON.stringify({ version: 1, changes: [entry] })) !== 'string';
}

function keyOf(c: RuntimeChange): string {
  if (isDefinition(c)) return `${c.kind}\u0000${c.name}`;
  return c.kind === 'health' ? `health\u0000${c.pool}` : `server\u0000${c.pool}\u0000${c.server}`;
}
