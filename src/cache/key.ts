/**
 * Cache keys. An object is found by its primary key (the request's host and target: RFC 9111 §2
 * "the request method and target URI", with GET and HEAD sharing one key since a HEAD is answered
 * from a stored GET) and then by its variant key: the values of the request fields that the
 * stored response's `Vary` names, normalised (RFC 9111 §4.1 allows normalising them) so that
 * `gzip, br` and `gzip,br` find the same variant.
 */

/** The primary key of a request: `host` (lower case, without a default port) and the target. */
export function primaryKey(host: string, target: string): string {
  return host.toLowerCase() + target;
}

/** The path part of a primary key (the target without the host), for purges by path. */
export function keyPath(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? '' : key.slice(slash);
}

/** Fields whose values are case-insensitive (RFC 9110 §12.5): their variant key is lower-cased. */
const CASE_INSENSITIVE = new Set(['accept', 'accept-encoding', 'accept-language', 'accept-charset']);

/** `Vary` field names, lower-cased, in order, without duplicates; `*` alone when any member is `*`. */
export function parseVary(value: string | undefined): string[] {
  if (value === undefined) return [];
  const names: string[] = [];
  for (const part of value.split(',')) {
    const n = part.trim().toLowerCase();
    if (n === '') continue;
    if (n === '*') return ['*'];
    if (!names.includes(n)) names.push(n);
  }
  return names;
}

/** One request field's value for the variant key: list members trimmed, inner white space folded. */
export function normaliseFieldValue(name: string, value: string | undefined): string {
  if (value === undefined) return '';
  let out = '';
  for (const part of value.split(',')) {
    const m = part.trim().replace(/\s+/g, ' ');
    if (m === '') continue;
    out = out === '' ? m : out + ',' + m;
  }
  return CASE_INSENSITIVE.has(name) ? out.toLowerCase() : out;
}

/**
 * The variant key of a request for a response that varies on `vary` (from parseVary): each named
 * field's normalised value, in order. An absent field and an empty one are the same variant.
 */
export function variantKey(vary: readonly string[], headers: Readonly<Record<string, string | undefined>>): string {
  if (vary.length === 0) return '';
  let key = '';
  for (let i = 0; i < vary.length; i++) {
    const name = vary[i]!;
    key += (i === 0 ? '' : '\n') + name + ':' + normaliseFieldValue(name, headers[name]);
  }
  return key;
}
