import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AdminState } from '../core/server.js';

/** Fields of a server that the admin API changes in place. */
export interface ServerSettings {
  readonly weight?: number;
  readonly state?: AdminState;
  readonly maxConnections?: number;
}

/**
 * What the operator changed about one server at run time. `spec` is a server registered
 * through the API, in the configuration file's form (it is validated again when read);
 * `removed` a deregistration; `set` changed fields. The configuration file says what exists,
 * these entries say what was changed since; together they give the servers that run.
 */
export interface ServerChange {
  readonly kind: 'server';
  readonly pool: string;
  readonly server: string;
  readonly spec?: Readonly<Record<string, unknown>> | undefined;
  readonly removed?: true | undefined;
  readonly set?: ServerSettings | undefined;
  /** When the entry last changed (ISO 8601). */
  readonly at: string;
}

/** A pool's health check replaced at run time (the file's form of `health`). */
export interface HealthChange {
  readonly kind: 'health';
  readonly pool: string;
  readonly health: Readonly<Record<string, unknown>>;
  readonly at: string;
}

/**
 * A pool, a listener or a load balancer defined at run time (POST /api/v1/pools, /listeners,
 * /loadbalancers), in the form its POST body had: `spec` is validated again, with the whole
 * document, whenever it is laid over a configuration. `removed` takes a pool or listener of
 * the file out. A definition whose name the file also defines replaces the file's.
 */
export interface DefinitionChange {
  readonly kind: 'pool' | 'listener' | 'loadbalancer';
  readonly name: string;
  readonly spec?: Readonly<Record<string, unknown>> | undefined;
  readonly removed?: true | undefined;
  readonly at: string;
}

export type RuntimeChange = ServerChange | HealthChange | DefinitionChange;

/** A change of one pool's servers or health check. */
export type PoolLevelChange = ServerChange | HealthChange;
export const isPoolLevel = (c: RuntimeChange): c is PoolLevelChange => c.kind === 'server' || c.kind === 'health';

export const isDefinition = (c: RuntimeChange): c is DefinitionChange => c.kind === 'pool' || c.kind === 'listener' || c.kind === 'loadbalancer';

export const JOURNAL_FILE = 'runtime-changes.json';

/** The on-disk form: `{ "version": 1, "changes": [...] }`. */
interface JournalFile {
  readonly version: 1;
  readonly changes: readonly RuntimeChange[];
}

export interface JournalLoad {
  readonly changes: readonly RuntimeChange[];
  /** Why the file could not be used (it is then moved aside and Portico runs from the file alone). */
  readonly problem?: string | undefined;
}

/**
 * The runtime journal: the changes in force, kept as one small JSON file in the state
 * directory, rewritten whole (write, fsync, rename) on every change so that a crash leaves
 * either the old or the new file. An API change is written before it is applied: a 2xx means
 * the change survives a restart.
 */
export class RuntimeJournal {
  readonly path: string | undefined;
  private changes: readonly RuntimeChange[] = [];

  /** `stateDir` undefined keeps the journal in memory only (nothing survives a restart). */
  constructor(stateDir: string | undefined) {
    this.path = stateDir === undefined ? undefined : join(stateDir, JOURNAL_FILE);
  }

  get current(): readonly RuntimeChange[] {
    return this.changes;
  }

  /** Read the file (a missing file is an empty journal). A malformed file is moved aside and reported. */
  load(): JournalLoad {
    const path = this.path;
    if (path === undefined) return { changes: this.changes };
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { changes: (this.changes = []) };
      return { changes: (this.changes = []), problem: `cannot read ${path}: ${(err as Error).message}` };
    }
    const parsed = parseJournal(text);
    if (typeof parsed === 'string') {
      const aside = `${path}.bad-${Date.now()}`;
      let moved = '';
      try {
        renameSync(path, aside);
        moved = ` (moved to ${aside})`;
      } catch {
        // leave it where it is; the next write replaces it
      }
      this.changes = [];
      return { changes: [], problem: `${path}: ${parsed}${moved}` };
    }
    this.changes = parsed;
    return { changes: parsed };
  }

  /** Replace the changes in force and write them; throws (and keeps the old ones) when the file cannot be written. */
  save(changes: readonly RuntimeChange[]): void {
    const path = this.path;
    if (path !== undefined) {
      const body: JournalFile = { version: 1, changes };
      const dir = path.slice(0, path.length - JOURNAL_FILE.length - 1);
      mkdirSync(dir, { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(body, null, 2) + '\n');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    }
    this.changes = changes;
  }
}

/** The changes of a journal file, or why it cannot be used. */
export function parseJournal(text: string): RuntimeChange[] | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (typeof raw !== 'object' || raw === null || (raw as { version?: unknown }).version !== 1) return 'not a version 1 journal';
  const list = (raw as { changes?: unknown }).changes;
  if (!Array.isArray(list)) return 'changes is not a list';
  const out: RuntimeChange[] = [];
  for (const [i, c] of list.entries()) {
    const bad = (why: string): string => `changes[${i}]: ${why}`;
    if (typeof c !== 'object' || c === null) return bad('not an object');
    const e = c as Record<string, unknown>;
    if (e.kind === 'pool' || e.kind === 'listener' || e.kind === 'loadbalancer') {
      if (typeof e.name !== 'string' || typeof e.at !== 'string') return bad('name and at must be strings');
      if ((e.spec === undefined) === (e.removed === undefined)) return bad('takes spec or removed');
      if (e.spec !== undefined && !isRecord(e.spec)) return bad('spec must be an object');
      if (e.removed !== undefined && (e.removed !== true || e.kind === 'loadbalancer')) return bad('removed must be true, and only for a pool or listener');
      out.push(e.spec !== undefined ? { kind: e.kind, name: e.name, spec: e.spec, at: e.at } : { kind: e.kind, name: e.name, removed: true, at: e.at });
      continue;
    }
    if (typeof e.pool !== 'string' || typeof e.at !== 'string') return bad('pool and at must be strings');
    if (e.kind === 'health') {
      if (!isRecord(e.health)) return bad('health must be an object');
      out.push({ kind: 'health', pool: e.pool, health: e.health, at: e.at });
    } else if (e.kind === 'server') {
      if (typeof e.server !== 'string') return bad('server must be a string');
      if (e.spec !== undefined && !isRecord(e.spec)) return bad('spec must be an object');
      if (e.removed !== undefined && e.removed !== true) return bad('removed must be true');
      const set = e.set === undefined ? undefined : settingsOf(e.set);
      if (set === null) return bad('set must hold weight, state and maxConnections only');
      const entry: { -readonly [K in keyof ServerChange]: ServerChange[K] } = { kind: 'server', pool: e.pool, server: e.server, at: e.at };
      if (e.spec !== undefined) entry.spec = e.spec as Record<string, unknown>;
      if (e.removed === true) entry.removed = true;
      if (set !== undefined) entry.set = set;
      out.push(entry);
    } else return bad(`unknown kind ${JSON.stringify(e.kind)}`);
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function settingsOf(v: unknown): ServerSettings | null {
  if (!isRecord(v)) return null;
  const out: { weight?: number; state?: AdminState; maxConnections?: number } = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'weight' && Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 256) out.weight = x as number;
    else if (k === 'maxConnections' && Number.isInteger(x) && (x as number) >= 0) out.maxConnections = x as number;
    else if (k === 'state' && (x === 'ready' || x === 'drain' || x === 'maint')) out.state = x;
    else return null;
  }
  return out;
}

// ---- pure edits of a change list ---------------------------------------------------------

const sameServer = (c: RuntimeChange, pool: string, server: string): c is ServerChange =>
  c.kind === 'server' && c.pool === pool && c.server === server;

/** The entry for one server, if any. */
export function serverChange(changes: readonly RuntimeChange[], pool: string, server: string): ServerChange | undefined {
  return changes.find((c): c is ServerChange => sameServer(c, pool, server));
}

/** Replace (or drop, with `next` undefined) the entry of one server; the order of others is kept. */
export function withServerChange(changes: readonly RuntimeChange[], pool: string, server: string, next: ServerChange | undefined): RuntimeChange[] {
  const out: RuntimeChange[] = [];
  let placed = false;
  for (const c of changes) {
    if (sameServer(c, pool, server)) {
      if (next !== undefined && !placed) out.push(next);
      placed = true;
    } else out.push(c);
  }
  if (!placed && next !== undefined) out.push(next);
  return out;
}

/** The definition of a pool, listener or load balancer, if any. */
export function definitionChange(changes: readonly RuntimeChange[], kind: DefinitionChange['kind'], name: string): DefinitionChange | undefined {
  return changes.find((c): c is DefinitionChange => c.kind === kind && c.name === name);
}

/** Replace (or drop, with `next` undefined) one definition; a new one goes last, the order of others is kept. */
export function withDefinition(changes: readonly RuntimeChange[], kind: DefinitionChange['kind'], name: string, next: DefinitionChange | undefined): RuntimeChange[] {
  const out: RuntimeChange[] = [];
  let placed = false;
  for (const c of changes) {
    if (c.kind === kind && c.name === name) {
      if (next !== undefined && !placed) out.push(next);
      placed = true;
    } else out.push(c);
  }
  if (!placed && next !== undefined) out.push(next);
  return out;
}

/** Replace (or drop) the health entry of a pool. */
export function withHealthChange(changes: readonly RuntimeChange[], pool: string, next: HealthChange | undefined): RuntimeChange[] {
  const out = changes.filter((c) => !(c.kind === 'health' && c.pool === pool));
  if (next !== undefined) out.push(next);
  return out;
}
