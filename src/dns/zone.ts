/**
 * Compiled zones: the names of each zone with their record sets, static or drawn from a
 * pool, and the lookup of a question in them (answer, CNAME chain, wildcard, referral,
 * NXDOMAIN or NODATA). Built once per configuration; lookups allocate only their answer.
 */
import type { Answer, OptAnswer, RecordType } from 'dns-packet';
import type { Rng } from '../core/rng.js';
import type { ServerSet } from '../core/server-set.js';
import {
  chooseTargets,
  prepareTargets,
  targetOf,
  type AnswerTarget,
  type DnsPolicy,
  type PoolRecordType,
  type PreparedTargets,
} from './answer.js';
import type { Rotor } from './answer-cache.js';
import type { ClientLocation, GeoMap } from './geo.js';

/** What a zone needs of a pool: its current snapshot. */
export interface PoolView {
  readonly name: string;
  readonly current: { readonly set: ServerSet };
}

export interface ZoneRecordSpec {
  readonly name: string;
  readonly type: 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'MX' | 'SRV' | 'NS';
  readonly ttl?: number | undefined;
  readonly pool?: string | undefined;
  readonly policy: DnsPolicy;
  readonly answers: number;
  readonly fallback: 'all' | readonly string[];
  readonly targets?: string | undefined;
  readonly values?: readonly string[] | undefined;
}

export interface ZoneSpec {
  readonly name: string;
  readonly ttl: number;
  readonly nameservers?: readonly string[] | undefined;
  readonly soa: {
    readonly primary?: string | undefined;
    readonly email?: string | undefined;
    readonly serial?: number | undefined;
    readonly refresh: number;
    readonly retry: number;
    readonly expire: number;
    readonly minimum: number;
  };
  readonly records: readonly ZoneRecordSpec[];
}

/** Per-query inputs of records drawn from pools. */
export interface QueryInputs {
  readonly rng: Rng;
  readonly geo: GeoMap | undefined;
  /** Where the client is; computed on first use (only geo and nearest records need it). */
  location(): ClientLocation;
  /**
   * Told of every pool-backed record set an answer drew from: the set version, the cursor used
   * and how many distinct rotations there are (0: drawn at random). For the answer cache.
   */
  drewFrom(set: PoolRecordSet, version: number, cursor: number, modulus: number): void;
}

/** A record set drawn from a pool. Holds the rotation cursor and the targets prepared for the pool's current set. */
export class PoolRecordSet implements Rotor {
  readonly type: PoolRecordType;
  readonly ttl: number;
  readonly pool: PoolView;
  readonly policy: DnsPolicy;
  readonly answers: number;
  readonly fallback: 'all' | readonly string[];
  /** SRV: targets are `<server name>.<suffix>`. */
  readonly targetSuffix: string;
  /** True when the answer depends on where the client is (ECS scope is then set). */
  readonly usesLocation: boolean;
  private cursor = 0;
  private prepared: PreparedTargets | undefined;

  constructor(spec: ZoneRecordSpec, ttl: number, pool: PoolView, ownerName: string, zone: string) {
    this.type = spec.type as PoolRecordType;
    this.ttl = ttl;
    this.pool = pool;
    this.policy = spec.policy;
    this.answers = spec.answers;
    this.fallback = spec.fallback;
    this.targetSuffix = spec.targets === undefined ? ownerName : absolute(spec.targets, zone);
    this.usesLocation = spec.policy === 'geo' || spec.policy === 'nearest';
  }

  get version(): number {
    return this.pool.current.set.version;
  }

  peek(): number {
    return this.cursor;
  }

  advance(): number {
    const cursor = this.cursor;
    this.cursor = cursor >= 0x3fffffff ? 0 : cursor + 1;
    return cursor;
  }

  private targetsFor(set: ServerSet): PreparedTargets {
    let p = this.prepared;
    if (p === undefined || p.version !== set.version) this.prepared = p = prepareTargets(set, this.type);
    return p;
  }

  /**
   * The records of one answer. With no available server, the fallback answers: every server
   * not in maint, or the sorry addresses.
   */
  records(owner: string, q: QueryInputs, additionals: Answer[]): Answer[] {
    const prepared = this.targetsFor(this.pool.current.set);
    let candidates = prepared.available;
    if (candidates.length === 0) {
      if (this.fallback !== 'all') {
        q.drewFrom(this, prepared.version, 0, 1);
        return this.fallback.map((a) => ({ name: owner, type: this.type as 'A', ttl: this.ttl, data: a }));
      }
      candidates = prepared.all;
    }
    const cursor = this.advance();
    const report = { modulus: 0 };
    const chosen = chooseTargets(candidates, {
      policy: this.policy,
      answers: this.answers,
      cursor,
      rng: q.rng,
      location: this.usesLocation ? q.location() : NO_LOCATION,
      geo: q.geo,
      report,
    });
    q.drewFrom(this, prepared.version, cursor, report.modulus);
    const out: Answer[] = new Array<Answer>(chosen.length);
    for (let i = 0; i < chosen.length; i++) {
      const t = chosen[i]!;
      if (this.type === 'SRV') {
        const target = this.srvTarget(t);
        out[i] = { name: owner, type: 'SRV', ttl: this.ttl, data: { priority: t.server.backup ? 20 : 10, weight: t.server.weight, port: t.server.port, target } };
        if (t.address !== undefined) additionals.push(addressRecord(target, t.address, this.ttl));
      } else {
        out[i] = { name: owner, type: this.type, ttl: this.ttl, data: t.address! };
      }
    }
    return out;
  }

  private srvTarget(t: AnswerTarget): string {
    return t.address === undefined ? t.server.host.toLowerCase() : `${t.server.name.toLowerCase()}.${this.targetSuffix}`;
  }

  /** The A or AAAA record of an SRV target name `<server>.<suffix>`, if that server exists. */
  targetRecords(serverName: string, owner: string, qtype: string, q: QueryInputs): { exists: boolean; records: Answer[] } {
    const set = this.pool.current.set;
    q.drewFrom(this, set.version, 0, 1);
    for (const s of set.all) {
      if (s.name.toLowerCase() !== serverName) continue;
      const t = targetOf(s, 'SRV');
      if (t === undefined || t.address === undefined) return { exists: false, records: [] };
      const type = t.address.includes(':') ? 'AAAA' : 'A';
      if (qtype !== type && qtype !== 'ANY') return { exists: true, records: [] };
      return { exists: true, records: [addressRecord(owner, t.address, this.ttl)] };
    }
    return { exists: false, records: [] };
  }
}

const NO_LOCATION: ClientLocation = Object.freeze({ region: undefined, prefixBits: 0 });

function addressRecord(name: string, address: string, ttl: number): Answer {
  return { name, type: address.includes(':') ? 'AAAA' : 'A', ttl, data: address };
}

type StaticData = Exclude<Answer, OptAnswer>['data'];

interface RRSet {
  readonly type: RecordType;
  readonly ttl: number;
  readonly data: readonly StaticData[] | undefined;
  readonly pool: PoolRecordSet | undefined;
}

interface ZoneNode {
  readonly rrsets: Map<string, RRSet>;
}

export type LookupResult =
  | { readonly kind: 'answer'; readonly answers: Answer[]; readonly additionals: Answer[]; readonly usedLocation: boolean }
  | { readonly kind: 'nodata' | 'nxdomain'; readonly answers: Answer[] }
  | { readonly kind: 'referral'; readonly authorities: Answer[]; readonly additionals: Answer[] };

/** Order in which ANY picks the one RRset it answers with (RFC 8482 minimal answer). */
const ANY_ORDER = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'NS', 'SOA'];

/** An absolute name (lowercase, no trailing dot) from a name relative to `zone`, or `@`. */
export function absolute(rel: string, zone: string): string {
  if (rel === '@') return zone;
  return `${rel.toLowerCase()}.${zone}`;
}

function strip(n: string): string {
  return (n.endsWith('.') ? n.slice(0, -1) : n).toLowerCase();
}

export class Zone {
  readonly name: string;
  readonly ttl: number;
  readonly soa: Answer;
  /** TTL of negative answers: min(SOA TTL, SOA minimum) (RFC 2308 §5). */
  readonly negativeTtl: number;
  private readonly nodes = new Map<string, ZoneNode>();
  /** Names that exist only because a name below them does (empty non-terminals). */
  private readonly emptyNonTerminals = new Set<string>();
  /** Delegation points below the apex (names with NS records). */
  private readonly delegations = new Set<string>();
  /** SRV target suffixes → the record set whose servers they name. */
  private readonly srvSuffixes = new Map<string, PoolRecordSet>();
  private readonly labelCount: number;

  constructor(spec: ZoneSpec, pools: ReadonlyMap<string, PoolView>, loadedAtSec: number) {
    const zone = spec.name.toLowerCase();
    this.name = zone;
    this.ttl = spec.ttl;
    this.labelCount = zone.split('.').length;
    const nameservers = (spec.nameservers ?? [`ns1.${zone}`]).map(strip);
    const s = spec.soa;
    this.soa = {
      name: zone,
      type: 'SOA',
      ttl: spec.ttl,
      data: {
        mname: strip(s.primary ?? nameservers[0]!),
        rname: strip(s.email ?? `hostmaster.${zone}`),
        serial: s.serial ?? loadedAtSec >>> 0,
        refresh: s.refresh,
        retry: s.retry,
        expire: s.expire,
        minimum: s.minimum,
      },
    };
    this.negativeTtl = Math.min(spec.ttl, s.minimum);
    this.add(zone, { type: 'SOA', ttl: spec.ttl, data: [this.soa.data], pool: undefined });
    this.add(zone, { type: 'NS', ttl: spec.ttl, data: nameservers, pool: undefined });
    for (const r of spec.records) {
      const owner = absolute(r.name, zone);
      const ttl = r.ttl ?? spec.ttl;
      if (r.pool !== undefined) {
        const pool = pools.get(r.pool);
        if (pool === undefined) throw new Error(`zone ${zone}: record ${r.name} names unknown pool ${r.pool}`);
        const set = new PoolRecordSet(r, ttl, pool, owner, zone);
        this.add(owner, { type: r.type, ttl, data: undefined, pool: set });
        if (r.type === 'SRV') this.srvSuffixes.set(set.targetSuffix, set);
      } else {
        const existing = this.nodes.get(owner)?.rrsets.get(r.type);
        const data = [...(existing?.data ?? []), ...r.values!.map((v) => staticData(r.type, v))];
        this.add(owner, { type: r.type, ttl: existing === undefined ? ttl : Math.min(existing.ttl, ttl), data, pool: undefined });
        if (r.type === 'NS' && owner !== zone) this.delegations.add(owner);
      }
    }
    for (const name of this.nodes.keys()) {
      let n = name;
      while (n !== zone) {
        n = n.slice(n.indexOf('.') + 1);
        if (!this.nodes.has(n)) this.emptyNonTerminals.add(n);
      }
    }
  }

  private add(owner: string, rrset: RRSet): void {
    let node = this.nodes.get(owner);
    if (node === undefined) this.nodes.set(owner, (node = { rrsets: new Map() }));
    node.rrsets.set(rrset.type, rrset);
  }

  /** True when `name` (lowercase, no trailing dot) is this zone's apex or below it. */
  contains(name: string): boolean {
    return name === this.name || (name.endsWith(this.name) && name.charCodeAt(name.length - this.name.length - 1) === 0x2e);
  }

  /**
   * Look up a question. `qname` is lowercase without the trailing dot and inside this zone;
   * `owner` is the name as asked (its case is kept in the answer).
   */
  lookup(qname: string, owner: string, qtype: string, q: QueryInputs): LookupResult {
    const cut = this.delegationAbove(qname);
    if (cut !== undefined) return this.referral(cut);
    let node = this.nodes.get(qname);
    if (node === undefined) {
      if (this.emptyNonTerminals.has(qname)) return { kind: 'nodata', answers: [] };
      const target = this.srvTarget(qname, owner, qtype, q);
      if (target !== undefined) return target;
      node = this.wildcard(qname);
      if (node === undefined) return { kind: 'nxdomain', answers: [] };
    }
    const additionals: Answer[] = [];
    const cname = node.rrsets.get('CNAME');
    if (cname !== undefined && qtype !== 'CNAME') {
      return { kind: 'answer', answers: this.expand(cname, owner, q, additionals), additionals, usedLocation: false };
    }
    let rrset: RRSet | undefined;
    if (qtype === 'ANY') {
      for (const t of ANY_ORDER) if ((rrset = node.rrsets.get(t)) !== undefined) break;
    } else {
      rrset = node.rrsets.get(qtype);
    }
    if (rrset === undefined) return { kind: 'nodata', answers: [] };
    const answers = this.expand(rrset, owner, q, additionals);
    if (answers.length === 0) return { kind: 'nodata', answers };
    if (rrset.type === 'NS') this.glue(answers, additionals);
    return { kind: 'answer', answers, additionals, usedLocation: rrset.pool?.usesLocation ?? false };
  }

  /** The target of a CNAME answer, when it has one. */
  static cnameTarget(answers: readonly Answer[]): string | undefined {
    const last = answers[answers.length - 1];
    return last !== undefined && last.type === 'CNAME' ? last.data : undefined;
  }

  private expand(rrset: RRSet, owner: string, q: QueryInputs, additionals: Answer[]): Answer[] {
    if (rrset.pool !== undefined) return rrset.pool.records(owner, q, additionals);
    const data = rrset.data!;
    const out: Answer[] = new Array<Answer>(data.length);
    for (let i = 0; i < data.length; i++) out[i] = { name: owner, type: rrset.type, ttl: rrset.ttl, data: data[i] } as Answer;
    return out;
  }

  private delegationAbove(qname: string): string | undefined {
    if (this.delegations.size === 0 || qname === this.name) return undefined;
    // From the label just below the apex down to qname: the highest cut wins.
    const labels = qname.split('.');
    for (let i = labels.length - this.labelCount - 1; i >= 0; i--) {
      const n = labels.slice(i).join('.');
      if (this.delegations.has(n)) return n;
    }
    return undefined;
  }

  private referral(cut: string): LookupResult {
    const ns = this.nodes.get(cut)!.rrsets.get('NS')!;
    const authorities: Answer[] = ns.data!.map((d) => ({ name: cut, type: 'NS', ttl: ns.ttl, data: d }) as Answer);
    const additionals: Answer[] = [];
    this.glue(authorities, additionals);
    return { kind: 'referral', authorities, additionals };
  }

  /** Static A/AAAA records of in-zone name server names. */
  private glue(nsRecords: readonly Answer[], additionals: Answer[]): void {
    for (const r of nsRecords) {
      if (r.type !== 'NS') continue;
      const target = r.data;
      const node = this.contains(target) ? this.nodes.get(target) : undefined;
      if (node === undefined) continue;
      for (const t of ['A', 'AAAA']) {
        const rr = node.rrsets.get(t);
        if (rr?.data !== undefined) for (const d of rr.data) additionals.push({ name: target, type: t, ttl: rr.ttl, data: d } as Answer);
      }
    }
  }

  private srvTarget(qname: string, owner: string, qtype: string, q: QueryInputs): LookupResult | undefined {
    if (this.srvSuffixes.size === 0) return undefined;
    const dot = qname.indexOf('.');
    if (dot < 0) return undefined;
    const set = this.srvSuffixes.get(qname.slice(dot + 1));
    if (set === undefined) return undefined;
    const r = set.targetRecords(qname.slice(0, dot), owner, qtype, q);
    if (!r.exists) return undefined;
    return r.records.length === 0 ? { kind: 'nodata', answers: [] } : { kind: 'answer', answers: r.records, additionals: [], usedLocation: false };
  }

  /** RFC 4592: the wildcard at the closest encloser of a name that does not exist. */
  private wildcard(qname: string): ZoneNode | undefined {
    let n = qname;
    while (n !== this.name) {
      n = n.slice(n.indexOf('.') + 1);
      if (this.nodes.has(n) || this.emptyNonTerminals.has(n)) {
        if (this.delegations.has(n)) return undefined;
        return this.nodes.get(`*.${n}`);
      }
    }
    return undefined;
  }
}

function staticData(type: string, v: string): StaticData {
  switch (type) {
    case 'A':
    case 'AAAA':
      return v;
    case 'CNAME':
    case 'NS':
      return strip(v);
    case 'TXT':
      return [v];
    case 'MX': {
      const [pref, host] = v.trim().split(/\s+/);
      return { preference: Number(pref), exchange: strip(host!) };
    }
    case 'SRV': {
      const [priority, weight, port, target] = v.trim().split(/\s+/);
      return { priority: Number(priority), weight: Number(weight), port: Number(port), target: target === '.' ? '.' : strip(target!) };
    }
    default:
      throw new Error(`record type ${type} has no static form`);
  }
}

/** The zones of one listener; a name belongs to the zone with the longest matching apex. */
export class ZoneSet {
  readonly zones: readonly Zone[];
  constructor(zones: readonly Zone[]) {
    this.zones = [...zones].sort((a, b) => b.name.length - a.name.length);
  }
  find(qname: string): Zone | undefined {
    for (const z of this.zones) if (z.contains(qname)) return z;
    return undefined;
  }
}
