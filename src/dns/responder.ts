/**
 * One DNS message in, one response (or nothing) out: the protocol rules of an authoritative
 * server, independent of the transport. The wire format is dns-packet's: it decodes the
 * question and the additional records and encodes every response. Only the fixed 12-byte
 * header is read here, before any decoding, so that responses, bad opcodes and bad counts
 * cost nothing to refuse, and the question is echoed byte for byte (case and all, for
 * resolvers that randomise it).
 *
 * Rules (RFC 1035, 2308, 6891, 7766, 7871, 8482):
 * - a message with QR set, or shorter than a header, is dropped;
 * - an opcode other than QUERY gets NOTIMP; QDCOUNT other than 1, records in the answer or
 *   authority section, or anything that does not decode gets FORMERR;
 * - names outside the zones get REFUSED; inside, AA is set, NXDOMAIN and NODATA carry the
 *   SOA with the negative TTL; ANY gets one RRset;
 * - EDNS(0): the client's UDP size (at least 512, at most maxUdpSize), BADVERS for a version
 *   above 0, and Client Subnet echoed with its scope;
 * - a UDP answer that does not fit loses its additional records, then is sent with TC set
 *   and no records, so that the client asks again over TCP.
 */
import dnsPacket from 'dns-packet';
import type { Answer, OptAnswer, Question } from 'dns-packet';
import { parseIp, type Ip128 } from '../core/cidr.js';
import { Outcome as Failure, dnsFailure } from '../core/outcome.js';
import type { Rng } from '../core/rng.js';
import type { ClientLocation, GeoMap } from './geo.js';
import { AnswerCache, MAX_KEYED_QUERY } from './answer-cache.js';
import { compressMessage } from './compress.js';
import { Zone, type LookupResult, type PoolRecordSet, type QueryInputs, type ZoneSet } from './zone.js';

export type Transport = 'udp' | 'tcp';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'] as const;
const BADVERS = 16;
/** The label of a message that got no response. */
const DROPPED = Failure.of('dns-dropped').reason;

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const CD = 0x0010;
/** Header bits of a query that a response repeats: opcode, RD and CD. */
const COPIED = 0x7800 | RD | CD;

const HEADER = 12;
const MAX_CHAIN = 8;
const ECS = 8;
const OPT_TYPE = 41;

export interface ResponderSettings {
  readonly zones: ZoneSet;
  readonly maxUdpSize: number;
  readonly geo: GeoMap | undefined;
  readonly rng: Rng;
}

/** What became of the last message handled, for counters. */
export interface Outcome {
  /** The zone the question fell in, or '' when none. */
  zone: string;
  /** The rcode sent, or 'DROPPED'. */
  rcode: string;
  /** The response was truncated to fit UDP. */
  truncated: boolean;
  /** The response came from the answer cache. */
  cached: boolean;
}

interface Edns {
  readonly udpSize: number;
  /** The client's ECS option, to echo with a scope. */
  readonly ecs: { family: number; sourcePrefixLength: number; ip: string; ip128: Ip128 } | undefined;
}

const BAD_VERSION = Symbol('bad EDNS version');

/** A copy of a cached response with the id, RD and CD bits of the query it now answers. */
function withQueryHeader(cached: Buffer, msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(cached.length);
  cached.copy(out);
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  out[2] = (cached[2]! & 0xfe) | (msg[2]! & 0x01);
  out[3] = (cached[3]! & 0xef) | (msg[3]! & 0x10);
  return out;
}

/** dns-packet's section codecs, which its type declarations leave out; `bytes` is what the last decode consumed. */
type Decoder<T> = ((buf: Buffer, offset: number) => T) & { readonly bytes: number };
const codec = dnsPacket as unknown as {
  readonly name: { readonly decode: Decoder<string> };
  readonly question: { readonly decode: Decoder<Question> };
  readonly answer: { readonly decode: Decoder<Answer> };
};

/** Thrown inside the responder to answer FORMERR; never leaves it. */
class FormatError extends Error {}

export class Responder implements QueryInputs {
  readonly zones: ZoneSet;
  readonly maxUdpSize: number;
  readonly geo: GeoMap | undefined;
  readonly rng: Rng;
  readonly outcome: Outcome = { zone: '', rcode: '', truncated: false, cached: false };
  readonly cache = new AnswerCache();
  // per-message state (the responder is synchronous and never re-entered)
  private clientAddress = '';
  private edns: Edns | undefined;
  private located: ClientLocation | undefined;
  /** location() placed the client by its source address (not by ECS): a cached answer is per region. */
  private locatedByAddress = false;
  /** The response may be kept in the cache (a normal answer, not an error). */
  private cacheable = false;
  /** The pool-backed record sets the answer drew from (cacheable with at most one). */
  private drawn = 0;
  private drawnSet: PoolRecordSet | undefined;
  private drawnVersion = 0;
  private drawnCursor = 0;
  private drawnModulus = 1;

  constructor(s: ResponderSettings) {
    this.zones = s.zones;
    this.maxUdpSize = s.maxUdpSize;
    this.geo = s.geo;
    this.rng = s.rng;
  }

  location(): ClientLocation {
    if (this.located !== undefined) return this.located;
    const geo = this.geo;
    let loc: ClientLocation = { region: undefined, prefixBits: 0 };
    if (geo !== undefined) {
      const ecs = this.edns?.ecs;
      if (ecs !== undefined && ecs.sourcePrefixLength > 0) {
        loc = geo.locateIp(ecs.ip128, ecs.family === 1 ? ecs.sourcePrefixLength + 96 : ecs.sourcePrefixLength);
      } else {
        loc = geo.locate(this.clientAddress);
        this.locatedByAddress = true;
      }
    }
    this.located = loc;
    return loc;
  }

  drewFrom(set: PoolRecordSet, version: number, cursor: number, modulus: number): void {
    this.drawn++;
    this.drawnSet = set;
    this.drawnVersion = version;
    this.drawnCursor = cursor;
    this.drawnModulus = modulus;
  }

  /**
   * The response to one message, or undefined when it is dropped. Never throws: whatever the
   * bytes, the answer is a response or nothing.
   */
  handle(msg: Buffer, transport: Transport, clientAddress: string): Buffer | undefined {
    const out = this.outcome;
    out.zone = '';
    out.truncated = false;
    out.cached = false;
    this.clientAddress = clientAddress;
    this.edns = undefined;
    this.located = undefined;
    this.locatedByAddress = false;
    this.cacheable = false;
    this.drawn = 0;
    try {
      // A plain query (QUERY, one question, nothing in the answer and authority sections) may
      // have its response in the cache. The key starts at ARCOUNT (offset 10): a query that
      // claims an additional record it does not hold is not the valid query its bytes follow.
      const key = msg.length >= HEADER && msg.length <= MAX_KEYED_QUERY && (msg.readUInt16BE(2) & 0xf800) === 0 && msg.readUInt16BE(4) === 1 && msg.readUInt32BE(6) === 0
        ? (transport === 'tcp' ? 'T' : 'U') + msg.toString('latin1', HEADER - 2)
        : undefined;
      if (key !== undefined) {
        const hit = this.cache.lookup(key, this.regionOfClient);
        if (hit !== undefined) {
          this.cache.hits++;
          out.zone = hit.entry.zone;
          out.rcode = hit.entry.rcode;
          out.truncated = hit.entry.truncated;
          out.cached = true;
          return withQueryHeader(hit.response, msg);
        }
        this.cache.misses++;
      }
      const resp = this.respond(msg, transport);
      if (key !== undefined && resp !== undefined && this.cacheable) this.keep(key, resp);
      return resp;
    } catch {
      // A fault in building an answer ends this query only.
      return this.bare(msg, RCODE.SERVFAIL);
    }
  }

  /** The region of the client by its source address ('' when unplaced), for region-keyed cache entries. */
  private readonly regionOfClient = (): string => this.location().region ?? '';

  private keep(key: string, resp: Buffer): void {
    if (this.drawn > 1 || (this.drawn === 1 && this.drawnModulus === 0)) return;
    const region = this.locatedByAddress ? (this.located?.region ?? '') : undefined;
    const out = this.outcome;
    if (this.drawn === 0) this.cache.store(key, region, undefined, 0, 1, 0, resp, out);
    else this.cache.store(key, region, this.drawnSet, this.drawnVersion, this.drawnModulus, this.drawnCursor, resp, out);
  }

  /** A truncated, empty response (TC set) to `msg`: what rate limiting sends when it slips. */
  truncatedFor(msg: Buffer): Buffer | undefined {
    if (msg.length < HEADER || (msg.readUInt16BE(2) & QR) !== 0) return undefined;
    const q = this.question(msg);
    if (q === undefined) return undefined;
    this.outcome.rcode = 'NOERROR';
    this.outcome.truncated = true;
    return this.encode(msg, q.end, ((msg.readUInt16BE(2) & COPIED) | AA | TC) >>> 0, [], [], [], undefined, 0);
  }

  private respond(msg: Buffer, transport: Transport): Buffer | undefined {
    const out = this.outcome;
    if (msg.length < HEADER) {
      out.rcode = DROPPED;
      return undefined;
    }
    const flags = msg.readUInt16BE(2);
    if ((flags & QR) !== 0) {
      out.rcode = DROPPED;
      return undefined;
    }
    if (((flags >> 11) & 0xf) !== 0) return this.bare(msg, RCODE.NOTIMP);
    if (msg.readUInt16BE(4) !== 1 || msg.readUInt16BE(6) !== 0 || msg.readUInt16BE(8) !== 0) return this.bare(msg, RCODE.FORMERR);

    const q = this.question(msg);
    if (q === undefined) return this.bare(msg, RCODE.FORMERR);
    let edns: Edns | typeof BAD_VERSION | undefined;
    try {
      edns = this.readAdditionals(msg, q.end, msg.readUInt16BE(10));
    } catch {
      return this.bare(msg, RCODE.FORMERR);
    }
    if (edns === BAD_VERSION) return this.encode(msg, q.end, (flags & COPIED) | QR, [], [], [], { udpSize: 512, ecs: undefined }, BADVERS);
    this.edns = edns;
    const limit = transport === 'tcp' ? 65535 : edns === undefined ? 512 : edns.udpSize;
    const base = (flags & COPIED) >>> 0;
    const qtype = q.question.type;
    const qclass = q.question.class;

    if (qtype === 'OPT') return this.encode(msg, q.end, base, [], [], [], edns, RCODE.FORMERR);
    if ((qclass !== 'IN' && qclass !== 'ANY') || qtype === 'AXFR' || qtype === 'IXFR') {
      return this.encode(msg, q.end, base, [], [], [], edns, RCODE.REFUSED);
    }
    const owner = q.question.name;
    const qname = owner.toLowerCase();
    const zone = this.zones.find(qname);
    if (zone === undefined) {
      this.cacheable = true;
      return this.encode(msg, q.end, base, [], [], [], edns, RCODE.REFUSED);
    }
    out.zone = zone.name;

    let r: LookupResult = zone.lookup(qname, owner, qtype, this);
    this.cacheable = r.kind === 'referral';
    if (r.kind === 'referral') return this.finish(msg, q.end, base, [], r.authorities, r.additionals, edns, RCODE.NOERROR, limit, false);

    const answers = r.answers;
    const additionals = r.kind === 'answer' ? r.additionals : [];
    let usedLocation = r.kind === 'answer' && r.usedLocation;
    let last = zone;
    // A CNAME answer is followed through the zones served here, up to MAX_CHAIN links.
    let target = qtype === 'CNAME' ? undefined : Zone.cnameTarget(answers);
    const seen = new Set<string>([qname]);
    for (let hops = 0; target !== undefined && hops < MAX_CHAIN && !seen.has(target); hops++) {
      seen.add(target);
      const z = this.zones.find(target);
      if (z === undefined) break;
      const next = z.lookup(target, target, qtype, this);
      if (next.kind === 'referral') break;
      last = z;
      r = next;
      for (const a of next.answers) answers.push(a);
      if (next.kind === 'answer') {
        for (const a of next.additionals) additionals.push(a);
        usedLocation ||= next.usedLocation;
      }
      target = Zone.cnameTarget(next.answers);
    }
    this.cacheable = true;
    const negative = r.kind === 'nxdomain' || r.kind === 'nodata';
    const authorities = negative ? [{ ...last.soa, ttl: last.negativeTtl }] : [];
    const rcode = r.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.NOERROR;
    return this.finish(msg, q.end, base | AA, answers, authorities, additionals, edns, rcode, limit, usedLocation);
  }

  /**
   * Encode within `limit` bytes (as compressed): drop additional records first, then truncate
   * (TC, no records).
   */
  private finish(
    msg: Buffer,
    qEnd: number,
    flags: number,
    answers: Answer[],
    authorities: Answer[],
    additionals: Answer[],
    edns: Edns | undefined,
    rcode: number,
    limit: number,
    usedLocation: boolean,
  ): Buffer {
    const opt = edns === undefined ? undefined : optRecord(this.maxUdpSize, edns, usedLocation, 0);
    const extra = opt === undefined ? additionals : [...additionals, opt];
    const full = this.encode(msg, qEnd, flags, answers, authorities, extra, undefined, rcode, opt);
    if (full.length <= limit) return full;
    const noGlue = opt === undefined ? [] : [opt];
    if (additionals.length > 0) {
      const bare = this.encode(msg, qEnd, flags, answers, authorities, noGlue, undefined, rcode, opt);
      if (bare.length <= limit) return bare;
    }
    this.outcome.truncated = true;
    return this.encode(msg, qEnd, flags | TC, [], [], noGlue, undefined, rcode, opt);
  }

  /**
   * A response that repeats the question bytes of `msg` (the header and question are copied, not
   * re-encoded). dns-packet encodes the header and the records after a gap left for the question;
   * the names are then compressed (compress.ts: dns-packet writes every name in full).
   */
  private encode(
    msg: Buffer,
    qEnd: number,
    flags: number,
    answers: Answer[],
    authorities: Answer[],
    additionals: Answer[],
    edns: Edns | undefined,
    rcode: number,
    opt?: OptAnswer,
  ): Buffer {
    const extra = opt !== undefined || edns === undefined ? additionals : [...additionals, optRecord(this.maxUdpSize, edns, false, rcode >> 4)];
    const packet = {
      id: msg.readUInt16BE(0),
      type: 'response' as const,
      flags: (flags | (rcode & 0xf)) & 0x7fff,
      questions: [] as Question[],
      answers,
      authorities,
      additionals: extra,
    };
    const qLen = qEnd - HEADER;
    const buf = Buffer.allocUnsafe(dnsPacket.encodingLength(packet) + qLen);
    dnsPacket.encode(packet, buf, qLen);
    buf.copy(buf, 0, qLen, qLen + HEADER);
    msg.copy(buf, HEADER, HEADER, qEnd);
    buf.writeUInt16BE(qLen > 0 ? 1 : 0, 4);
    // A response that is not an answer takes its label from the outcome vocabulary.
    this.outcome.rcode = dnsFailure(rcode)?.reason ?? RCODE_NAMES[rcode] ?? String(rcode);
    return answers.length + authorities.length + extra.length === 0 ? buf : compressMessage(buf);
  }

  /** A header-only response (NOTIMP, FORMERR, SERVFAIL) with the query's id, opcode and RD. */
  private bare(msg: Buffer, rcode: number): Buffer | undefined {
    if (msg.length < HEADER) return undefined;
    const flags = (msg.readUInt16BE(2) & COPIED) >>> 0;
    return this.encode(msg, HEADER, flags, [], [], [], undefined, rcode);
  }

  /** The question at offset 12 and where it ends; undefined when it does not decode. */
  private question(msg: Buffer): { question: Question; end: number } | undefined {
    try {
      const question = codec.question.decode(msg, HEADER);
      const end = HEADER + codec.question.decode.bytes;
      if (end > msg.length) return undefined;
      return { question, end };
    } catch {
      return undefined;
    }
  }

  /** The EDNS of the additional section, or BAD_VERSION; throws FormatError on a malformed or repeated OPT. */
  private readAdditionals(msg: Buffer, offset: number, count: number): Edns | typeof BAD_VERSION | undefined {
    let edns: Edns | typeof BAD_VERSION | undefined;
    let o = offset;
    for (let i = 0; i < count; i++) {
      // Only OPT is decoded; any other record (TSIG, cookies of other kinds ...) is skipped by its length.
      codec.name.decode(msg, o);
      const fixed = o + codec.name.decode.bytes;
      if (fixed + 10 > msg.length) throw new FormatError('record past the end');
      if (msg.readUInt16BE(fixed) !== OPT_TYPE) {
        o = fixed + 10 + msg.readUInt16BE(fixed + 8);
        if (o > msg.length) throw new FormatError('record past the end');
        continue;
      }
      const rec = codec.answer.decode(msg, o);
      o += codec.answer.decode.bytes;
      if (o > msg.length) throw new FormatError('record past the end');
      if (edns !== undefined || rec.name !== '.') throw new FormatError('second OPT, or OPT not at the root');
      const opt = rec as OptAnswer;
      if (opt.ednsVersion !== 0) {
        edns = BAD_VERSION;
        continue;
      }
      edns = { udpSize: Math.min(Math.max(opt.udpPayloadSize, 512), this.maxUdpSize), ecs: clientSubnet(opt) };
    }
    return edns;
  }
}


/** The ECS option of an OPT record, validated (RFC 7871 §6); throws FormatError when malformed. */
function clientSubnet(opt: OptAnswer): Edns['ecs'] {
  for (const o of opt.options) {
    if (o.code !== ECS) continue;
    const e = o as { family?: number; sourcePrefixLength?: number; ip?: string; data?: Buffer };
    const family = e.family ?? 0;
    const source = e.sourcePrefixLength ?? 0;
    const data = e.data ?? Buffer.alloc(0);
    const max = family === 1 ? 32 : family === 2 ? 128 : -1;
    if (max < 0 || source > max || data.length !== 4 + Math.ceil(source / 8)) throw new FormatError('bad client subnet');
    const last = data.length - 1;
    if (source % 8 !== 0 && last >= 4 && (data[last]! & (0xff >> source % 8)) !== 0) throw new FormatError('client subnet address has bits past its prefix');
    const ip128 = parseIp(e.ip ?? '');
    if (ip128 === undefined) throw new FormatError('bad client subnet address');
    return { family, sourcePrefixLength: source, ip: e.ip!, ip128 };
  }
  return undefined;
}

function optRecord(maxUdpSize: number, edns: Edns, usedLocation: boolean, extendedRcode: number): OptAnswer {
  const options: OptAnswer['options'] = [];
  const ecs = edns.ecs;
  if (ecs !== undefined) {
    options.push({
      code: ECS,
      family: ecs.family,
      sourcePrefixLength: ecs.sourcePrefixLength,
      scopePrefixLength: usedLocation ? ecs.sourcePrefixLength : 0,
      ip: ecs.ip,
    } as OptAnswer['options'][number]);
  }
  return { name: '.', type: 'OPT', udpPayloadSize: maxUdpSize, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options };
}
