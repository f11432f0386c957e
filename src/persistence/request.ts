/**
 * What persistence (and routing) may read of an HTTP request and response: views of the
 * parsed heads, computed once per request, and the small readers over them. Nothing here
 * allocates unless a value is found and returned.
 */

export interface StickyRequest {
  readonly clientAddress: string;
  /** The normalised path, without the query. */
  readonly path: string;
  /** The query string without '?', or ''. */
  readonly query: string;
  /** Lower-case header names, in order. */
  readonly lnames: readonly string[];
  /** Header values, parallel to `lnames`. */
  readonly values: readonly string[];
}

export interface StickyResponse {
  readonly lnames: readonly string[];
  readonly values: readonly string[];
}

/** The first value of a header (`lname` lower-case), or undefined. */
export function headerValue(req: { readonly lnames: readonly string[]; readonly values: readonly string[] }, lname: string): string | undefined {
  const n = req.lnames;
  for (let i = 0; i < n.length; i++) if (n[i] === lname) return req.values[i];
  return undefined;
}

/**
 * The value of cookie `name` in a Cookie header value, from offset 0; undefined when absent.
 * Pairs are `name=value` separated by `;` and optional spaces (RFC 6265 §4.2.1).
 */
export function cookieIn(v: string, name: string): string | undefined {
  let at = 0;
  const n = v.length;
  while (at < n) {
    let end = v.indexOf(';', at);
    if (end < 0) end = n;
    let s = at;
    while (s < end && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9)) s++;
    if (v.startsWith(name, s) && v.charCodeAt(s + name.length) === 61 /* = */ && s + name.length < end) {
      let e = end;
      while (e > s && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9)) e--;
      return v.slice(s + name.length + 1, e);
    }
    at = end + 1;
  }
  return undefined;
}

/** The value of cookie `name` across every Cookie header of the request (the first found). */
export function cookieValue(req: { readonly lnames: readonly string[]; readonly values: readonly string[] }, name: string): string | undefined {
  const n = req.lnames;
  for (let i = 0; i < n.length; i++) {
    if (n[i] !== 'cookie') continue;
    const found = cookieIn(req.values[i]!, name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The (percent-decoded) value of query parameter `name`, '' when present without '=', undefined when absent. */
export function queryValue(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  let at = 0;
  while (at <= query.length) {
    let end = query.indexOf('&', at);
    if (end < 0) end = query.length;
    const eq = query.indexOf('=', at);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    if (keyEnd - at === name.length && query.startsWith(name, at)) return keyEnd === end ? '' : safeDecode(query.slice(keyEnd + 1, end));
    at = end + 1;
  }
  return undefined;
}

function safeDecode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** ASCII case-insensitive `s.startsWith(lname, at)`; `lname` is lower-case. */
function startsWithLower(s: string, lname: string, at: number): boolean {
  if (at + lname.length > s.length) return false;
  for (let i = 0; i < lname.length; i++) {
    const c = s.charCodeAt(at + i);
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lname.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A session id carried in a URL: the path parameter `;name=value` (as `;jsessionid=`) of any
 * path segment, or the query parameter `name=value`. `lname` is lower-case and matched in any
 * case. Undefined when absent or empty.
 */
export function urlSessionId(path: string, query: string, lname: string): string | undefined {
  let at = path.indexOf(';');
  while (at >= 0) {
    if (startsWithLower(path, lname, at + 1) && path.charCodeAt(at + 1 + lname.length) === 61) {
      const from = at + 2 + lname.length;
      let end = from;
      while (end < path.length) {
        const c = path.charCodeAt(end);
        if (c === 59 /* ; */ || c === 47 /* / */) break;
        end++;
      }
      if (end > from) return path.slice(from, end);
    }
    at = path.indexOf(';', at + 1);
  }
  return query === '' ? undefined : paramIn(query, 0, lname);
}

/** `lname=value` among `&`-separated pairs of `s` from `from`; the raw value, or undefined when absent or empty. */
function paramIn(s: string, from: number, lname: string): string | undefined {
  let at = from;
  while (at < s.length) {
    let end = s.indexOf('&', at);
    if (end < 0) end = s.length;
    if (startsWithLower(s, lname, at) && s.charCodeAt(at + lname.length) === 61 && at + lname.length + 1 < end) {
      return s.slice(at + lname.length + 1, end);
    }
    at = end + 1;
  }
  return undefined;
}

/**
 * A session id in a `Location` (`...;name=value...` or `...?name=value`), `lname` lower-case.
 */
export function locationSessionId(location: string, lname: string): string | undefined {
  const hash = location.indexOf('#');
  const loc = hash < 0 ? location : location.slice(0, hash);
  const q = loc.indexOf('?');
  const path = q < 0 ? loc : loc.slice(0, q);
  return urlSessionId(path, q < 0 ? '' : loc.slice(q + 1), lname);
}

/** The value of a Set-Cookie header value for cookie `lname` (any case), or undefined. */
export function setCookieValue(setCookie: string, lname: string): string | undefined {
  let s = 0;
  while (s < setCookie.length && setCookie.charCodeAt(s) === 32) s++;
  if (!startsWithLower(setCookie, lname, s) || setCookie.charCodeAt(s + lname.length) !== 61) return undefined;
  const from = s + lname.length + 1;
  let end = setCookie.indexOf(';', from);
  if (end < 0) end = setCookie.length;
  const v = setCookie.slice(from, end).trim();
  return v === '' ? undefined : v;
}
