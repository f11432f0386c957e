import { isHostname } from './host.js';
import { checkLinearRegex } from './linear-regex.js';
import { fail, ok, show, type Parsed } from './parsed.js';

/** A JavaScript regular expression source; it must compile, and run in linear time (linear-regex.ts). */
export function parseRegex(input: unknown): Parsed<string> {
  if (typeof input !== 'string') return fail(`expected a regular expression, got ${show(input)}`);
  try {
    new RegExp(input);
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '') : String(err);
    return fail(`bad regular expression ${show(input)}: ${why}`);
  }
  const linear = checkLinearRegex(input);
  if (linear !== undefined) return fail(`regular expression ${show(input)} ${linear}`);
  return ok(input);
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An HTTP field name (RFC 9110 token). */
export function parseHeaderName(input: unknown): Parsed<string> {
  if (typeof input !== 'string' || !TOKEN.test(input)) return fail(`bad header name ${show(input)}: letters, digits and !#$%&'*+.^_\`|~- only`);
  return ok(input);
}

/** A host to match: a name or `*.example.com`; lower-cased, without a trailing dot. */
export function parseHostPattern(input: unknown): Parsed<string> {
  if (typeof input !== 'string') return fail(`expected a host name, got ${show(input)}`);
  const h = input.trim().toLowerCase().replace(/\.$/, '');
  const name = h.startsWith('*.') ? h.slice(2) : h;
  if (!isHostname(name)) return fail(`bad host ${show(input)}: a host name, or *.domain for every subdomain`);
  return ok(h);
}

/** A DNS domain name; lower-cased, without a trailing dot. */
export function parseDomain(input: unknown): Parsed<string> {
  if (typeof input !== 'string') return fail(`expected a domain name, got ${show(input)}`);
  const h = input.trim().toLowerCase().replace(/\.$/, '');
  if (!isHostname(h)) return fail(`bad domain name ${show(input)}`);
  return ok(h);
}

/**
 * Where a request's key comes from (hash balancing, rate limits):
 * `source-ip`, `uri`, `header:NAME`, `cookie:NAME` or `query:NAME`.
 */
export function parseRequestKey(input: unknown): Parsed<string> {
  const hint = 'source-ip, uri, header:NAME, cookie:NAME or query:NAME';
  if (typeof input !== 'string') return fail(`expected a request key (${hint}), got ${show(input)}`);
  if (input === 'source-ip' || input === 'uri') return ok(input);
  const m = /^(header|cookie|query):(.+)$/.exec(input);
  if (m === null) return fail(`bad request key ${show(input)}: one of ${hint}`);
  if (m[1] === 'header' && !TOKEN.test(m[2]!)) return fail(`bad request key ${show(input)}: ${show(m[2])} is not a header name`);
  if (/[\s;=&]/.test(m[2]!)) return fail(`bad request key ${show(input)}: the name has a space, ";", "=" or "&"`);
  return ok(input);
}

/** An absolute http:// or https:// URL. */
export function parseHttpUrl(input: unknown): Parsed<string> {
  if (typeof input !== 'string') return fail(`expected a URL, got ${show(input)}`);
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    return fail(`bad URL ${show(input)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return fail(`bad URL ${show(input)}: must start with http:// or https://`);
  return ok(input);
}
