import type { ConfigPath, PathIssue } from '../path.js';
import { formatPath } from '../path.js';
import { asString, maps, type RawMap } from './raw.js';

/** Reports the second and later entries of `list` whose `name` repeats an earlier one. */
function duplicates(what: string, list: unknown, at: ConfigPath, out: PathIssue[]): void {
  const seen = new Map<string, ConfigPath>();
  for (const [i, item] of maps(list)) {
    const name = asString(item['name']);
    if (name === undefined) continue;
    const path = [...at, i, 'name'];
    const first = seen.get(name);
    if (first === undefined) seen.set(name, path);
    else out.push({ path, message: `duplicate ${what} name "${name}" (first at ${formatPath(first)})` });
  }
}

export function checkUniqueNames(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  duplicates('listener', root['listeners'], ['listeners'], out);
  duplicates('pool', root['pools'], ['pools'], out);
  duplicates('cache', root['caches'], ['caches'], out);
  for (const [i, pool] of maps(root['pools'])) duplicates('server', pool['servers'], ['pools', i, 'servers'], out);
  for (const [i, listener] of maps(root['listeners'])) duplicates('route', listener['routes'], ['listeners', i, 'routes'], out);
  return out;
}
