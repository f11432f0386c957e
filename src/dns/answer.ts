/**
 * DNS answers from a pool: which servers an A, AAAA or SRV answer holds, in which order.
 *
 * Pure. The lists taken from a ServerSet are frozen and shared; every answer is a new array
 * (rotated from a copy, as CoreDNS does), so nothing shared is ever mutated. The caller keeps
 * the rotation cursor and passes it in.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Rng } from '../core/rng.js';
import type { Server } from '../core/server.js';
import type { ServerSet } from '../core/server-set.js';
import { serverIn, type ClientLocation, type GeoMap } from './geo.js';

export type DnsPolicy = 'roundrobin' | 'weighted' | 'all' | 'first' | 'geo' | 'nearest';
export type PoolRecordType = 'A' | 'AAAA' | 'SRV';

/** A server as an answer gives it: the server and the address its A/AAAA record holds. */
export interface AnswerTarget {
  readonly server: Server;
  /** IP address for A/AAAA; for SRV the address of the target's glue, or undefined when the target is the server's host name. */
  readonly address: string | undefined;
}

/** The servers a record can answer with, fixed per ServerSet version (precomputed on change, not per query). */
export interface PreparedTargets {
  readonly version: number;
  /** Available servers that have an address of the record's family, in configuration order. */
  readonly available: readonly AnswerTarget[];
  /** Every server not in maint with such an address: the `fallback: all` answer when none is available. */
  readonly all: readonly AnswerTarget[];
}

/** The address DNS gives for a server: `dnsAddress`, else the host of its address when that is an IP. */
export function dnsAddressOf(server: Server): string | undefined {
  const a = server.meta['dnsAddress'];
  if (a !== undefined) return a;
  return isIPv4(server.host) || isIPv6(server.host) ? server.host : undefined;
}

/** The target of a server for `type`, or undefined when the server cannot be in such an answer. */
export function targetOf(server: Server, type: PoolRecordType): AnswerTarget | undefined {
  const address = dnsAddressOf(server);
  switch (type) {
    case 'A':
      return address !== undefined && isIPv4(address) ? { server, address } : undefined;
    case 'AAAA':
      return address !== undefined && isIPv6(address) ? { server, address } : undefined;
    case 'SRV':
      return { server, address };
  }
}

/** The candidate lists of one record for one ServerSet. */
export function prepareTargets(set: ServerSet, type: PoolRecordType): PreparedTargets {
  const available: AnswerTarget[] = [];
  for (const s of set.available) {
    const t = targetOf(s, type);
    if (t !== undefined) available.push(t);
  }
  const all: AnswerTarget[] = [];
  for (const s of set.all) {
    if (set.status.get(s.id)?.admin === 'maint') continue;
    const t = targetOf(s, type);
    if (t !== undefined) all.push(t);
  }
  return { version: set.version, available: Object.freeze(available), all: Object.freeze(all) };
}

export interface ChooseOptions {
  readonly policy: DnsPolicy;
  /** Most targets in the answer; 0 = every chosen target. */
  readonly answers: number;
  /** Rotation offset (roundrobin, geo, nearest); the caller advances it per query. */
  readonly cursor: number;
  readonly rng: Rng;
  /** Where the client is (geo, nearest). */
  readonly location: ClientLocation;
  readonly geo: GeoMap | undefined;
  /**
   * Told how many distinct answers the rotation gives (the answer depends on `cursor` modulo it):
   * 1 when it does not rotate, 0 when the answer is drawn at random. For caching encoded answers.
   */
  readonly report?: { modulus: number } | undefined;
}

/** The targets of one answer, a new array. */
export function chooseTargets(candidates: readonly AnswerTarget[], o: ChooseOptions): AnswerTarget[] {
  const n = candidates.length;
  const report = o.report;
  if (report !== undefined) report.modulus = 1;
  if (n === 0) return [];
  const limit = o.answers > 0 && o.answers < n ? o.answers : n;
  const rotate = (list: readonly AnswerTarget[], count: number): AnswerTarget[] => {
    if (report !== undefined) report.modulus = list.length;
    return rotated(list, o.cursor, count);
  };
  switch (o.policy) {
    case 'roundrobin':
      return rotate(candidates, limit);
    case 'all':
      return candidates.slice(0, limit);
    case 'first':
      return candidates.slice(0, o.answers > 0 ? limit : 1);
    case 'weighted':
      if (report !== undefined) report.modulus = 0;
      return weightedSample(candidates, limit, o.rng);
    case 'geo': {
      const region = o.location.region;
      if (region !== undefined && o.geo !== undefined) {
        for (const r of o.geo.order(region)) {
          const inRegion = candidates.filter((t) => serverIn(t.server, r));
          if (inRegion.length > 0) return rotate(inRegion, o.answers > 0 ? Math.min(o.answers, inRegion.length) : inRegion.length);
        }
      }
      return rotate(candidates, limit);
    }
    case 'nearest': {
      const region = o.location.region;
      if (region !== undefined && o.geo !== undefined && o.geo.hasProximity(region)) {
        let best = Infinity;
        for (const t of candidates) {
          const d = o.geo.distance(region, t.server);
          if (d !== undefined && d < best) best = d;
        }
        if (best !== Infinity) {
          const nearest = candidates.filter((t) => o.geo!.distance(region, t.server) === best);
          return rotate(nearest, o.answers > 0 ? Math.min(o.answers, nearest.length) : nearest.length);
        }
      }
      return rotate(candidates, limit);
    }
  }
}

/** `count` items of `list` starting at `cursor` (mod length), wrapping: a new array. */
export function rotated<T>(list: readonly T[], cursor: number, count: number): T[] {
  const n = list.length;
  const out: T[] = new Array<T>(count);
  const start = ((cursor % n) + n) % n;
  for (let i = 0; i < count; i++) out[i] = list[(start + i) % n]!;
  return out;
}

/** `count` distinct targets, each drawn with probability proportional to its weight among those left. */
export function weightedSample(list: readonly AnswerTarget[], count: number, rng: Rng): AnswerTarget[] {
  const left = list.slice();
  const out: AnswerTarget[] = [];
  let total = 0;
  for (const t of left) total += t.server.weight;
  while (out.length < count && left.length > 0) {
    let x = rng.next() * total;
    let i = 0;
    for (; i < left.length - 1; i++) {
      x -= left[i]!.server.weight;
      if (x < 0) break;
    }
    const t = left[i]!;
    out.push(t);
    total -= t.server.weight;
    left.splice(i, 1);
  }
  return out;
}
