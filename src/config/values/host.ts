import { isIPv4, isIPv6 } from 'node:net';

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** A DNS host name (RFC 1123 labels; `_` allowed for service names), without a trailing dot. */
export function isHostname(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const labels = s.split('.');
  if (labels.every((l) => /^\d+$/.test(l))) return false; // digits only: a malformed IPv4 address
  return labels.every((l) => LABEL.test(l));
}

export const isIp = (s: string): boolean => isIPv4(s) || isIPv6(s);
export { isIPv4, isIPv6 };

/** True for 127.0.0.0/8, ::1, ::ffff:127.x.y.z and `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIPv4(v4) && v4.startsWith('127.');
}

/** True for the any-address of either family (binds every interface). */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}
