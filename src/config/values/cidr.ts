import { isIPv4, isIPv6 } from './host.js';
import { fail, ok, show, type Parsed } from './parsed.js';

/** `10.0.0.0/8`, `::1/128`, or a bare address (a single host). Kept as text; checked here. */
export function parseCidr(input: unknown): Parsed<string> {
  if (typeof input !== 'string') return fail(`expected a CIDR block such as 10.0.0.0/8, got ${show(input)}`);
  const text = input.trim();
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const max = isIPv4(addr) ? 32 : isIPv6(addr) ? 128 : 0;
  if (max === 0) return fail(`bad CIDR block ${show(input)}: ${show(addr)} is not an IP address`);
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return fail(`bad CIDR block ${show(input)}: prefix length must be 0-${max}`);
  }
  return ok(text);
}
