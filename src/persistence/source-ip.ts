import type { Server } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import { pinnable, type Persistence } from './persistence.js';
import type { StickyRequest, StickyResponse } from './request.js';
import type { StickTable } from './stick-table.js';

/**
 * `source-ip`: a stick table from the client address to the server that last served it
 * (HAProxy's `stick on src`), with an idle TTL and a size bound.
 */
export class SourceIpPersistence implements Persistence {
  readonly type = 'source-ip';
  readonly requestHeaders: readonly string[] = [];
  readonly responseHeaders: readonly string[] = [];
  readonly table: StickTable;

  constructor(table: StickTable) {
    this.table = table;
  }

  lookup(req: StickyRequest, set: ServerSet): Server | undefined | Promise<Server | undefined> {
    const v = this.table.get(req.clientAddress);
    if (v === undefined) return undefined;
    if (typeof v === 'string') return pinnable(set, v);
    return v.then((id) => (id === undefined ? undefined : pinnable(set, id)));
  }

  forwardHeaders(): string {
    return '';
  }

  commit(req: StickyRequest, _res: StickyResponse | undefined, server: Server, _pinned?: Server, _secure?: boolean): string {
    this.table.set(req.clientAddress, server.id);
    return '';
  }
}
