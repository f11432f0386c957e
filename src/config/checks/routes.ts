import type { PathIssue } from '../path.js';
import { asList, asMap, asString, maps, type RawMap } from './raw.js';

/** A route with no conditions takes every request, so it must be the last of its listener. */
export function checkUnreachableRoutes(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  for (const [i, l] of maps(root['listeners'])) {
    const routes = asList(l['routes']);
    for (const [j, r] of maps(routes)) {
      if (j === routes.length - 1) continue;
      const match = r['match'];
      const m = asMap(match);
      if (match === undefined || match === null || (m !== undefined && Object.keys(m).length === 0)) {
        const after = routes.length - 1 - j;
        out.push({
          path: ['listeners', i, 'routes', j],
          message: `a route without match takes every request: the ${after} route${after === 1 ? '' : 's'} after it ${after === 1 ? 'is' : 'are'} unreachable`,
        });
      }
    }
  }
  return out;
}

/**
 * `priority` orders a pool's queue; a route that sets it for a pool without a queue would have no
 * effect, so it is refused rather than silently ignored.
 */
export function checkRoutePriority(root: RawMap): PathIssue[] {
  const queued = new Set<string>();
  for (const [, p] of maps(root['pools'])) {
    const name = asString(p['name']);
    const max = asMap(p['queue'])?.['max'];
    if (name !== undefined && max !== undefined && Number(max) > 0) queued.add(name);
  }
  const out: PathIssue[] = [];
  for (const [i, l] of maps(root['listeners'])) {
    for (const [j, r] of maps(l['routes'])) {
      const priority = asString(r['priority']);
      const pool = asString(r['pool']);
      if (priority === undefined || priority === 'normal' || pool === undefined || queued.has(pool)) continue;
      out.push({
        path: ['listeners', i, 'routes', j, 'priority'],
        message: `priority orders the queue of pool "${pool}", which has none: give it one (queue: { max: N }) or drop priority`,
      });
    }
  }
  return out;
}
