/** Header rules of the HTTP data path: hop-by-hop sets and forwarding headers. */

/** Hop-by-hop headers (RFC 9110 §7.6.1 and the usual extras): never forwarded as received. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/** Forwarding headers Portico writes itself; a client's own are kept only from trusted proxies. */
export const FORWARDING: ReadonlySet<string> = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);

/** Client certificate headers Portico writes itself (tls.clientAuth); a client's own are always removed. */
export const CLIENT_CERT: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'x-client-verify']);

const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);
export const isIdempotent = (method: string): boolean => IDEMPOTENT.has(method);

/** RFC 7239 node: IPv6 addresses are bracketed and quoted. */
export function forwardedNode(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  return address.includes(':') ? `"[${address}]"` : address;
}

/** An address as X-Forwarded-For carries it (IPv4-mapped IPv6 shown as IPv4). */
export function xffAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** A value is safe in a quoted-string or token position of Forwarded. */
export function forwardedValue(v: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}
