import type { PathIssue } from '../path.js';
import { parseAddress } from '../values/address.js';
import { isLoopback } from '../values/host.js';
import { asMap, type RawMap } from './raw.js';

/** An admin API reachable from other machines must require a token. */
export function checkAdminExposure(root: RawMap): PathIssue[] {
  const admin = asMap(root['admin']);
  if (admin === undefined) return [];
  if (admin['enabled'] === false || admin['enabled'] === 'false') return [];
  const issues: PathIssue[] = [];
  const token = admin['token'];
  const hasToken = typeof token === 'string' && token.trim() !== '';
  if ((admin['protectReads'] === true || admin['protectReads'] === 'true') && !hasToken) {
    issues.push({ path: ['admin', 'protectReads'], message: 'protecting reads needs admin.token (the token every read must then carry)' });
  }
  return [...issues, ...checkListen(admin, hasToken)];
}

function checkListen(admin: RawMap, hasToken: boolean): PathIssue[] {
  if (admin['listen'] === undefined) return [];
  const addr = parseAddress(admin['listen'], 0);
  if (!addr.ok || isLoopback(addr.value.host)) return [];
  if (hasToken) return [];
  return [{ path: ['admin', 'listen'], message: `${addr.value.host} is not a loopback address: set admin.token so that only its holders may change anything` }];
}
