import { createHash } from 'node:crypto';
import { constants as h2c, createServer as createH2Server, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Outcome } from '../../core/outcome.js';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from '../../observability/logger.js';
import type { CertificateStore, LoadedCertificate } from '../../tls/cert-store.js';
import { clientCertInfo, type ClientCertInfo } from '../../tls/client-cert.js';
import { OcspStapler } from '../../tls/ocsp.js';
import { TlsTermination, type TlsTerminationSettings } from '../../tls/termination.js';
import { H2GuardedSocket } from '../h2/guarded-socket.js';
import type { H2FieldGuard } from '../h2/field-guard.js';
import { H2StreamSocket } from '../h2/h2-stream-socket.js';
import { socketInfo, type ProxyInfo } from '../../net/proxy-protocol.js';
import { HttpListener, type HttpListenerSettings } from './listener.js';
import type { HttpObserver } from '../../observability/records.js';
import { HttpSession } from './session.js';

/** The limits of the h2 connections (`limits.h2*`); fixed for the listener's life (a change rebuilds it). */
export interface H2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS. */
  readonly maxConcurrentStreams: number;
  /** What one h2 session may hold, in bytes (a whole number of megabytes, 10^6 bytes, as nghttp2 counts it). */
  readonly maxSessionMemoryBytes: number;
}

export interface HttpsListenerSettings extends HttpListenerSettings {
  readonly tls: TlsTerminationSettings;
  /** Offer h2 by ALPN (besides http/1.1), with these limits; false: HTTP/1.1 only. */
  readonly h2: H2Limits | false;
}

/**
 * An `https` listener: TLS termination (certificates chosen by SNI, reloaded when their files
 * change, session resumption by id and by ticket, local or shared), then HTTP/1.1 or h2 as ALPN
 * chose. HTTP/1.1 connections run an HttpSession over the TLS socket; each h2 stream runs an
 * HttpSession over an H2StreamSocket, so both take the same routes, persistence and header rules.
 */
export class HttpsListener extends HttpListener {
  readonly certificates: CertificateStore;
  private readonly tlsSettings: TlsTerminationSettings;
  /** Certificates by SNI, reloaded from disk, handshakes, session resumption (shared with redirect listeners). */
  private readonly tls: TlsTermination;
  private readonly tlsServer: TlsServer;
  /** The h2 side, when h2 is offered. */
  private readonly h2Server: Http2Server | undefined;
  private readonly h2Sessions = new Set<ServerHttp2Session>();
  /** Client connections from PROXY headers, by the peer's "address port", until the handshake ends. */
  private readonly proxied = new Map<string, ProxyInfo>();
  /** h2 session → its client connection, TLS server name and client certificate. */
  private readonly h2Clients = new WeakMap<ServerHttp2Session, H2Client>();
  private nextH2Client: H2Client | undefined = undefined;
  /** OCSP staplers of the certificates with `ocsp`, by the SHA-256 of their DER (hex). */
  readonly staplers = new Map<string, OcspStapler>();
  private running = false;
  private readonly log: Logger | undefined;

  /** Loads the certificates now: a CertificateError names a file that does not load. */
  constructor(settings: HttpsListenerSettings, observer?: HttpObserver, log?: Logger) {
    super({ ...settings, proto: 'https' }, observer);
    this.log = log;
    const t = settings.tls;
    this.tlsSettings = t;
    this.tls = new TlsTermination(t, {
      listener: settings.name,
      alpn: settings.h2 !== false ? ['h2', 'http/1.1'] : ['http/1.1'],
      handshakeTimeoutMs: settings.limits.headerTimeoutMs,
      onSecure: this.onSecure,
      onHandshakeError: () => this.onRejected(Outcome.of('tls-handshake').reason),
      onReloaded: () => this.syncStaplers(),
      log,
    });
    this.certificates = this.tls.certificates;
    this.tlsServer = this.tls.server;
    this.syncStaplers();
    if (this.staplers.size > 0) this.tlsServer.on('OCSPRequest', this.onOcspRequest);
    const h2 = settings.h2;
    this.h2Server =
      h2 === false
        ? undefined
        : createH2Server({
            settings: { maxConcurrentStreams: h2.maxConcurrentStreams, maxHeaderListSize: settings.limits.maxHeaderBytes },
            maxSessionMemory: Math.max(1, Math.floor(h2.maxSessionMemoryBytes / 1_000_000)),
          });
    this.h2Server?.on('session', this.onH2Session);
    this.h2Server?.on('stream', this.onH2Stream);
    this.h2Server?.on('sessionError', noop);
  }

  /** A client asked for the certificate's status: the stapled response, if one is current. */
  private readonly onOcspRequest = (certificate: Buffer, _issuer: Buffer, cb: (err: Error | null, resp?: Buffer) => void): void => {
    const s = this.staplers.get(createHash('sha256').update(certificate).digest('hex'));
    cb(null, s?.current());
  };

  /** One stapler per certificate with `ocsp`: kept for a certificate still served, made for a new one. */
  private syncStaplers(): void {
    const want = new Map<string, LoadedCertificate>();
    for (const c of this.certificates.certificates) if (c.ocsp !== undefined) want.set(c.fingerprint256.replace(/:/g, '').toLowerCase(), c);
    for (const [fp, s] of this.staplers) {
      if (!want.has(fp)) {
        s.stop();
        this.staplers.delete(fp);
      }
    }
    for (const [fp, c] of want) {
      if (this.staplers.has(fp)) continue;
      const names = c.names.join(',');
      const s = new OcspStapler(c.ocsp!, {
        onError: (err) => this.log?.warn(`listener ${this.name}: OCSP response for ${names} not updated (the last good one, if current, is stapled)`, { responder: c.ocsp!.url, error: err.message }),
        onUpdate: (a) => this.log?.debug(`listener ${this.name}: OCSP response for ${names}`, { status: a.status, nextUpdate: a.nextUpdate === undefined ? '' : new Date(a.nextUpdate).toISOString() }),
      });
      this.staplers.set(fp, s);
      if (this.running) s.start();
    }
  }

  override async start(): Promise<void> {
    await this.tls.start();
    try {
      await super.start();
    } catch (err) {
      this.tls.stop();
      throw err;
    }
    this.running = true;
    for (const s of this.staplers.values()) s.start();
  }

  /**
   * Re-read the certificate files if they changed; new handshakes use the new certificates at
   * once (connections already made keep theirs). A file that does not load keeps the old ones.
   */
  reloadCertificates(): Promise<boolean> {
    return this.tls.reloadCertificates();
  }

  protected override pendingConnections(): number {
    return this.handshaking + this.tls.pending;
  }

  protected override open(sock: Socket, peer: ProxyInfo | undefined): void {
    if (peer !== undefined) {
      const key = `${sock.remoteAddress} ${sock.remotePort}`;
      this.proxied.set(key, peer);
      sock.once('close', () => this.proxied.delete(key));
    }
    this.tls.accept(sock);
  }

  private readonly onSecure = (s: TLSSocket): void => {
    let peer: ProxyInfo | undefined;
    if (this.proxied.size > 0) {
      const key = `${s.remoteAddress} ${s.remotePort}`;
      peer = this.proxied.get(key);
      if (peer !== undefined) this.proxied.delete(key);
    }
    const cert = this.tlsSettings.clientAuth === undefined ? undefined : clientCertInfo(s);
    if (s.alpnProtocol === 'h2' && this.h2Server !== undefined) {
      // nghttp2 drops malformed fields silently: the guard sees every header block first (RFC 9113 §8.2.1).
      const guarded = new H2GuardedSocket(s);
      this.nextH2Client = { peer: peer ?? socketInfo(s), servername: s.servername ?? false, cert, guard: guarded.guard, tls: s };
      this.h2Server.emit('connection', guarded);
      return;
    }
    this.sessions.add(new HttpSession(s, this, peer, cert));
  };

  private readonly onH2Session = (session: ServerHttp2Session): void => {
    const client = this.nextH2Client;
    if (client !== undefined) this.h2Clients.set(session, client);
    this.nextH2Client = undefined;
    this.h2Sessions.add(session);
    session.on('close', () => this.h2Sessions.delete(session));
    session.on('error', noop);
    // HTTP/2 has no half-closed connection: a client that ends its side is gone. Without this, a
    // session that nghttp2 had ended with GOAWAY while a stream was in flight kept its TLS socket
    // (half-open, allowHalfOpen) and the accepted socket under it open, and stop() waited forever.
    client?.tls.once('end', () => session.destroy());
    const idle = this.limits.keepAliveTimeoutMs;
    if (idle > 0) session.setTimeout(idle, () => session.close());
  };

  private readonly onH2Stream = (stream: ServerHttp2Stream, _headers: unknown, _flags: number, rawHeaders: string[]): void => {
    stream.on('error', noop);
    const c = this.h2Clients.get(stream.session as ServerHttp2Session);
    if (c?.guard.take(stream.id ?? 0) === true) {
      // A malformed request (a field nghttp2 dropped): reset the stream, pass nothing on.
      this.onRejected('h2-malformed');
      stream.close(h2c.NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    const sock = new H2StreamSocket(stream, rawHeaders, stream.endAfterHeaders, c?.peer.sourceAddress ?? '', c?.servername ?? false);
    this.sessions.add(new HttpSession(sock as unknown as Socket, this, c?.peer, c?.cert));
  };

  override async stop(graceMs: number): Promise<void> {
    this.tls.stop();
    this.running = false;
    for (const s of this.staplers.values()) s.stop();
    // GOAWAY: h2 clients open no new stream here; streams in flight finish (or are cut with the rest).
    for (const s of this.h2Sessions) s.close();
    // Connections still in their TLS handshake are no session yet: cut them with the rest at the
    // end of the grace period, rather than wait for their handshake timeout.
    const cut = setTimeout(() => this.tls.cutHandshakes(), graceMs);
    await super.stop(graceMs);
    clearTimeout(cut);
    for (const s of this.h2Sessions) s.destroy();
  }
}

interface H2Client {
  readonly peer: ProxyInfo;
  readonly servername: string | false;
  readonly cert: ClientCertInfo | undefined;
  readonly guard: H2FieldGuard;
  /** The TLS socket under the session. */
  readonly tls: TLSSocket;
}

function noop(): void {}
