import { deepFreeze } from '../config/deep-freeze.js';
import { deepEqual } from '../core/deep-equal.js';
import { errorMap, toPathIssues } from '../config/issues.js';
import { formatPath } from '../config/path.js';
import { healthSchema } from '../config/schema/health.js';
import { serverSchema } from '../config/schema/server.js';
import type { Config, HealthConfig, PoolConfig, ServerConfig } from '../config/types.js';
import type { AdminIssue } from './admin-error.js';
import { isPoolLevel, type RuntimeChange } from './journal.js';

/** One runtime change and whether it could be applied to the configuration it met. */
export interface OverlayEntry {
  readonly change: RuntimeChange;
  readonly applied: boolean;
  /** Why it was not applied (the pool or server is not in the configuration, the spec no longer validates). */
  readonly reason?: string | undefined;
}

export interface Overlay {
  /** The configuration file with the runtime changes applied: what runs. */
  readonly config: Config;
  readonly entries: readonly OverlayEntry[];
}

/**
 * Apply runtime changes to a configuration: the file says what exists, the changes say
 * what the operator changed at run time. A registered server replaces a file server of the
 * same name or is added after the file's servers; a removal takes a server out; settings
 * are laid over the server's own. Pure: the result is a new frozen Config.
 */
export function overlay(file: Config, all: readonly RuntimeChange[]): Overlay {
  // Definitions of pools and listeners are laid first, by definitions.ts; these are changes of their servers and health.
  const changes = all.filter(isPoolLevel);
  const entries: OverlayEntry[] = [];
  const poolNames = new Set(file.pools.map((p) => p.name));
  for (const c of changes) {
    if (!poolNames.has(c.pool)) entries.push({ change: c, applied: false, reason: `pool ${c.pool} is not in the configuration` });
  }
  if (changes.length === 0) return { config: file, entries };
  const pools = file.pools.map((pc): PoolConfig => {
    const mine = changes.filter((c) => c.pool === pc.name);
    if (mine.length === 0) return pc;
    let servers: ServerConfig[] = [...pc.servers];
    let health: HealthConfig = pc.health;
    for (const c of mine) {
      if (c.kind === 'health') {
        const parsed = parseHealth(c.health);
        if (parsed.ok) {
          health = parsed.value;
          entries.push({ change: c, applied: true });
        } else entries.push({ change: c, applied: false, reason: `the health check no longer validates: ${describe(parsed.issues)}` });
        continue;
      }
      const at = servers.findIndex((s) => s.name === c.server);
      if (c.removed === true) {
        if (at < 0) entries.push({ change: c, applied: false, reason: `server ${c.server} is not in pool ${pc.name}` });
        else {
          servers = servers.filter((_, i) => i !== at);
          entries.push({ change: c, applied: true });
        }
        continue;
      }
      let base: ServerConfig | undefined = at < 0 ? undefined : servers[at];
      if (c.spec !== undefined) {
        const parsed = parseServer(c.spec);
        if (!parsed.ok) {
          entries.push({ change: c, applied: false, reason: `the registered server no longer validates: ${describe(parsed.issues)}` });
          continue;
        }
        base = parsed.value;
      }
      if (base === undefined) {
        entries.push({ change: c, applied: false, reason: `server ${c.server} is not in pool ${pc.name}` });
        continue;
      }
      const next: ServerConfig = c.set === undefined ? base : { ...base, ...c.set };
      if (at < 0) servers.push(next);
      else servers[at] = next;
      entries.push({ change: c, applied: true });
    }
    return { ...pc, servers, health };
  });
  return { config: deepFreeze({ ...file, pools }) as Config, entries };
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly issues: readonly AdminIssue[] };

/** Validate a server as the configuration file does (same schema, same messages). */
export function parseServer(raw: unknown): Parsed<ServerConfig> {
  const r = serverSchema.safeParse(raw, { error: errorMap });
  if (r.success) return { ok: true, value: r.data as ServerConfig };
  return { ok: false, issues: toPathIssues(r.error.issues).map((i) => ({ path: formatPath(i.path), message: i.message })) };
}

/** Validate a health check as the configuration file does. */
export function parseHealth(raw: unknown): Parsed<HealthConfig> {
  const r = healthSchema.safeParse(raw, { error: errorMap });
  if (r.success) return { ok: true, value: r.data as HealthConfig };
  return { ok: false, issues: toPathIssues(r.error.issues).map((i) => ({ path: formatPath(i.path), message: i.message })) };
}

function describe(issues: readonly AdminIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}

/**
 * What a new configuration file changes that the runtime changes hide: one line per value the
 * file changed (from `before` to `after`) that a change made through the API overrides, and how
 * to drop the override. Pure.
 */
export function hiddenByRuntime(before: Config, after: Config, all: readonly RuntimeChange[]): string[] {
  const changes = all.filter(isPoolLevel);
  const out: string[] = [];
  const serverOf = (c: Config, pool: string, name: string): ServerConfig | undefined => c.pools.find((p) => p.name === pool)?.servers.find((s) => s.name === name);
  for (const c of changes) {
    if (c.kind === 'health') {
      const a = after.pools.find((p) => p.name === c.pool)?.health;
      const b = before.pools.find((p) => p.name === c.pool)?.health;
      if (a !== undefined && !deepEqual(a, b)) out.push(`pool ${c.pool}: the file's health check changed; the one set through the API stays in force (PUT the file's health section to drop it)`);
      continue;
    }
    const a = serverOf(after, c.pool, c.server);
    if (a === undefined) continue;
    const b = serverOf(before, c.pool, c.server);
    const reset = `portico ctl reset ${c.pool}/${c.server} drops it`;
    if (c.removed === true || c.spec !== undefined) {
      if (!deepEqual(a, b)) out.push(`${c.pool}/${c.server}: the file's server changed; it was ${c.removed === true ? 'removed' : 'registered again'} through the API, which stays in force (${reset})`);
      continue;
    }
    for (const [k, v] of Object.entries(c.set ?? {})) {
      const now = a[k as keyof ServerConfig];
      if (deepEqual(now, b?.[k as keyof ServerConfig]) || deepEqual(now, v)) continue;
      out.push(`${c.pool}/${c.server}: the file's ${k} ${JSON.stringify(now)} does not apply: ${k} ${JSON.stringify(v)} was set through the API (${reset})`);
    }
  }
  return out;
}
