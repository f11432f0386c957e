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
  // RFC 7540 §3.2.1: connection-specific, meaningful only with Upgrade: h2c, which is never tunnelled.
  'http2-settings',
]);

/** Forwarding headers Portico writes itself; a client's own are kept only from trusted proxies. */
export const FORWARDING: ReadonlySet<string> = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);

/** Client certificate headers Portico writes itself (tls.clientAuth); a client's own are always removed. */
export const CLIENT_CERT: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'x-client-verify']);

/**
 * Fields a Connection header may not nominate for removal (the request is refused, as Envoy refuses
 * a nominated X-Forwarded-* field): the ones that frame or route the message, and the forwarding
 * and client-certificate fields Portico writes. Transfer-Encoding is hop-by-hop and Portico writes
 * its own framing, so nominating it changes nothing and is not refused.
 */
export const PROTECTED_FROM_CONNECTION: ReadonlySet<string> = new Set(['content-length', 'host', ...FORWARDING, ...CLIENT_CERT]);

/**
 * Fields that are not passed on as trailers (RFC 9110 §6.5.1, RFC 9113 §8.1): framing, routing,
 * request modifiers, authentication, response control data, and what decides how to process the
 * content, and the forwarding fields Portico writes. Pseudo-header fields cannot occur (trailer names are tokens).
 */
export const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  // what Portico writes about the client: a server that merges trailers into the header section
  // would otherwise read a client's own X-Forwarded-For or client-certificate fields
  ...FORWARDING,
  ...CLIENT_CERT,
  'content-length',
  'content-type',
  'content-encoding',
  'content-range',
  'host',
  'authorization',
  'www-authenticate',
  'cookie',
  'set-cookie',
  'age',
  'cache-control',
  'expires',
  'date',
  'location',
  'retry-after',
  'vary',
  'warning',
  'pragma',
  'expect',
  'max-forwards',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
]);

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
