/**
 * Response-rate limiting for UDP answers (in the spirit of BIND's RRL): a token bucket per
 * client network (/24 for IPv4, /56 for IPv6 by default). Over the limit, responses are
 * dropped, except every `slip`-th, which is sent truncated (TC set, no records) so that a
 * real client behind a forged flood can still get its answer over TCP. A spoofed source
 * then gains at most a small response per slip, and Portico is no amplifier. TCP answers
 * are never limited: a TCP client has proved its address.
 */
import { CidrSet, parseIp } from '../core/cidr.js';
import type { Clock } from '../core/clock.js';

export interface RrlSettings {
  readonly responsesPerSecond: number;
  readonly burst: number;
  readonly slip: number;
  readonly ipv4PrefixLength: number;
  readonly ipv6PrefixLength: number;
  readonly exempt: readonly string[];
  readonly maxTracked: number;
}

export type RrlVerdict = 'send' | 'drop' | 'slip';

interface Bucket {
  tokens: number;
  /** clock ms of the last refill */
  at: number;
  /** responses over the limit so far, for the slip count */
  over: number;
}

export class ResponseRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly exempt: CidrSet;
  /** Responses sent, dropped and slipped (truncated) because of the limit. */
  readonly counts = { limited: 0, dropped: 0, slipped: 0 };

  constructor(
    private readonly s: RrlSettings,
    private readonly clock: Clock,
  ) {
    this.perMs = s.responsesPerSecond / 1000;
    this.exempt = new CidrSet(s.exempt);
  }

  /** Whether a UDP response to `address` may be sent. */
  check(address: string): RrlVerdict {
    if (this.exempt.size > 0 && this.exempt.has(address)) return 'send';
    const key = networkKey(address, this.s.ipv4PrefixLength, this.s.ipv6PrefixLength);
    const now = this.clock.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.s.maxTracked) this.evict(now);
      b = { tokens: this.s.burst, at: now, over: 0 };
      this.buckets.set(key, b);
    } else {
      const t = b.tokens + (now - b.at) * this.perMs;
      b.tokens = t > this.s.burst ? this.s.burst : t;
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'send';
    }
    this.counts.limited++;
    b.over++;
    if (this.s.slip > 0 && b.over % this.s.slip === 0) {
      this.counts.slipped++;
      return 'slip';
    }
    this.counts.dropped++;
    return 'drop';
  }

  /** True when `other` limits exactly as this one does. */
  sameSettings(other: ResponseRateLimiter): boolean {
    const a = this.s;
    const b = other.s;
    return (
      a.responsesPerSecond === b.responsesPerSecond &&
      a.burst === b.burst &&
      a.slip === b.slip &&
      a.ipv4PrefixLength === b.ipv4PrefixLength &&
      a.ipv6PrefixLength === b.ipv6PrefixLength &&
      a.maxTracked === b.maxTracked &&
      a.exempt.join(',') === b.exempt.join(',')
    );
  }

  get tracked(): number {
    return this.buckets.size;
  }

  /** Forget networks whose bucket has refilled (they are not limited); if none has, the oldest half. */
  private evict(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.s.burst) this.buckets.delete(k);
    }
    if (this.buckets.size < this.s.maxTracked) return;
    let drop = this.buckets.size >> 1;
    for (const k of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(k);
    }
  }
}

/** The client network of an address as a map key: `a.b.c/24`-style for IPv4, the masked words for IPv6. */
export function networkKey(address: string, v4Bits: number, v6Bits: number): string {
  const v4 = ipv4Value(address.startsWith('::ffff:') ? address.slice(7) : address);
  if (v4 !== undefined) {
    const mask = v4Bits === 0 ? 0 : (0xffffffff << (32 - v4Bits)) >>> 0;
    return `4:${((v4 & mask) >>> 0).toString(16)}`;
  }
  const ip = parseIp(address);
  if (ip === undefined) return `?:${address}`;
  const words: string[] = [];
  for (let i = 0; i < 4; i++) {
    const keep = Math.max(0, Math.min(32, v6Bits - i * 32));
    const mask = keep === 0 ? 0 : keep === 32 ? 0xffffffff : (0xffffffff << (32 - keep)) >>> 0;
    words.push(((ip[i]! & mask) >>> 0).toString(16));
  }
  return `6:${words.join(':')}`;
}

/** A dotted IPv4 address as a 32-bit number, without allocating; undefined when it is not one. */
function ipv4Value(s: string): number | undefined {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return undefined;
      v = v * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return (v * 256 + part) >>> 0;
}
