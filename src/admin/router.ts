import type { IncomingMessage, ServerResponse } from 'node:http';

/** HTTP methods an admin route may answer. GET and HEAD are reads; every other method is a mutation. */
export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a handler receives beside the raw request and response. */
export interface AdminContext {
  /** The parsed request URL (path and query). */
  readonly url: URL;
  /** Values of the `{name}` segments of the route pattern, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** Aborted when the client goes away or the admin server stops (long-lived responses: SSE). */
  readonly signal: AbortSignal;
  /** The request body parsed as JSON (`undefined` when empty); throws an AdminError (400/413/415) when it is not JSON. */
  body(): Promise<unknown>;
}

/**
 * A route handler. It either writes the response itself (HTML, Prometheus text, server-sent
 * events) and returns undefined, or returns a value that is sent as JSON with status 200.
 * Throwing an AdminError answers `{"error":{"code","message"}}` with its status.
 */
export type AdminHandler = (req: IncomingMessage, res: ServerResponse, ctx: AdminContext) => unknown;

interface CompiledRoute {
  readonly method: AdminMethod;
  readonly pattern: string;
  /** Literal segments as strings, parameters as `{ param: name }`. */
  readonly segments: readonly (string | { readonly param: string })[];
  readonly handler: AdminHandler;
}

export type RouteMatch =
  | { readonly kind: 'found'; readonly handler: AdminHandler; readonly params: Record<string, string>; readonly method: AdminMethod }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'bad-path' }
  | { readonly kind: 'not-found' };

/**
 * The admin server's table of routes: method + path pattern (`/api/v1/pools/{pool}`) → handler.
 * Patterns are split once when registered; a match walks segments with no regex.
 */
export class AdminRouter {
  private readonly routes: CompiledRoute[] = [];

  /** Register a handler. A second registration of the same method and pattern is an error. */
  route(method: AdminMethod, pattern: string, handler: AdminHandler): void {
    if (!pattern.startsWith('/')) throw new Error(`admin route ${pattern}: a pattern starts with /`);
    const segments = split(pattern).map((s) => {
      if (s.startsWith('{') && s.endsWith('}') && s.length > 2) return { param: s.slice(1, -1) };
      if (s.includes('{') || s.includes('}')) throw new Error(`admin route ${pattern}: a parameter is a whole segment`);
      return s;
    });
    const key = segments.map((s) => (typeof s === 'string' ? s : '{}')).join('/');
    for (const r of this.routes) {
      if (r.method === method && r.segments.map((s) => (typeof s === 'string' ? s : '{}')).join('/') === key) {
        throw new Error(`admin route ${method} ${pattern} is already registered (as ${r.pattern})`);
      }
    }
    this.routes.push({ method, pattern, segments, handler });
  }

  /**
   * Put `wrap(handler)` in place of the handler registered for this method and pattern (the same
   * pattern text); returns the handler it replaced, undefined (and changes nothing) when none is.
   */
  wrap(method: AdminMethod, pattern: string, wrap: (handler: AdminHandler) => AdminHandler): AdminHandler | undefined {
    const i = this.routes.findIndex((r) => r.method === method && r.pattern === pattern);
    if (i < 0) return undefined;
    const r = this.routes[i]!;
    this.routes[i] = { ...r, handler: wrap(r.handler) };
    return r.handler;
  }

  /** The registered routes, as `METHOD pattern` (for the API index and tests). */
  list(): string[] {
    return this.routes.map((r) => `${r.method} ${r.pattern}`);
  }

  /** Find the handler for a method and a (still percent-encoded) path. HEAD is answered by GET routes. */
  match(method: string, path: string): RouteMatch {
    const parts = split(path);
    const want = method === 'HEAD' ? 'GET' : method;
    const allow = new Set<string>();
    let found: { route: CompiledRoute; params: Record<string, string> } | undefined;
    for (const r of this.routes) {
      const params = matchSegments(r.segments, parts);
      if (params === undefined) continue;
      if (params === BAD) return { kind: 'bad-path' };
      allow.add(r.method);
      if (r.method === 'GET') allow.add('HEAD');
      if (found === undefined && r.method === want) found = { route: r, params };
    }
    if (found !== undefined) return { kind: 'found', handler: found.route.handler, params: found.params, method: found.route.method };
    if (allow.size > 0) return { kind: 'method-not-allowed', allow: [...allow].sort() };
    return { kind: 'not-found' };
  }
}

const BAD: Record<string, string> = Object.freeze({}) as Record<string, string>;

function matchSegments(segments: CompiledRoute['segments'], parts: readonly string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const p = parts[i]!;
    if (typeof s === 'string') {
      if (s !== p) return undefined;
      continue;
    }
    try {
      params[s.param] = decodeURIComponent(p);
    } catch {
      return BAD;
    }
  }
  return params;
}

/** `/a/b/` → ['a', 'b']; `/` → []. */
function split(path: string): string[] {
  const out: string[] = [];
  for (const s of path.split('/')) if (s !== '') out.push(s);
  return out;
}
