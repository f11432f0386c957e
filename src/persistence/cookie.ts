import type { Server, ServerId } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import type { Persistence } from './persistence.js';
import { cookieValue, type StickyRequest, type StickyResponse } from './request.js';
import { TOKEN_LENGTH, type ServerTokens } from './tokens.js';

export interface CookieOptions {
  /** insert: the cookie Portico sets; prefix: the application's cookie that carries the token. */
  readonly name: string;
  /** Max-Age of the inserted cookie in ms; undefined = a session cookie. */
  readonly maxAgeMs?: number | undefined;
  readonly domain?: string | undefined;
}

const BASE64URL = (() => {
  const t = new Uint8Array(128);
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') t[c.charCodeAt(0)] = 1;
  return t;
})();

/** `v` starts with a well-formed token followed by `~` (prefix mode). */
function hasTokenPrefix(v: string): boolean {
  if (v.length <= TOKEN_LENGTH || v.charCodeAt(TOKEN_LENGTH) !== 126 /* ~ */) return false;
  for (let i = 0; i < TOKEN_LENGTH; i++) {
    const c = v.charCodeAt(i);
    if (c >= 128 || BASE64URL[c] === 0) return false;
  }
  return true;
}

/**
 * Rewrite the pair `name=value` of a Cookie header value: `edit(value)` returns the new value, or
 * undefined to drop the pair. Returns `v` itself when there is no such pair.
 */
function rewriteCookiePair(v: string, name: string, edit: (value: string) => string | undefined): string {
  if (v.indexOf(name) < 0) return v;
  let out = '';
  let changed = false;
  let at = 0;
  const n = v.length;
  while (at < n) {
    let end = v.indexOf(';', at);
    if (end < 0) end = n;
    let s = at;
    while (s < end && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9)) s++;
    let e = end;
    while (e > s && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9)) e--;
    if (e > s) {
      let pair = v.slice(s, e);
      if (pair.startsWith(name) && pair.charCodeAt(name.length) === 61 /* = */) {
        const nv = edit(pair.slice(name.length + 1));
        changed = true;
        if (nv === undefined) {
          at = end + 1;
          continue;
        }
        pair = name + '=' + nv;
      }
      out = out === '' ? pair : out + '; ' + pair;
    }
    at = end + 1;
  }
  return changed ? out : v;
}

const drop = (): undefined => undefined;
const unprefix = (value: string): string => (hasTokenPrefix(value) ? value.slice(TOKEN_LENGTH + 1) : value);

/** Every Cookie header of the request, rewritten by `edit` for pair `name`, as one Cookie line ('' when empty). */
function forwardCookies(req: StickyRequest, name: string, edit: (value: string) => string | undefined): string {
  let out = '';
  const ln = req.lnames;
  for (let i = 0; i < ln.length; i++) {
    if (ln[i] !== 'cookie') continue;
    const v = rewriteCookiePair(req.values[i]!, name, edit);
    if (v !== '') out = out === '' ? v : out + '; ' + v;
  }
  return out === '' ? '' : 'Cookie: ' + out + '\r\n';
}

/**
 * `cookie`, `mode: insert`: Portico sets its own cookie whose value is the server's token
 * (HttpOnly, SameSite=Lax, Secure on TLS connections), and strips it from every request
 * before the server sees it. A client is (re)pinned whenever the server that answered is
 * not the one its cookie names.
 */
export class CookieInsertPersistence implements Persistence {
  readonly type = 'cookie';
  readonly requestHeaders: readonly string[] = ['cookie'];
  readonly responseHeaders: readonly string[] = [];
  private readonly name: string;
  private readonly attrs: string;
  private readonly tokens: ServerTokens;
  private readonly lines = new Map<ServerId, string>();
  private readonly secureLines = new Map<ServerId, string>();

  constructor(options: CookieOptions, tokens: ServerTokens) {
    this.name = options.name;
    this.tokens = tokens;
    let a = '; Path=/; HttpOnly; SameSite=Lax';
    if (options.maxAgeMs !== undefined) a += '; Max-Age=' + Math.floor(options.maxAgeMs / 1000);
    if (options.domain !== undefined) a += '; Domain=' + options.domain;
    this.attrs = a;
  }

  lookup(req: StickyRequest, set: ServerSet): Server | undefined {
    const v = cookieValue(req, this.name);
    if (v === undefined) return undefined;
    const s = this.tokens.serverFor(v, set);
    return s !== undefined && set.pinnable.has(s.id) ? s : undefined;
  }

  forwardHeaders(req: StickyRequest): string {
    return forwardCookies(req, this.name, drop);
  }

  commit(_req: StickyRequest, _res: StickyResponse | undefined, server: Server, pinned: Server | undefined, secure: boolean): string {
    if (pinned !== undefined && pinned.id === server.id) return '';
    const cache = secure ? this.secureLines : this.lines;
    let line = cache.get(server.id);
    if (line === undefined) {
      line = 'Set-Cookie: ' + this.name + '=' + this.tokens.tokenOf(server.id) + this.attrs + (secure ? '; Secure' : '') + '\r\n';
      if (cache.size > 100_000) cache.clear();
      cache.set(server.id, line);
    }
    return line;
  }
}

/**
 * `cookie`, `mode: prefix`: the application's own session cookie (as `JSESSIONID`) carries the
 * token: `Set-Cookie: JSESSIONID=abc` from the server reaches the client as
 * `JSESSIONID=<token>~abc`, and the server gets `JSESSIONID=abc` back (HAProxy's
 * `cookie JSESSIONID prefix`). No cookie of Portico's own is set.
 */
export class CookiePrefixPersistence implements Persistence {
  readonly type = 'cookie';
  readonly requestHeaders: readonly string[] = ['cookie'];
  readonly responseHeaders: readonly string[] = ['set-cookie'];
  private readonly name: string;
  private readonly tokens: ServerTokens;

  constructor(options: CookieOptions, tokens: ServerTokens) {
    this.name = options.name;
    this.tokens = tokens;
  }

  lookup(req: StickyRequest, set: ServerSet): Server | undefined {
    const v = cookieValue(req, this.name);
    if (v === undefined || !hasTokenPrefix(v)) return undefined;
    const s = this.tokens.serverFor(v.slice(0, TOKEN_LENGTH), set);
    return s !== undefined && set.pinnable.has(s.id) ? s : undefined;
  }

  forwardHeaders(req: StickyRequest): string {
    return forwardCookies(req, this.name, unprefix);
  }

  commit(_req: StickyRequest, res: StickyResponse | undefined, server: Server, _pinned?: Server, _secure?: boolean): string {
    if (res === undefined) return '';
    let out = '';
    const ln = res.lnames;
    const name = this.name;
    for (let i = 0; i < ln.length; i++) {
      if (ln[i] !== 'set-cookie') continue;
      const v = res.values[i]!;
      if (v.startsWith(name) && v.charCodeAt(name.length) === 61 /* = */) {
        const rest = v.slice(name.length + 1);
        const empty = rest === '' || rest.charCodeAt(0) === 59; /* ; : a deletion */
        out += 'Set-Cookie: ' + name + '=' + (empty ? '' : this.tokens.tokenOf(server.id) + '~') + rest + '\r\n';
      } else {
        out += 'Set-Cookie: ' + v + '\r\n';
      }
    }
    return out;
  }
}
