/**
 * The shared-cache rules of RFC 9111, on top of `http-cache-semantics` (which computes freshness
 * lifetimes, ages and the merge of a 304), with Portico's stricter choices (SPEC §11):
 * - only GET responses are stored (HEAD is answered from a stored GET);
 * - a response with `Set-Cookie` is never stored, nor one with `Vary: *`;
 * - a request with `Authorization` only where `public`, `s-maxage` or `must-revalidate` allows;
 * - `must-revalidate` forbids serving stale (RFC 9111 §5.2.2.2), but a fresh object is served;
 * - stale content is served only with the response's permission (`stale-while-revalidate`,
 *   `stale-if-error`, RFC 5861), never past `must-revalidate` or `proxy-revalidate`.
 * Header names are lower case throughout; multi-valued fields are joined with ", ".
 */
import CachePolicy from 'http-cache-semantics';
import { parseVary } from './key.js';

export type Fields = Record<string, string>;

export interface RequestHead {
  method: string;
  /** The target (path and query). */
  url: string;
  headers: Fields;
}

export interface ResponseHead {
  status: number;
  headers: Fields;
}

/** Why a response was not stored (the `uncacheable` reasons; also in Cache-Status `detail`). */
export type NotStored =
  | 'method'
  | 'status'
  | 'no-store'
  | 'private'
  | 'authorization'
  | 'set-cookie'
  | 'vary-star'
  | 'no-freshness'
  | 'range';

/** Time source of the policies, in wall-clock milliseconds (the HTTP dates are wall-clock). */
export type WallClock = () => number;

class PorticoPolicy extends CachePolicy {
  static clock: WallClock = Date.now;
  now(): number {
    return PorticoPolicy.clock();
  }
}

/** The wall clock the policies read, in ms (the `Date` they give an answer is this one's). */
export function policyNow(): number {
  return PorticoPolicy.clock();
}

/** For tests: the wall clock the policies read. */
export function setPolicyClock(clock: WallClock): void {
  PorticoPolicy.clock = clock;
}

export interface Directives {
  [name: string]: string | true;
}

/** No directive (a request without Cache-Control), shared. */
const NO_DIRECTIVES: Directives = Object.freeze({}) as Directives;

/** Cache-Control directives (RFC 9111 §5.2): names lower case, `name=value` unquoted. */
export function parseCacheControl(value: string | undefined): Directives {
  const out: Directives = {};
  if (value === undefined) return out;
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    if (eq < 0) {
      out[name] = true;
      continue;
    }
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    out[name] = v;
  }
  return out;
}

function seconds(d: Directives, name: string): number {
  const v = d[name];
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return 0;
  return Number(v);
}

/** A stored response's rules: freshness, age, and what may be served when. */
export class StoredPolicy {
  /** lifetime(), once computed (-1 before). */
  private life = -1;
  private constructor(
    private readonly policy: CachePolicy,
    private readonly rescc: Directives,
  ) {}

  static fromResponse(req: RequestHead, res: ResponseHead): StoredPolicy {
    return new StoredPolicy(new PorticoPolicy(req, res, { shared: true }), parseCacheControl(res.headers['cache-control']));
  }

  /** For the shared tier: a plain object to store, and back. */
  toObject(): object {
    return this.policy.toObject();
  }
  static fromObject(o: object): StoredPolicy {
    const p = PorticoPolicy.fromObject(o as CachePolicy.CachePolicyObject);
    return new StoredPolicy(p, parseCacheControl((p as unknown as { _resHeaders: Fields })._resHeaders['cache-control']));
  }

  /** Current age in seconds (RFC 9111 §4.2.3), whole seconds as the Age header carries it. */
  age(): number {
    return Math.max(0, Math.floor(this.policy.age()));
  }

  /** Freshness lifetime in seconds (§4.2.1), heuristic where the RFC allows it; fixed by the stored head, so computed once. */
  lifetime(): number {
    if (this.life < 0) this.life = this.policy.maxAge();
    return this.life;
  }

  isStale(): boolean {
    return this.policy.stale();
  }

  /** The response forbids serving it stale (`must-revalidate`, `proxy-revalidate`, or `no-cache`). */
  private forbidsStale(): boolean {
    return this.rescc['must-revalidate'] === true || this.rescc['proxy-revalidate'] === true || this.rescc['no-cache'] !== undefined;
  }

  /**
   * How a request may use this stored response:
   * - `fresh`: answer from the cache;
   * - `stale-while-revalidate`: answer from the cache and refresh it in the background;
   * - `revalidate`: ask the server with validators (or fetch anew when there are none) first.
   */
  evaluate(req: RequestHead): 'fresh' | 'stale-while-revalidate' | 'revalidate' {
    const cc = req.headers['cache-control'];
    const reqcc = cc === undefined ? NO_DIRECTIVES : parseCacheControl(cc);
    const pragma = req.headers['pragma'];
    if (reqcc['no-cache'] !== undefined || (cc === undefined && pragma !== undefined && /no-cache/i.test(pragma))) {
      return 'revalidate';
    }
    const age = this.policy.age();
    const lifetime = this.lifetime();
    if (reqcc['max-age'] !== undefined && age > seconds(reqcc, 'max-age')) return 'revalidate';
    if (reqcc['min-fresh'] !== undefined && lifetime - age < seconds(reqcc, 'min-fresh')) return 'revalidate';
    if (lifetime > age) return 'fresh';
    if (this.forbidsStale()) return 'revalidate';
    const maxStale = reqcc['max-stale'];
    if (maxStale === true || (maxStale !== undefined && seconds(reqcc, 'max-stale') > age - lifetime)) return 'fresh';
    const swr = seconds(this.rescc, 'stale-while-revalidate');
    if (swr > 0 && lifetime + swr > age) return 'stale-while-revalidate';
    return 'revalidate';
  }

  /** `stale-if-error` (RFC 5861 §4) lets this stale response answer when the server failed. */
  staleIfError(): boolean {
    if (this.forbidsStale()) return false;
    const sie = seconds(this.rescc, 'stale-if-error');
    return sie > 0 && this.lifetime() + sie > this.policy.age();
  }

  /**
   * Milliseconds from now during which this object may still answer a request: its remaining
   * freshness, then the longest of its stale allowances (stale-while-revalidate, stale-if-error)
   * and, when it has a validator to be revalidated with, `keepMs`. 0 when it is of no more use.
   */
  usableFor(keepMs: number): number {
    const left = (this.lifetime() - this.policy.age()) * 1000;
    let after = this.hasValidator() ? keepMs : 0;
    if (!this.forbidsStale()) after = Math.max(after, seconds(this.rescc, 'stale-while-revalidate') * 1000, seconds(this.rescc, 'stale-if-error') * 1000);
    // Past its freshness already: the allowances run from when it expired.
    const ms = left + after;
    return ms > 0 ? ms : 0;
  }

  /** Validators for a revalidation request: the stored ETag and Last-Modified (§4.3.1). */
  validators(): Fields {
    const res = this.storedHeaders();
    const out: Fields = {};
    if (res['etag'] !== undefined) out['if-none-match'] = res['etag'];
    if (res['last-modified'] !== undefined) out['if-modified-since'] = res['last-modified'];
    return out;
  }

  hasValidator(): boolean {
    const res = this.storedHeaders();
    return res['etag'] !== undefined || res['last-modified'] !== undefined;
  }

  /** The stored response's header fields (as received, hop-by-hop ones included). */
  storedHeaders(): Fields {
    return (this.policy as unknown as { _resHeaders: Fields })._resHeaders;
  }

  /** The header fields to answer with: hop-by-hop removed, `Age` current (§4.2.3). */
  responseHeaders(): Fields {
    const h = this.policy.responseHeaders() as Fields;
    h['age'] = String(this.age());
    delete h['warning'];
    return h;
  }

  status(): number {
    return (this.policy as unknown as { _status: number })._status;
  }

  /**
   * A 304 (or another answer to a revalidation) for this stored response: the refreshed policy
   * (§4.3.4: the 304's fields replace the stored ones) and whether the stored body still holds.
   */
  revalidated(req: RequestHead, res: ResponseHead): { policy: StoredPolicy; modified: boolean } {
    const r = this.policy.revalidatedPolicy(req, res);
    const p = r.policy as CachePolicy;
    return {
      policy: new StoredPolicy(p, parseCacheControl((p as unknown as { _resHeaders: Fields })._resHeaders['cache-control'])),
      modified: r.modified,
    };
  }
}

/** Statuses Portico stores (RFC 9111 §3: understood, final, not partial). */
const STORABLE_STATUS = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501, 302, 307]);

/**
 * Whether a response to a request may be stored, and if so its policy. The reasons are checked in
 * the order an operator reads them: the request first, then the response's own directives.
 */
export function storeDecision(req: RequestHead, res: ResponseHead): { policy: StoredPolicy } | { notStored: NotStored } {
  if (req.method !== 'GET') return { notStored: 'method' };
  if (req.headers['range'] !== undefined && res.status !== 200) return { notStored: 'range' };
  if (!STORABLE_STATUS.has(res.status)) return { notStored: 'status' };
  const reqcc = parseCacheControl(req.headers['cache-control']);
  const rescc = parseCacheControl(res.headers['cache-control']);
  if (reqcc['no-store'] !== undefined || rescc['no-store'] !== undefined) return { notStored: 'no-store' };
  if (rescc['private'] !== undefined) return { notStored: 'private' };
  if (res.headers['set-cookie'] !== undefined) return { notStored: 'set-cookie' };
  if (parseVary(res.headers['vary'])[0] === '*') return { notStored: 'vary-star' };
  if (
    req.headers['authorization'] !== undefined &&
    rescc['public'] === undefined &&
    rescc['s-maxage'] === undefined &&
    rescc['must-revalidate'] === undefined
  ) {
    return { notStored: 'authorization' };
  }
  const policy = StoredPolicy.fromResponse(req, res);
  // Storable but never usable: no explicit or heuristic freshness and no validator to revalidate with.
  if (policy.lifetime() <= 0 && !policy.hasValidator() && rescc['no-cache'] === undefined) return { notStored: 'no-freshness' };
  if (rescc['no-cache'] !== undefined && !policy.hasValidator()) return { notStored: 'no-freshness' };
  return { policy };
}

/**
 * RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the stored responses for the
 * target and for the `Location` / `Content-Location` of the answer (same host only). Returns the
 * targets to purge (paths with query), or none.
 */
export function invalidatedTargets(method: string, status: number, target: string, res: Fields, host: string): string[] {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE') return [];
  if (status < 200 || status >= 400) return [];
  const out = [target];
  for (const name of ['location', 'content-location']) {
    const v = res[name];
    if (v === undefined) continue;
    const t = sameHostTarget(v, host);
    if (t !== undefined && !out.includes(t)) out.push(t);
  }
  return out;
}

function sameHostTarget(ref: string, host: string): string | undefined {
  if (ref.startsWith('/') && !ref.startsWith('//')) return ref;
  try {
    const u = new URL(ref);
    if (u.host.toLowerCase() !== host.toLowerCase()) return undefined;
    return u.pathname + u.search;
  } catch {
    return undefined;
  }
}
