import { CidrSet } from '../../core/cidr.js';

/** What a route's match may look at: views of the parsed request head, computed once per request. */
export interface RequestView {
  readonly method: string;
  /** Request-target path, without the query. */
  readonly path: string;
  /** The query string without '?', or ''. */
  readonly query: string;
  /** Host without port, lowercase, without a trailing dot. */
  readonly host: string;
  readonly lnames: readonly string[];
  readonly values: readonly string[];
  readonly clientAddress: string;
}

export interface MatchSpec {
  host?: string | readonly string[] | undefined;
  path?: string | undefined;
  pathRegex?: string | undefined;
  method?: string | readonly string[] | undefined;
  header?: { name: string; value?: string | undefined; regex?: string | undefined; present?: boolean | undefined } | undefined;
  cookie?: { name: string; value?: string | undefined; regex?: string | undefined } | undefined;
  query?: { name: string; value?: string | undefined; regex?: string | undefined } | undefined;
  userAgent?: string | undefined;
  source?: readonly string[] | undefined;
}

export type Matcher = (req: RequestView) => boolean;

export function headerValue(req: RequestView, lname: string): string | undefined {
  const n = req.lnames;
  for (let i = 0; i < n.length; i++) if (n[i] === lname) return req.values[i];
  return undefined;
}

export function cookieValue(req: RequestView, name: string): string | undefined {
  const n = req.lnames;
  for (let i = 0; i < n.length; i++) {
    if (n[i] !== 'cookie') continue;
    const v = req.values[i]!;
    let at = 0;
    while (at < v.length) {
      let end = v.indexOf(';', at);
      if (end < 0) end = v.length;
      let s = at;
      while (s < end && v.charCodeAt(s) === 32) s++;
      const eq = v.indexOf('=', s);
      if (eq > 0 && eq < end && v.slice(s, eq) === name) return v.slice(eq + 1, end).trim();
      at = end + 1;
    }
  }
  return undefined;
}

export function queryValue(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  let at = 0;
  while (at <= query.length) {
    let end = query.indexOf('&', at);
    if (end < 0) end = query.length;
    const eq = query.indexOf('=', at);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    if (query.slice(at, keyEnd) === name) return keyEnd === end ? '' : safeDecode(query.slice(keyEnd + 1, end));
    at = end + 1;
  }
  return undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function hostMatcher(patterns: readonly string[]): (host: string) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const p of patterns) {
    const l = p.toLowerCase().replace(/\.$/, '');
    if (l.startsWith('*.')) suffixes.push(l.slice(1));
    else exact.add(l);
  }
  return (host) => {
    if (exact.has(host)) return true;
    for (const s of suffixes) if (host.length > s.length && host.endsWith(s)) return true;
    return false;
  };
}

function valueTest(spec: { value?: string | undefined; regex?: string | undefined }): (v: string | undefined) => boolean {
  if (spec.value !== undefined) {
    const want = spec.value;
    return (v) => v === want;
  }
  if (spec.regex !== undefined) {
    const re = new RegExp(spec.regex);
    return (v) => v !== undefined && re.test(v);
  }
  return (v) => v !== undefined;
}

/** Compile a route's match once, at config load; every condition must hold. */
export function compileMatch(spec: MatchSpec | undefined): Matcher {
  if (spec === undefined) return () => true;
  const tests: Matcher[] = [];
  if (spec.host !== undefined) {
    const m = hostMatcher(typeof spec.host === 'string' ? [spec.host] : spec.host);
    tests.push((r) => m(r.host));
  }
  if (spec.path !== undefined) {
    const prefix = spec.path;
    tests.push((r) => r.path.startsWith(prefix));
  }
  if (spec.pathRegex !== undefined) {
    const re = new RegExp(spec.pathRegex);
    tests.push((r) => re.test(r.path));
  }
  if (spec.method !== undefined) {
    const set = new Set(typeof spec.method === 'string' ? [spec.method] : spec.method);
    tests.push((r) => set.has(r.method));
  }
  if (spec.header !== undefined) {
    const h = spec.header;
    const lname = h.name.toLowerCase();
    const t = h.present === false ? (v: string | undefined) => v === undefined : valueTest(h);
    tests.push((r) => t(headerValue(r, lname)));
  }
  if (spec.cookie !== undefined) {
    const c = spec.cookie;
    const t = valueTest(c);
    tests.push((r) => t(cookieValue(r, c.name)));
  }
  if (spec.query !== undefined) {
    const q = spec.query;
    const t = valueTest(q);
    tests.push((r) => t(queryValue(r.query, q.name)));
  }
  if (spec.userAgent !== undefined) {
    const re = new RegExp(spec.userAgent);
    tests.push((r) => {
      const ua = headerValue(r, 'user-agent');
      return ua !== undefined && re.test(ua);
    });
  }
  if (spec.source !== undefined) {
    const set = new CidrSet(spec.source);
    tests.push((r) => set.has(r.clientAddress));
  }
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (r) => {
    for (const t of tests) if (!t(r)) return false;
    return true;
  };
}
