/**
 * IP addresses and CIDR blocks without node: modules. Addresses are kept as
 * 128-bit values in four 32-bit words; IPv4 is stored as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one matcher serves both families.
 */

export type Ip128 = readonly [number, number, number, number];

export function parseIp(text: string): Ip128 | undefined {
  if (text.includes(':')) return parseIpv6(text);
  const v4 = parseIpv4(text);
  return v4 === undefined ? undefined : [0, 0, 0xffff, v4];
}

function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

function parseIpv6(text: string): Ip128 | undefined {
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const groups = part.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  const w = (i: number): number => ((groups[i]! << 16) | groups[i + 1]!) >>> 0;
  return [w(0), w(2), w(4), w(6)];
}

export interface Cidr {
  readonly text: string;
  readonly net: Ip128;
  /** Prefix length in the 128-bit space. */
  readonly bits: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addr);
  if (ip === undefined) return undefined;
  const isV4 = !addr.includes(':');
  const max = isV4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const l = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(l)) return undefined;
    len = Number(l);
    if (len > max) return undefined;
  }
  const bits = isV4 ? len + 96 : len;
  return { text, net: maskIp(ip, bits), bits };
}

function maskIp(ip: Ip128, bits: number): Ip128 {
  const out: number[] = [];
  for (let i = 0; i < 4; i++) {
    const keep = Math.max(0, Math.min(32, bits - i * 32));
    const mask = keep === 0 ? 0 : keep === 32 ? 0xffffffff : (0xffffffff << (32 - keep)) >>> 0;
    out.push((ip[i]! & mask) >>> 0);
  }
  return out as unknown as Ip128;
}

export function cidrContains(c: Cidr, ip: Ip128): boolean {
  const m = maskIp(ip, c.bits);
  return m[0] === c.net[0] && m[1] === c.net[1] && m[2] === c.net[2] && m[3] === c.net[3];
}

/** A set of CIDR blocks with a per-address result cache (client addresses repeat). */
export class CidrSet {
  private readonly blocks: readonly Cidr[];
  private readonly cache = new Map<string, boolean>();
  constructor(cidrs: readonly string[]) {
    const blocks: Cidr[] = [];
    for (const t of cidrs) {
      const c = parseCidr(t);
      if (c === undefined) throw new Error(`invalid CIDR: ${t}`);
      blocks.push(c);
    }
    this.blocks = blocks;
  }
  get size(): number {
    return this.blocks.length;
  }
  has(address: string): boolean {
    if (this.blocks.length === 0) return false;
    const hit = this.cache.get(address);
    if (hit !== undefined) return hit;
    const ip = parseIp(address);
    let r = false;
    if (ip !== undefined) for (const b of this.blocks) if (cidrContains(b, ip)) { r = true; break; }
    if (this.cache.size > 10000) this.cache.clear();
    this.cache.set(address, r);
    return r;
  }
}
