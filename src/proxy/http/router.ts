/**
 * Content switching: a listener's routes compiled once at config load into matchers and
 * actions. Per request, the session tries the matchers in order (first match wins) over a
 * view of the parsed head; every regular expression, set and string a matcher needs was
 * built here.
 */
import { CidrSet } from '../../core/cidr.js';
import { hostMatcher } from '../../tls/host-match.js';
import { linearRegExp } from '../../config/values/linear-regex.js';
import { cookieValue as cookieOf, headerValue, queryValue as queryOf, type StickyRequest } from '../../persistence/request.js';
import type { HttpRoute, PoolHandle } from './listener-runtime.js';
import { compileEdits, compileRedirect, compileRespond, type HeaderEditsSpec, type RouteAnswer } from './route-actions.js';
import { compilePhases, type HttpPhase, type PhaseList } from './phases.js';
import { FORWARDING_PHASE } from './phases/forwarding.js';
import { PassiveHealthPhase } from './phases/passive-health.js';
import { PersistencePhase } from './phases/persistence.js';
import { RouteAnswerPhase } from './phases/route-answer.js';
import { SERVED_BY_PHASE } from './phases/served-by.js';

export { cookieValue, headerValue, queryValue } from '../../persistence/request.js';

/** What a route's match may look at: views of the parsed request head, computed once per request. */
export interface RequestView extends StickyRequest {
  readonly method: string;
  /** Host without port, lower-case, without a trailing dot. */
  readonly host: string;
  /** The TLS server name (SNI) of the connection, lower-case; undefined without TLS or SNI. */
  readonly sni?: string | undefined;
  /** The connection's client certificate (https listeners with clientAuth); undefined otherwise. */
  readonly clientCert?: 'verified' | 'failed' | 'none' | undefined;
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
  sni?: string | readonly string[] | undefined;
  clientCert?: 'verified' | 'failed' | 'none' | undefined;
}

export type Matcher = (req: RequestView) => boolean;

const always: Matcher = () => true;

function valueTest(spec: { value?: string | undefined; regex?: string | undefined }): (v: string | undefined) => boolean {
  if (spec.value !== undefined) {
    const want = spec.value;
    return (v) => v === want;
  }
  if (spec.regex !== undefined) {
    const re = linearRegExp(spec.regex);
    return (v) => v !== undefined && re.test(v);
  }
  return (v) => v !== undefined;
}

/** A header condition: `present` looks at whether the header is there; value and regex hold when any occurrence matches. */
function headerTest(h: NonNullable<MatchSpec['header']>): Matcher {
  const lname = h.name.toLowerCase();
  if (h.present !== undefined) {
    const want = h.present;
    return (r) => (headerValue(r, lname) !== undefined) === want;
  }
  const t = valueTest(h);
  return (r) => {
    const n = r.lnames;
    for (let i = 0; i < n.length; i++) if (n[i] === lname && t(r.values[i])) return true;
    return false;
  };
}

/** Compile a route's match once, at config load; every condition given must hold. */
export function compileMatch(spec: MatchSpec | undefined): Matcher {
  if (spec === undefined) return always;
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
    const re = linearRegExp(spec.pathRegex);
    tests.push((r) => re.test(r.path));
  }
  if (spec.method !== undefined) {
    const list = typeof spec.method === 'string' ? [spec.method] : spec.method;
    if (list.length === 1) {
      const only = list[0]!;
      tests.push((r) => r.method === only);
    } else {
      const set = new Set(list);
      tests.push((r) => set.has(r.method));
    }
  }
  if (spec.header !== undefined) tests.push(headerTest(spec.header));
  if (spec.cookie !== undefined) {
    const c = spec.cookie;
    const t = valueTest(c);
    tests.push((r) => t(cookieOf(r, c.name)));
  }
  if (spec.query !== undefined) {
    const q = spec.query;
    const t = valueTest(q);
    tests.push((r) => t(queryOf(r.query, q.name)));
  }
  if (spec.userAgent !== undefined) {
    const re = linearRegExp(spec.userAgent);
    tests.push((r) => {
      const ua = headerValue(r, 'user-agent');
      return ua !== undefined && re.test(ua);
    });
  }
  if (spec.source !== undefined) {
    const set = new CidrSet(spec.source);
    tests.push((r) => set.has(r.clientAddress));
  }
  if (spec.sni !== undefined) {
    const m = hostMatcher(typeof spec.sni === 'string' ? [spec.sni] : spec.sni);
    tests.push((r) => r.sni !== undefined && m(r.sni));
  }
  if (spec.clientCert !== undefined) {
    const want = spec.clientCert;
    tests.push((r) => r.clientCert === want);
  }
  if (tests.length === 0) return always;
  if (tests.length === 1) return tests[0]!;
  if (tests.length === 2) {
    const [a, b] = tests as [Matcher, Matcher];
    return (r) => a(r) && b(r);
  }
  return (r) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(r)) return false;
    return true;
  };
}

/** What a listener's settings add to each of its routes. */
export interface RouteOptions {
  /** `exposeServer`: X-Served-By on every forwarded response. */
  readonly exposeServer?: boolean | undefined;
  /**
   * Phases a route that forwards may take beyond the built-in ones (the cache, compression ...):
   * each factory looks at the route's spec and gives its phase, or undefined when the route does not
   * use it. They run first, in the order given (a cache answers before persistence pins a server).
   */
  readonly routePhases?: readonly RoutePhaseFactory[] | undefined;
}

/** Makes a route's phase from its spec (e.g. `cache: NAME`), or undefined when the route has none. */
export type RoutePhaseFactory = (route: RouteSpec) => HttpPhase | undefined;

/** A route as configured (the `routes[]` entries of an http listener, validated). */
export interface RouteSpec {
  readonly name?: string | undefined;
  readonly match?: MatchSpec | undefined;
  readonly pool?: string | undefined;
  readonly redirect?: { readonly status: number; readonly location: string } | undefined;
  readonly respond?: { readonly status: number; readonly body: string; readonly headers: Readonly<Record<string, string>> } | undefined;
  readonly headers?: { readonly request: HeaderEditsSpec; readonly response: HeaderEditsSpec } | undefined;
  readonly priority?: 'high' | 'normal' | 'low' | undefined;
  /** `cache: NAME` (SPEC §11). */
  readonly cache?: string | undefined;
  /** `compress` (SPEC §11): true, false or its options. */
  readonly compress?: boolean | { readonly algorithms: readonly ('br' | 'gzip')[]; readonly minSize: number; readonly types?: readonly string[] | undefined; readonly level: number } | undefined;
}

/**
 * Compile a listener's routes. `pool(name)` gives the handle of a pool; the pool's persistence
 * adds the headers it rewrites to the route's edits, so the data path relays everything else
 * unchanged in one pass.
 */
export function compileRoutes(
  listener: string,
  specs: readonly RouteSpec[],
  pool: (name: string) => PoolHandle | undefined,
  options: RouteOptions = {},
): HttpRoute[] {
  return specs.map((r, i): HttpRoute => {
    const ph = r.pool === undefined ? undefined : pool(r.pool);
    if (r.pool !== undefined && ph === undefined) throw new Error(`route ${listener}#${i}: unknown pool ${r.pool}`);
    let phases: PhaseList;
    if (ph === undefined) {
      // Portico answers the route itself; the answer carries the route's response header edits.
      const response = compileEdits(r.headers?.response);
      let answer: RouteAnswer;
      if (r.redirect !== undefined) answer = compileRedirect(r.redirect.status, r.redirect.location, response.add);
      else if (r.respond !== undefined) answer = compileRespond(r.respond.status, r.respond.body, r.respond.headers, response.add);
      else throw new Error(`route ${listener}#${i}: neither a pool nor an answer (redirect, respond)`);
      phases = compilePhases([new RouteAnswerPhase(answer)]);
    } else {
      const per = ph.persistence;
      const extra = options.routePhases === undefined ? [] : options.routePhases.map((f) => f(r));
      phases = compilePhases([
        ...extra,
        per === undefined ? undefined : new PersistencePhase(per),
        FORWARDING_PHASE,
        new PassiveHealthPhase(ph),
        options.exposeServer === true ? SERVED_BY_PHASE : undefined,
      ]);
    }
    // The headers the phases write themselves are not relayed as received: one pass in the session.
    const request = compileEdits(r.headers?.request, phases.requestHeaders);
    const response = compileEdits(r.headers?.response, phases.responseHeaders);
    return {
      name: r.name ?? `${listener}#${i}`,
      match: compileMatch(r.match),
      pool: ph,
      upstream: ph === undefined ? undefined : { pool: ph.pool, retries: ph.retries },
      phases,
      priority: r.priority ?? 'normal',
      requestDrop: request.drop,
      requestAdd: request.add,
      responseDrop: response.drop,
      responseAdd: response.add,
      answerDrop: phases.responseHeaders.length === 0 ? response.drop : compileEdits(r.headers?.response).drop,
    };
  });
}

/** The hash key of a request for `hash.key`: source-ip | uri | header:NAME | cookie:NAME | query:NAME. */
export function hashKeyOf(key: string): (req: RequestView) => string | undefined {
  if (key === 'source-ip') return (r) => r.clientAddress;
  if (key === 'uri') return (r) => (r.query === '' ? r.path : r.path + '?' + r.query);
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const name = key.slice(colon + 1);
  if (kind === 'header') {
    const lname = name.toLowerCase();
    return (r) => headerValue(r, lname);
  }
  if (kind === 'cookie') return (r) => cookieOf(r, name);
  if (kind === 'query') return (r) => queryOf(r.query, name);
  throw new Error(`unknown hash key ${key}`);
}
