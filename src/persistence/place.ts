import type { Server } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import type { Persistence } from './persistence.js';
import type { StickyRequest } from './request.js';

/** Where a request goes and the header lines (each ending in CRLF) that pin the client there. */
export interface Placement {
  readonly server: Server | undefined;
  /** '' when there is nothing to send (already pinned there, or no server). */
  readonly headers: string;
}

/**
 * Sticky placement for a listener that answers each request itself and never forwards it (the
 * redirect listener): the server the request is pinned to, otherwise `pick()`, plus what
 * `commit` returns for that server, to be added to the answer. Synchronous, except when the
 * lookup has to ask a shared store; then a Promise that never rejects.
 */
export function placeSticky(
  persistence: Persistence,
  req: StickyRequest,
  set: ServerSet,
  pick: () => Server | undefined,
  secure: boolean,
): Placement | Promise<Placement> {
  const pin = persistence.lookup(req, set);
  if (pin instanceof Promise) return pin.then((p) => place(persistence, req, p, pick, secure));
  return place(persistence, req, pin, pick, secure);
}

function place(persistence: Persistence, req: StickyRequest, pinned: Server | undefined, pick: () => Server | undefined, secure: boolean): Placement {
  const server = pinned ?? pick();
  return { server, headers: server === undefined ? '' : persistence.commit(req, undefined, server, pinned, secure) };
}
