/**
 * Encoded responses kept for reuse, so that a repeated question costs a map lookup and a copy
 * instead of a decode, a lookup and an encode.
 *
 * The key is the transport and every byte of the query after its 12-byte header (question and
 * additional section, so EDNS size and Client Subnet are part of it). A response whose answer
 * rotates over a pool is kept once per rotation step ("variant"), tagged with the version of
 * the pool's server set: when health or admin state changes the set, the version moves and the
 * entry is rebuilt. An answer that depends on where the client is, found from its source address,
 * is kept per client region. Answers drawn at random (policy weighted) are not kept.
 */

/** Something whose answers rotate: a pool-backed record set. */
export interface Rotor {
  /** Version of the server set the answer is drawn from now. */
  readonly version: number;
  /** The rotation cursor the next answer will use. */
  peek(): number;
  /** Take the cursor for one answer (returns it) and move on. */
  advance(): number;
}

export interface CacheEntry {
  /** Look up `key + '\0' + region` instead: the answer depends on the client's region. */
  readonly byRegion: boolean;
  readonly rotor: Rotor | undefined;
  readonly version: number;
  /** Number of distinct rotations (1 when the answer does not rotate). */
  readonly modulus: number;
  readonly variants: (Buffer | undefined)[];
  readonly zone: string;
  readonly rcode: string;
  readonly truncated: boolean;
}

/** Most entries kept; when full the cache starts over (a flood of distinct names only costs the slow path). */
const MAX_ENTRIES = 20_000;
/** Queries longer than this are not cached (keys stay small). */
export const MAX_KEYED_QUERY = 512;

export class AnswerCache {
  private readonly map = new Map<string, CacheEntry>();
  hits = 0;
  misses = 0;

  get size(): number {
    return this.map.size;
  }

  get(key: string): CacheEntry | undefined {
    return this.map.get(key);
  }

  /** A cached response for `key` (and the client region when the entry asks for it), or undefined. */
  lookup(key: string, region: () => string): { entry: CacheEntry; response: Buffer } | undefined {
    let e = this.map.get(key);
    if (e !== undefined && e.byRegion) e = this.map.get(`${key}\u0000${region()}`);
    if (e === undefined) return undefined;
    let index = 0;
    const rotor = e.rotor;
    if (rotor !== undefined) {
      if (rotor.version !== e.version) return undefined;
      index = rotor.peek() % e.modulus;
    }
    const response = e.variants[index];
    if (response === undefined) return undefined;
    if (e.modulus > 1) rotor!.advance();
    return { entry: e, response };
  }

  /** Keep `response`, built with rotation `cursor`. */
  store(
    key: string,
    region: string | undefined,
    rotor: Rotor | undefined,
    version: number,
    modulus: number,
    cursor: number,
    response: Buffer,
    outcome: { zone: string; rcode: string; truncated: boolean },
  ): void {
    if (this.map.size >= MAX_ENTRIES) this.map.clear();
    if (region !== undefined) {
      if (this.map.get(key)?.byRegion !== true) this.map.set(key, REGION_MARK);
      key = `${key}\u0000${region}`;
    }
    let e = this.map.get(key);
    if (e === undefined || e.byRegion || e.rotor !== rotor || e.version !== version || e.modulus !== modulus) {
      e = { byRegion: false, rotor, version, modulus, variants: new Array<Buffer | undefined>(modulus), zone: outcome.zone, rcode: outcome.rcode, truncated: outcome.truncated };
      this.map.set(key, e);
    }
    e.variants[cursor % modulus] = response;
  }
}

const REGION_MARK: CacheEntry = Object.freeze({
  byRegion: true,
  rotor: undefined,
  version: 0,
  modulus: 1,
  variants: [],
  zone: '',
  rcode: '',
  truncated: false,
});
