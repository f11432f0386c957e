import type { PathIssue } from '../path.js';
import { parseAddress } from '../values/address.js';
import { isLoopback } from '../values/host.js';
import { asMap, type RawMap } from './raw.js';

/** An admin API reachable from other machines must require a token. */
export function checkAdminExposure(root: RawMap): PathIssue[] {
  const admin = asMap(root['admin']);
  if (admin === undefined || admin['listen'] === undefined) return [];
  if (admin['enabled'] === false || admin['enabled'] === 'false') return [];
  const addr = parseAddress(admin['listen'], 0);
  if (!addr.ok || isLoopback(addr.value.host)) return [];
  const token = admin['token'];
  if (typeof token === 'string' && token.trim() !== '') return [];
  return [{ path: ['admin', 'listen'], message: `${addr.value.host} is not a loopback address: set admin.token so that only its holders may change anything` }];
}
