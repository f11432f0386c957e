import type { PathIssue } from '../path.js';
import { asList, asMap, maps, type RawMap } from './raw.js';

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
