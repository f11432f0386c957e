/**
 * A `dns` listener: DNS over UDP and TCP on one address and port, answering through a
 * Responder. UDP answers pass response-rate limiting; TCP carries length-prefixed messages,
 * several queries per connection (answered in order), with an idle timeout and a bound on
 * open connections and on unread output.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { Outcome } from '../core/outcome.js';
import { admit, drain, listen } from '../net/accept.js';
import type { Responder } from './responder.js';
import type { ResponseRateLimiter } from './rrl.js';

export interface DnsTcpLimits {
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxConnections: number;
  /** 0 = unlimited. */
  readonly maxQueriesPerConnection: number;
}

export interface DnsListenerSettings {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly responder: Responder;
  readonly rateLimiter: ResponseRateLimiter | undefined;
  readonly tcp: DnsTcpLimits;
}

/** Told of every message answered or dropped (metrics: portico_dns_queries_total). */
export interface DnsObserver {
  dnsQuery(listener: string, zone: string, rcode: string, transport: 'udp' | 'tcp'): void;
}

export interface QueryCount {
  readonly zone: string;
  readonly rcode: string;
  n: number;
}

/** Unread response bytes a TCP client may leave queued before Portico stops reading its queries. */
/** The label of a query response-rate limiting dropped. */
const RATE_LIMITED = Outcome.of('dns-rate-limited').reason;

const MAX_TCP_BACKLOG = 256 * 1024;
/** Tries to find a port free for both UDP and TCP when the configured port is 0. */
const PORT_TRIES = 20;

/** Structurally an app ListenerService (start, stop, name, protocol, address). */
export class DnsListener {
  readonly protocol = 'dns';
  readonly name: string;
  responder: Responder;
  rateLimiter: ResponseRateLimiter | undefined;
  /** Messages handled, by zone ('' outside every zone) and rcode (or DROPPED, RATE-LIMITED). */
  private readonly counts = new Map<string, QueryCount>();
  private readonly host: string;
  private port: number;
  private tcpLimits: DnsTcpLimits;
  private readonly observer: DnsObserver | undefined;
  private udp: UdpSocket | undefined;
  private tcp: NetServer | undefined;
  private readonly conns = new Set<Socket>();

  constructor(settings: DnsListenerSettings, observer?: DnsObserver) {
    this.name = settings.name;
    this.host = settings.host;
    this.port = settings.port;
    this.responder = settings.responder;
    this.rateLimiter = settings.rateLimiter;
    this.tcpLimits = settings.tcp;
    this.observer = observer;
  }

  /**
   * New zones, tables and limits (reload), keeping the sockets and open TCP connections. The
   * rate limiter keeps its counts when its settings did not change.
   */
  update(settings: DnsListenerSettings): void {
    this.responder = settings.responder;
    if (settings.rateLimiter === undefined || this.rateLimiter === undefined || !settings.rateLimiter.sameSettings(this.rateLimiter)) {
      this.rateLimiter = settings.rateLimiter;
    }
    this.tcpLimits = settings.tcp;
  }

  get address(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  /** How many messages got `rcode` in `zone`. */
  count(zone: string, rcode: string): number {
    return this.counts.get(`${zone} ${rcode}`)?.n ?? 0;
  }

  /** Every count (for metrics: portico_dns_queries_total). */
  queryCounts(): IterableIterator<Readonly<QueryCount>> {
    return this.counts.values();
  }

  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const tcp = createServer({ allowHalfOpen: true, noDelay: true }, this.accept);
      const port = await listen(tcp, this.host, this.port);
      // reuseAddr lets the UDP socket share a port with an mDNS responder bound to the wildcard
      // address (5353 is mDNS's port); the TCP socket, bound first without it, keeps two Portico
      // listeners from sharing a port.
      const udp = createSocket({ type: this.host.includes(':') ? 'udp6' : 'udp4', reuseAddr: true, lookup: literalAddress });
      try {
        await bindUdp(udp, this.host, port);
      } catch (err) {
        await new Promise<void>((r) => tcp.close(() => r()));
        // With port 0 the TCP port may be taken for UDP: try another.
        if (this.port === 0 && attempt < PORT_TRIES && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw err;
      }
      udp.on('error', noop); // ICMP errors reported on send must not end the listener
      udp.on('message', this.onUdp);
      this.tcp = tcp;
      this.udp = udp;
      this.port = port;
      return;
    }
  }

  private readonly onUdp = (msg: Buffer, rinfo: RemoteInfo): void => {
    const rrl = this.rateLimiter;
    let resp: Buffer | undefined;
    if (rrl === undefined) {
      resp = this.responder.handle(msg, 'udp', rinfo.address);
    } else {
      const verdict = rrl.check(rinfo.address);
      if (verdict === 'drop') {
        this.record('', RATE_LIMITED, 'udp');
        return;
      }
      resp = verdict === 'slip' ? this.responder.truncatedFor(msg) : this.responder.handle(msg, 'udp', rinfo.address);
    }
    const o = this.responder.outcome;
    this.record(o.zone, o.rcode, 'udp');
    if (resp === undefined) return;
    // Source port 0 cannot be answered (dgram throws on it): such a datagram is only read.
    if (rinfo.port === 0) return;
    try {
      this.udp?.send(resp, rinfo.port, rinfo.address);
    } catch {
      // a reply that cannot be sent ends here, never the listener
    }
  };

  private record(zone: string, rcode: string, transport: 'udp' | 'tcp'): void {
    const k = `${zone} ${rcode}`;
    const c = this.counts.get(k);
    if (c !== undefined) c.n++;
    else this.counts.set(k, { zone, rcode, n: 1 });
    this.observer?.dnsQuery(this.name, zone, rcode, transport);
  }

  private readonly accept = (sock: Socket): void => {
    if (!admit(sock, this.name, undefined, this.conns.size, this.tcpLimits.maxConnections, undefined, false)) return;
    this.conns.add(sock);
    sock.on('close', () => this.conns.delete(sock));
    // The idle deadline restarts on each answer, not on each byte: a client that drips the bytes
    // of a query (or sends only messages that get no answer) is closed after idleTimeout all the same.
    const idleMs = this.tcpLimits.idleTimeoutMs;
    const idle = setTimeout(() => sock.destroy(), idleMs);
    sock.once('close', () => clearTimeout(idle));
    const client = sock.remoteAddress ?? '';
    let buf: Buffer = Buffer.alloc(0);
    let answered = 0;
    let ended = false;
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      sock.cork();
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const resp = this.responder.handle(msg, 'tcp', client);
        const o = this.responder.outcome;
        this.record(o.zone, o.rcode, 'tcp');
        if (resp !== undefined) {
          const prefix = Buffer.allocUnsafe(2);
          prefix.writeUInt16BE(resp.length, 0);
          sock.write(prefix);
          sock.write(resp);
          idle.refresh();
        }
        const limit = this.tcpLimits.maxQueriesPerConnection;
        if (limit > 0 && ++answered >= limit) {
          ended = true;
          buf = Buffer.alloc(0);
          sock.end();
          break;
        }
      }
      sock.uncork();
      if (!ended && sock.writableLength > MAX_TCP_BACKLOG) {
        sock.pause();
        sock.once('drain', () => sock.resume());
      }
    });
    sock.on('end', () => {
      if (!ended) sock.end();
    });
  };

  /** Stop answering; TCP connections are closed once their written answers are sent, or after graceMs. */
  async stop(graceMs: number): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    // Both sockets are released at once (synchronously), so that a reload can bind the same port.
    const udpClosed = udp === undefined ? Promise.resolve() : new Promise<void>((r) => udp.close(() => r()));
    for (const s of this.conns) s.end();
    if (tcp !== undefined) await drain(tcp, this.conns, graceMs, destroy);
    await udpClosed;
  }
}

function bindUdp(sock: UdpSocket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (err: Error): void => {
      sock.close();
      reject(err);
    };
    sock.once('error', onErr);
    sock.bind({ address: host, port }, () => {
      sock.off('error', onErr);
      resolve();
    });
  });
}

/**
 * Replies go to the address a datagram came from, always an IP literal: no resolver call, and the
 * send is not deferred to the next tick as it is through dns.lookup.
 */
function literalAddress(address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

function noop(): void {}

function destroy(s: Socket): void {
  s.destroy();
}
