import type { PathIssue } from '../path.js';
import { asList, asMap, asString, maps, type RawMap } from './raw.js';

/** Algorithm options only with their algorithm; servers only with static discovery. */
export function checkPoolOptions(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  for (const [i, p] of maps(root['pools'])) {
    const balance = asString(p['balance']) ?? (p['balance'] === undefined ? 'roundrobin' : undefined);
    if (balance === undefined) continue;
    for (const algo of ['hash', 'lard'] as const) {
      if (p[algo] !== undefined && balance !== algo) {
        out.push({ path: ['pools', i, algo], message: `${algo} options apply only with balance: ${algo} (this pool uses ${balance})` });
      }
    }
    const discovery = asString(asMap(p['discovery'])?.['type']);
    if (discovery !== undefined && discovery !== 'static' && asList(p['servers']).length > 0) {
      out.push({ path: ['pools', i, 'servers'], message: `this pool takes its servers from discovery (${discovery}): leave servers empty` });
    }
  }
  return out;
}
