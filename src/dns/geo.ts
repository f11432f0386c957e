/**
 * Where a DNS client is: client networks mapped to regions (longest prefix wins), the
 * fallback order of each region (policy geo) and the proximity table (policy nearest).
 * Pure: no I/O, built once per configuration.
 */
import { cidrContains, parseCidr, parseIp, type Cidr, type Ip128 } from '../core/cidr.js';
import type { Server } from '../core/server.js';

export interface GeoSettings {
  /** Region → client networks. */
  readonly regions: Readonly<Record<string, readonly string[]>>;
  /** Region → regions to try, in order, when it has no available server. */
  readonly fallback: Readonly<Record<string, readonly string[]>>;
  /** Region of clients that match no network. */
  readonly default?: string | undefined;
  /** Client region → server region → distance. */
  readonly proximity: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** The region of a client and how many leading bits of its address decided it (ECS scope). */
export interface ClientLocation {
  readonly region: string | undefined;
  readonly prefixBits: number;
}

const NOWHERE: ClientLocation = Object.freeze({ region: undefined, prefixBits: 0 });

interface Block {
  readonly cidr: Cidr;
  readonly region: string;
  /** Prefix length in the address's own family (for the ECS scope). */
  readonly familyBits: number;
}

export class GeoMap {
  private readonly blocks: readonly Block[];
  private readonly fallbacks: ReadonlyMap<string, readonly string[]>;
  private readonly proximity: ReadonlyMap<string, ReadonlyMap<string, number>>;
  private readonly defaultRegion: string | undefined;
  private readonly cache = new Map<string, ClientLocation>();

  constructor(settings: GeoSettings) {
    const blocks: Block[] = [];
    for (const [region, list] of Object.entries(settings.regions)) {
      for (const text of list) {
        const cidr = parseCidr(text);
        if (cidr === undefined) throw new Error(`geo.regions.${region}: invalid CIDR ${text}`);
        blocks.push({ cidr, region, familyBits: text.includes(':') ? cidr.bits : cidr.bits - 96 });
      }
    }
    // Longest prefix first, so the first match is the most specific.
    blocks.sort((a, b) => b.cidr.bits - a.cidr.bits);
    this.blocks = blocks;
    this.fallbacks = new Map(Object.entries(settings.fallback).map(([k, v]) => [k, Object.freeze([...v])]));
    this.proximity = new Map(Object.entries(settings.proximity).map(([k, row]) => [k, new Map(Object.entries(row))]));
    this.defaultRegion = settings.default;
  }

  get isEmpty(): boolean {
    return this.blocks.length === 0 && this.defaultRegion === undefined;
  }

  /** The region of an address given as text (the client's own address). */
  locate(address: string): ClientLocation {
    const hit = this.cache.get(address);
    if (hit !== undefined) return hit;
    const ip = parseIp(address);
    const loc = ip === undefined ? this.unmatched() : this.locateIp(ip);
    if (this.cache.size >= 10_000) this.cache.clear();
    this.cache.set(address, loc);
    return loc;
  }

  /** The region of an address; with ECS, `sourceBits` bounds how much of it the client gave. */
  locateIp(ip: Ip128, sourceBits = 128): ClientLocation {
    for (const b of this.blocks) {
      if (b.cidr.bits <= sourceBits && cidrContains(b.cidr, ip)) return { region: b.region, prefixBits: b.familyBits };
    }
    return this.unmatched();
  }

  private unmatched(): ClientLocation {
    return this.defaultRegion === undefined ? NOWHERE : { region: this.defaultRegion, prefixBits: 0 };
  }

  /** `region` followed by its fallback regions. */
  order(region: string): readonly string[] {
    return [region, ...(this.fallbacks.get(region) ?? [])];
  }

  /** Distance from a client region to a server (its region or site, the nearer); undefined when unknown. */
  distance(clientRegion: string, server: Server): number | undefined {
    const row = this.proximity.get(clientRegion);
    if (row === undefined) return undefined;
    const r = server.meta['region'];
    const s = server.meta['site'];
    const dr = r === undefined ? undefined : row.get(r);
    const ds = s === undefined ? undefined : row.get(s);
    if (dr === undefined) return ds;
    if (ds === undefined) return dr;
    return Math.min(dr, ds);
  }

  hasProximity(clientRegion: string): boolean {
    return this.proximity.has(clientRegion);
  }
}

/** A server is in region R when its `region` or its `site` is R. */
export function serverIn(server: Server, region: string): boolean {
  return server.meta['region'] === region || server.meta['site'] === region;
}
