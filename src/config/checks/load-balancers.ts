import type { PathIssue } from '../path.js';
import { asMap, asString, maps, type RawMap } from './raw.js';

/** The zones of the document's dns listeners (lower case, no final dot). */
export function dnsZones(root: RawMap): string[] {
  const out: string[] = [];
  for (const [, l] of maps(root['listeners'])) {
    if (l['protocol'] !== 'dns') continue;
    for (const [, z] of maps(l['zones'])) {
      const name = asString(z['name']);
      if (name !== undefined) out.push(name.toLowerCase().replace(/\.$/, ''));
    }
  }
  return out;
}

/** `loadBalancers.zone` must be a zone of a dns listener. */
export function checkLoadBalancerZone(root: RawMap): PathIssue[] {
  const zone = asString(asMap(root['loadBalancers'])?.['zone']);
  if (zone === undefined) return [];
  const zones = dnsZones(root);
  if (zones.includes(zone.toLowerCase().replace(/\.$/, ''))) return [];
  const known = zones.length === 0 ? 'there is no dns listener' : `zones of the dns listeners: ${zones.join(', ')}`;
  return [{ path: ['loadBalancers', 'zone'], message: `no dns listener has zone "${zone}" (${known})` }];
}
