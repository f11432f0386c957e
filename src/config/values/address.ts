import { isHostname, isIPv4, isIPv6 } from './host.js';
import { fail, ok, show, type Parsed } from './parsed.js';

/** A parsed `host:port`; an IPv6 host is kept without brackets. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/**
 * `host:port`, `[v6]:port`. The host is an IPv4 address, a bracketed IPv6 address or a host name;
 * it is required (write `0.0.0.0:8080` for every interface). `minPort` is 0 for listeners
 * (0 = any free port) and 1 for servers.
 */
export function parseAddress(input: unknown, minPort: 0 | 1): Parsed<Address> {
  if (typeof input !== 'string') {
    const hint = typeof input === 'number' ? ` (write HOST:${input}, e.g. 0.0.0.0:${input})` : '';
    return fail(`expected an address HOST:PORT, got ${show(input)}${hint}`);
  }
  const text = input.trim();
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return fail(`bad address ${show(input)}: missing "]" after the IPv6 address`);
    host = text.slice(1, close);
    if (text[close + 1] !== ':') return fail(`bad address ${show(input)}: missing :PORT`);
    portText = text.slice(close + 2);
    if (!isIPv6(host)) return fail(`bad address ${show(input)}: ${show(host)} is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail(`bad address ${show(input)}: missing :PORT`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') return fail(`bad address ${show(input)}: missing host (0.0.0.0 means every interface)`);
    if (host.includes(':')) return fail(`bad address ${show(input)}: an IPv6 address goes in brackets, e.g. [::1]:8080`);
    if (!isIPv4(host) && !isHostname(host)) return fail(`bad address ${show(input)}: ${show(host)} is neither an IPv4 address nor a host name`);
  }
  if (!/^\d{1,5}$/.test(portText)) return fail(`bad address ${show(input)}: port must be a number`);
  const port = Number(portText);
  if (port < minPort || port > 65535) return fail(`bad address ${show(input)}: port ${port} is out of range ${minPort}-65535`);
  return ok({ host, port });
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
