/**
 * The PROXY protocol (HAProxy, versions 1 and 2): a header a balancer writes at the start of a
 * TCP connection so that the server learns the client's address. Portico writes it toward servers
 * (`sendProxy: v1 | v2`) and reads it from clients (`acceptProxy: true`, for listeners behind
 * another balancer).
 *
 *   v1: "PROXY TCP4 SRC DST SPORT DPORT\r\n" (text, at most 107 bytes), or "PROXY UNKNOWN ...\r\n"
 *   v2: 12-byte signature, version/command, family/transport, 16-bit length, addresses, TLVs
 */
import { isIPv4, isIPv6, type Socket } from 'node:net';

/** The connection a PROXY header describes; `undefined` addresses for LOCAL (v2) or UNKNOWN (v1). */
export interface ProxyInfo {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destAddress: string;
  readonly destPort: number;
}

export type ProxyVersion = 'v1' | 'v2';

export type ProxyParse =
  /** More bytes are needed. */
  | { readonly kind: 'more' }
  | { readonly kind: 'error'; readonly reason: string }
  /** `length` bytes were the header; `info` is undefined for LOCAL / UNKNOWN (use the socket's own addresses). */
  | { readonly kind: 'done'; readonly length: number; readonly info: ProxyInfo | undefined };

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V1_MAX = 107;
/** A v2 header with TLVs may be long, but Portico refuses anything above this. */
const V2_MAX = 16 + 4096;

const MORE: ProxyParse = { kind: 'more' };
const fail = (reason: string): ProxyParse => ({ kind: 'error', reason });

/** Parse a PROXY header (v1 or v2) at the start of `buf`. */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return MORE;
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50 /* P */) return parseV1(buf);
  return fail('not a PROXY protocol header');
}

function startsWithPrefix(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyParse {
  if (!startsWithPrefix(buf, V1_PREFIX)) return fail('not a PROXY protocol header');
  const limit = Math.min(buf.length, V1_MAX);
  let lf = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    if (buf[i] === 0x0a) {
      lf = i;
      break;
    }
  }
  if (lf < 0) return buf.length >= V1_MAX ? fail('PROXY v1 line longer than 107 bytes') : MORE;
  if (buf[lf - 1] !== 0x0d) return fail('PROXY v1 line does not end with CRLF');
  const line = buf.toString('latin1', V1_PREFIX.length, lf - 1);
  const parts = line.split(' ');
  const length = lf + 1;
  if (parts[0] === 'UNKNOWN') return { kind: 'done', length, info: undefined };
  if (parts.length !== 5 || (parts[0] !== 'TCP4' && parts[0] !== 'TCP6')) return fail('bad PROXY v1 line');
  const [fam, src, dst, sp, dp] = parts as [string, string, string, string, string];
  const ok = fam === 'TCP4' ? isIPv4(src) && isIPv4(dst) : isIPv6(src) && isIPv6(dst);
  if (!ok) return fail('bad address in PROXY v1 line');
  const sport = port(sp);
  const dport = port(dp);
  if (sport < 0 || dport < 0) return fail('bad port in PROXY v1 line');
  return { kind: 'done', length, info: { sourceAddress: src, sourcePort: sport, destAddress: dst, destPort: dport } };
}

function port(s: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return -1;
  const n = Number(s);
  return n <= 65535 ? n : -1;
}

function parseV2(buf: Buffer): ProxyParse {
  if (!startsWithPrefix(buf, V2_SIGNATURE)) return fail('not a PROXY protocol header');
  if (buf.length < 16) return MORE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return fail('PROXY v2: unsupported version');
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return fail('PROXY v2: unknown command');
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (16 + len > V2_MAX) return fail('PROXY v2 header too long');
  if (buf.length < 16 + len) return MORE;
  const length = 16 + len;
  if (cmd === 0) return { kind: 'done', length, info: undefined }; // LOCAL: health checks of the balancer itself
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family === 0 || transport === 0) return { kind: 'done', length, info: undefined }; // UNSPEC
  if (family === 1) {
    if (len < 12) return fail('PROXY v2: short IPv4 address block');
    return {
      kind: 'done',
      length,
      info: {
        sourceAddress: ipv4(buf, 16),
        destAddress: ipv4(buf, 20),
        sourcePort: buf.readUInt16BE(24),
        destPort: buf.readUInt16BE(26),
      },
    };
  }
  if (family === 2) {
    if (len < 36) return fail('PROXY v2: short IPv6 address block');
    return {
      kind: 'done',
      length,
      info: {
        sourceAddress: ipv6(buf, 16),
        destAddress: ipv6(buf, 32),
        sourcePort: buf.readUInt16BE(48),
        destPort: buf.readUInt16BE(50),
      },
    };
  }
  // AF_UNIX or unknown: addresses that mean nothing here; keep the socket's own.
  return { kind: 'done', length, info: undefined };
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6(b: Buffer, at: number): string {
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(at + 2 * i).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(':');
  return g.slice(0, best).join(':') + '::' + g.slice(best + bestLen).join(':');
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) as plain IPv4. */
function plain(addr: string): string {
  return addr.startsWith('::ffff:') && isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

function ipv4Bytes(addr: string, out: Buffer, at: number): void {
  const p = addr.split('.');
  for (let i = 0; i < 4; i++) out[at + i] = Number(p[i]);
}

function ipv6Bytes(addr: string, out: Buffer, at: number): void {
  let a = addr;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  let tail: number[] = [];
  const lastColon = a.lastIndexOf(':');
  if (a.includes('.', lastColon)) {
    const v4 = a.slice(lastColon + 1).split('.').map(Number);
    tail = [((v4[0]! << 8) | v4[1]!) >>> 0, ((v4[2]! << 8) | v4[3]!) >>> 0];
    a = a.slice(0, lastColon + 1) + '0:0';
  }
  const halves = a.split('::');
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((x) => parseInt(x, 16)));
  const head = groups(halves[0]!);
  const rest = halves.length > 1 ? groups(halves[1]!) : [];
  const all = halves.length > 1 ? [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest] : head;
  if (tail.length === 2) {
    all[6] = tail[0]!;
    all[7] = tail[1]!;
  }
  for (let i = 0; i < 8; i++) out.writeUInt16BE(all[i]! & 0xffff, at + 2 * i);
}

/** Both addresses in one family: IPv4 when both are (or map to) IPv4, else IPv6 (IPv4 mapped). */
function family(src: string, dst: string): { v4: boolean; src: string; dst: string } | undefined {
  const s = plain(src);
  const d = plain(dst);
  const s4 = isIPv4(s);
  const d4 = isIPv4(d);
  if (s4 && d4) return { v4: true, src: s, dst: d };
  if (!(s4 || isIPv6(s)) || !(d4 || isIPv6(d))) return undefined;
  return { v4: false, src: s4 ? '::ffff:' + s : s, dst: d4 ? '::ffff:' + d : d };
}

/** The v1 header for a connection; "PROXY UNKNOWN" when the addresses are not IP addresses. */
export function encodeProxyV1(c: ProxyInfo): Buffer {
  const f = family(c.sourceAddress, c.destAddress);
  if (f === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from(`PROXY ${f.v4 ? 'TCP4' : 'TCP6'} ${f.src} ${f.dst} ${c.sourcePort} ${c.destPort}\r\n`, 'latin1');
}

/** The v2 header for a connection (command PROXY over TCP; LOCAL when the addresses are unknown). */
export function encodeProxyV2(c: ProxyInfo): Buffer {
  const f = family(c.sourceAddress, c.destAddress);
  if (f === undefined) {
    const b = Buffer.alloc(16);
    V2_SIGNATURE.copy(b, 0);
    b[12] = 0x20; // v2, LOCAL
    return b;
  }
  const len = f.v4 ? 12 : 36;
  const b = Buffer.alloc(16 + len);
  V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21; // v2, PROXY
  b[13] = f.v4 ? 0x11 : 0x21; // AF_INET / AF_INET6, STREAM
  b.writeUInt16BE(len, 14);
  if (f.v4) {
    ipv4Bytes(f.src, b, 16);
    ipv4Bytes(f.dst, b, 20);
    b.writeUInt16BE(c.sourcePort, 24);
    b.writeUInt16BE(c.destPort, 26);
  } else {
    ipv6Bytes(f.src, b, 16);
    ipv6Bytes(f.dst, b, 32);
    b.writeUInt16BE(c.sourcePort, 48);
    b.writeUInt16BE(c.destPort, 50);
  }
  return b;
}

export function encodeProxyHeader(version: ProxyVersion, c: ProxyInfo): Buffer {
  return version === 'v1' ? encodeProxyV1(c) : encodeProxyV2(c);
}

/**
 * The connection as a PROXY header describes it: the client side of an accepted socket.
 * `lazySource`: the client's address (a getpeername system call) is read when first asked for,
 * for a caller that asks only while the socket is open (a tcp listener's connection: its routing
 * by source, its PROXY header, its row of the binding table); read after the socket has closed,
 * it is empty.
 */
export function socketInfo(sock: Socket, lazySource = false): ProxyInfo {
  return new SocketInfo(sock, lazySource);
}

/**
 * A socket's own addresses. The local one (a getsockname system call) is read when first asked
 * for: only a PROXY header toward the servers uses it, so most connections never pay for it.
 */
class SocketInfo implements ProxyInfo {
  private readonly sock: Socket;
  private srcAddress: string | undefined = undefined;
  private srcPort = 0;
  private local: { readonly address: string; readonly port: number } | undefined = undefined;

  constructor(sock: Socket, lazySource: boolean) {
    this.sock = sock;
    if (!lazySource) this.sourceOf();
  }

  get sourceAddress(): string {
    return this.srcAddress ?? this.sourceOf();
  }

  get sourcePort(): number {
    if (this.srcAddress === undefined) this.sourceOf();
    return this.srcPort;
  }

  private sourceOf(): string {
    const a = this.sock.remoteAddress ?? '';
    this.srcPort = this.sock.remotePort ?? 0;
    this.srcAddress = a;
    return a;
  }

  get destAddress(): string {
    return this.localOf().address;
  }

  get destPort(): number {
    return this.localOf().port;
  }

  private localOf(): { readonly address: string; readonly port: number } {
    this.local ??= { address: this.sock.localAddress ?? '', port: this.sock.localPort ?? 0 };
    return this.local;
  }
}

/**
 * Read a PROXY header from a freshly accepted socket, then hand the socket over: `done` gets the
 * header's connection (or the socket's own when it was LOCAL / UNKNOWN), with the socket paused
 * and the bytes after the header put back (unshift) for whoever reads next. A missing, malformed
 * or late header destroys the socket and calls `rejected`.
 */
export function readProxyHeader(
  sock: Socket,
  timeoutMs: number,
  done: (info: ProxyInfo) => void,
  rejected: (reason: string) => void,
): void {
  let buf: Buffer = Buffer.alloc(0);
  let settled = false;
  const finish = (): void => {
    settled = true;
    clearTimeout(timer);
    sock.off('data', onData);
    sock.off('end', onEnd);
    sock.off('close', onEnd);
  };
  const refuse = (reason: string): void => {
    if (settled) return;
    finish();
    sock.destroy();
    rejected(reason);
  };
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const r = parseProxyHeader(buf);
    if (r.kind === 'more') return;
    if (r.kind === 'error') return refuse(r.reason);
    finish();
    sock.pause();
    if (r.length < buf.length) sock.unshift(buf.subarray(r.length));
    done(r.info ?? socketInfo(sock));
  };
  const onEnd = (): void => refuse('connection closed before the PROXY header');
  const timer = setTimeout(() => refuse('PROXY header timeout'), timeoutMs);
  sock.on('data', onData);
  sock.on('end', onEnd);
  sock.on('close', onEnd);
}
