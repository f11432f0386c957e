import { SEED_KEY, SEED_OFFSET, fmix32, murmur3 } from '../balancer/hash-fn.js';
import type { Server } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import { pinnable, type Persistence } from './persistence.js';
import { locationSessionId, setCookieValue, urlSessionId, type StickyRequest, type StickyResponse } from './request.js';
import type { StickTable } from './stick-table.js';

export interface UrlParamOptions {
  /** The query parameter (`?SID=`) or path parameter (`;jsessionid=`) holding the session id; any case. */
  readonly name: string;
  /** Learn session ids from the server's Set-Cookie and Location; otherwise hash unknown ones. */
  readonly learn: boolean;
}

/**
 * `url-param`: a session id in the URL, `?SID=...` or `;jsessionid=...`. A stick table maps
 * session ids to the server that served them. With `learn: true` the ids are also learnt from
 * the server's responses (a `Set-Cookie` of that name, a `Location` carrying it), so the first
 * request that presents an id already goes to the server that issued it; an unknown id goes to
 * the balancer. With `learn: false` an unknown id is hashed (weighted rendezvous hashing over
 * the available servers), so every node places it alike.
 */
export class UrlParamPersistence implements Persistence {
  readonly type = 'url-param';
  readonly requestHeaders: readonly string[] = [];
  readonly responseHeaders: readonly string[] = [];
  readonly table: StickTable;
  private readonly lname: string;
  private readonly learn: boolean;
  private seedSet: ServerSet | undefined = undefined;
  private seeds: Uint32Array = new Uint32Array(0);

  constructor(options: UrlParamOptions, table: StickTable) {
    this.lname = options.name.toLowerCase();
    this.learn = options.learn;
    this.table = table;
  }

  lookup(req: StickyRequest, set: ServerSet): Server | undefined | Promise<Server | undefined> {
    const sid = urlSessionId(req.path, req.query, this.lname);
    if (sid === undefined) return undefined;
    const v = this.table.get(sid);
    if (v === undefined) return this.unknown(sid, set);
    if (typeof v === 'string') return pinnable(set, v) ?? this.unknown(sid, set);
    return v.then((id) => (id === undefined ? undefined : pinnable(set, id)) ?? this.unknown(sid, set));
  }

  forwardHeaders(): string {
    return '';
  }

  commit(req: StickyRequest, res: StickyResponse | undefined, server: Server, _pinned?: Server, _secure?: boolean): string {
    const sid = urlSessionId(req.path, req.query, this.lname);
    if (sid !== undefined) this.table.set(sid, server.id);
    if (this.learn && res !== undefined) {
      const ln = res.lnames;
      for (let i = 0; i < ln.length; i++) {
        const n = ln[i];
        let learnt: string | undefined;
        if (n === 'set-cookie') learnt = setCookieValue(res.values[i]!, this.lname);
        else if (n === 'location') learnt = locationSessionId(res.values[i]!, this.lname);
        else continue;
        if (learnt !== undefined && learnt !== sid) this.table.set(learnt, server.id);
      }
    }
    return '';
  }

  /** Where an id the table does not know goes: the balancer (learn) or its hash. */
  private unknown(sid: string, set: ServerSet): Server | undefined {
    return this.learn ? undefined : this.hashed(sid, set);
  }

  /** Weighted rendezvous hashing of `sid` over the available servers. */
  hashed(sid: string, set: ServerSet): Server | undefined {
    const servers = set.available;
    if (servers.length === 0) return undefined;
    if (set !== this.seedSet) {
      const seeds = new Uint32Array(servers.length);
      for (let i = 0; i < servers.length; i++) seeds[i] = murmur3(servers[i]!.id, SEED_OFFSET);
      this.seeds = seeds;
      this.seedSet = set;
    }
    const k = murmur3(sid, SEED_KEY);
    let best: Server | undefined;
    let bestScore = -Infinity;
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!;
      if (s.weight <= 0) continue;
      const u = (fmix32((k ^ this.seeds[i]!) >>> 0) + 1) / 4294967297; // in (0, 1)
      const score = -s.weight / Math.log(u);
      if (score > bestScore) {
        bestScore = score;
        best = s;
      }
    }
    return best;
  }
}
