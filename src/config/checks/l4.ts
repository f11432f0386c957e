import type { PathIssue } from '../path.js';
import { asMap, asString, maps, type RawMap } from './raw.js';

/** The pools a listener sends traffic to (its `pool` and its routes' pools). */
function poolsOf(l: RawMap): string[] {
  const out: string[] = [];
  const p = asString(l['pool']);
  if (p !== undefined) out.push(p);
  for (const [, r] of maps(l['routes'])) {
    const rp = asString(r['pool']);
    if (rp !== undefined) out.push(rp);
  }
  return out;
}

/**
 * Pools behind tcp listeners: `persistence: tls-session` is learnt only by tcp listeners that
 * read the ClientHello (inspect: tls), so such a pool must be used only there; and a tcp
 * listener has no request to hash, so `balance: hash` behind one hashes the client address.
 */
export function checkL4Pools(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  const users = new Map<string, { tlsInspect: boolean; tcp: boolean; listener: string }[]>();
  for (const [i, l] of maps(root['listeners'])) {
    const proto = asString(l['protocol']);
    const use = { tlsInspect: proto === 'tcp' && l['inspect'] === 'tls', tcp: proto === 'tcp' && l['dataPlane'] !== 'kernel', listener: asString(l['name']) ?? String(i) };
    for (const p of poolsOf(l)) users.set(p, [...(users.get(p) ?? []), use]);
  }
  for (const [i, p] of maps(root['pools'])) {
    const name = asString(p['name']);
    if (name === undefined) continue;
    const used = users.get(name) ?? [];
    if (asString(asMap(p['persistence'])?.['type']) === 'tls-session') {
      const other = used.find((u) => !u.tlsInspect);
      if (other !== undefined) {
        out.push({
          path: ['pools', i, 'persistence', 'type'],
          message: `tls-session persistence works on tcp listeners with inspect: tls; listener "${other.listener}" uses this pool without it`,
        });
      }
    }
    const key = asString(asMap(p['hash'])?.['key']);
    if (asString(p['balance']) === 'hash' && key !== undefined && key !== 'source-ip') {
      const tcp = used.find((u) => u.tcp);
      if (tcp !== undefined) {
        out.push({ path: ['pools', i, 'hash', 'key'], message: `tcp listener "${tcp.listener}" uses this pool: a connection can only be hashed by source-ip` });
      }
    }
  }
  return out;
}
