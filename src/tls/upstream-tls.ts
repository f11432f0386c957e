/**
 * TLS toward the servers (`tls:` on a pool): verification on by default (system CAs, or the
 * pool's `ca`), SNI from `servername` or the server's host name, and TLS session resumption
 * (the last session of each server is offered on the next connection to it).
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';

export interface UpstreamTlsSettings {
  /** PEM of the CAs that sign the servers' certificates; undefined = the system CAs. */
  readonly ca: string | undefined;
  /** SNI and the name verified; undefined = the server's host (no SNI for an IP address). */
  readonly servername: string | undefined;
  readonly verify: boolean;
}

/** The TLS settings of one pool, with the sessions its connections may resume. */
export class UpstreamTls {
  readonly settings: UpstreamTlsSettings;
  /** The last session of each server (host:port); bounded by the number of servers. */
  private readonly sessions = new Map<string, Buffer>();
  private readonly alpn: string[] | undefined;

  constructor(settings: UpstreamTlsSettings, alpn?: readonly string[]) {
    this.settings = settings;
    this.alpn = alpn === undefined ? undefined : [...alpn];
  }

  /** From the pool's configuration; `ca` is a file, read now. Throws (naming the pool) when it cannot be read. */
  static fromConfig(
    pool: string,
    c: { readonly ca?: string | undefined; readonly servername?: string | undefined; readonly verify: boolean },
    alpn?: readonly string[],
  ): UpstreamTls {
    let ca: string | undefined;
    if (c.ca !== undefined) {
      try {
        ca = readFileSync(c.ca, 'utf8');
      } catch (err) {
        throw new Error(`pool ${pool}: tls.ca: cannot read ${c.ca} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`pool ${pool}: tls.ca: ${c.ca} holds no PEM certificate`);
    }
    return new UpstreamTls({ ca, servername: c.servername, verify: c.verify }, alpn);
  }

  /**
   * Open a TLS connection; it emits 'secureConnect' once the handshake (and verification)
   * succeeded. `preface` (a PROXY protocol header) is sent in clear before the handshake.
   */
  connect(host: string, port: number, preface?: Buffer): TLSSocket {
    const key = host + ':' + port;
    const s = this.settings;
    const servername = s.servername ?? (isIP(host) === 0 ? host : undefined);
    let raw: Socket | undefined;
    if (preface !== undefined) {
      raw = netConnect({ host, port });
      raw.setNoDelay(true);
      raw.write(preface);
    }
    const sock = connect({
      socket: raw,
      host,
      port,
      servername,
      ca: s.ca,
      rejectUnauthorized: s.verify,
      session: this.sessions.get(key),
      ALPNProtocols: this.alpn,
    });
    sock.on('session', (session: Buffer) => this.sessions.set(key, session));
    return sock;
  }
}
