import type { Server } from '../../../core/server.js';
import type { Persistence } from '../../../persistence/persistence.js';
import type { Exchange } from '../exchange.js';
import type { ResponseHead } from '../parse-response.js';
import type { HttpPhase } from '../phases.js';

/**
 * The pool's persistence in its three steps (persistence.ts): `lookup` on the request pins it
 * (a promise when a shared store is asked: the exchange waits for it), `forwardHeaders` writes the
 * headers it rewrites toward the server, `commit` those toward the client once the server answered.
 */
export class PersistencePhase implements HttpPhase {
  readonly name = 'persistence';
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
  constructor(readonly persistence: Persistence) {
    this.requestHeaders = persistence.requestHeaders;
    this.responseHeaders = persistence.responseHeaders;
  }

  onRequest(ex: Exchange): Promise<Server | undefined> | undefined {
    const pin = this.persistence.lookup(ex, ex.poolHandle!.pool.current.set);
    if (pin instanceof Promise) return pin; // a shared store: it settles within its timeout and never rejects
    ex.pinned = pin;
    return undefined;
  }

  onResume(ex: Exchange, value: unknown): undefined {
    ex.pinned = value as Server | undefined;
    return undefined;
  }

  upstreamHead(ex: Exchange): string {
    return this.persistence.forwardHeaders(ex);
  }

  onResponseHead(ex: Exchange, res: ResponseHead): string {
    return this.persistence.commit(ex, res, ex.picked!, ex.pinned, ex.scheme === 'https');
  }
}
