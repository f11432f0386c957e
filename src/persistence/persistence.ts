import type { Server } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import type { StickyRequest, StickyResponse } from './request.js';

export type PersistenceType = 'cookie' | 'source-ip' | 'url-param';

/**
 * Keeps a client on one server (HAProxy's `cookie` and `stick` rules). One instance per
 * pool, built at config load. Used in three steps by whoever forwards a request (the HTTP
 * session; the redirect listener uses `lookup` and `commit` only):
 *
 * 1. `lookup` before the pick: the server the request is pinned to, if it may still take
 *    pinned traffic (up or drain; not down, not maint, not removed). Otherwise the balancer
 *    picks and step 3 pins the client again (redispatch).
 * 2. `forwardHeaders` while the request head is written: the request headers named in
 *    `requestHeaders`, as the server must see them (the inserted cookie stripped, the
 *    prefixed cookie restored).
 * 3. `commit` once the server answered: learns what is to be learnt and returns the header
 *    lines for the client (a Set-Cookie that pins it, the server's own Set-Cookie prefixed).
 *
 * Nothing fails a request: a broken token, an unknown id or a store error all mean "not pinned".
 */
export interface Persistence {
  readonly type: PersistenceType;
  /** Request headers (lower-case) that `forwardHeaders` writes in place of the client's. */
  readonly requestHeaders: readonly string[];
  /** Response headers (lower-case) that `commit` writes in place of the server's. */
  readonly responseHeaders: readonly string[];
  /**
   * The server `req` is pinned to when it accepts pinned traffic, or undefined. A Promise only
   * when a store shared with other nodes has to be asked; it settles within the store timeout and
   * never rejects.
   */
  lookup(req: StickyRequest, set: ServerSet): Server | undefined | Promise<Server | undefined>;
  /** The header lines (each ending in CRLF) forwarded in place of `requestHeaders`; '' for none. */
  forwardHeaders(req: StickyRequest): string;
  /**
   * `server` served `req`. `res` is its response head, or undefined when Portico answered on its
   * behalf (a redirect listener). `pinned` is what `lookup` returned. `secure`: the client
   * connection is TLS. Returns the header lines (each ending in CRLF) to send to the client in
   * place of `responseHeaders`, plus any cookie that pins the client; '' for none.
   */
  commit(req: StickyRequest, res: StickyResponse | undefined, server: Server, pinned: Server | undefined, secure: boolean): string;
}

/** The server with `id` in `set` when it accepts pinned traffic. */
export function pinnable(set: ServerSet, id: string): Server | undefined {
  const s = set.byId.get(id as Server['id']);
  return s !== undefined && set.pinnable.has(s.id) ? s : undefined;
}
