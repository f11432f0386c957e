import { createHash } from 'node:crypto';
import { createServer as createH2Server, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../../observability/logger.js';
import { CertificateStore, type CertificateFiles, type LoadedCertificate } from '../../tls/cert-store.js';
import { clientCertInfo, type ClientCertInfo } from '../../tls/client-cert.js';
import { OcspStapler } from '../../tls/ocsp.js';
import type { SessionResumption } from '../../tls/session-resumption.js';
import { H2StreamSocket } from '../h2/h2-stream-socket.js';
import { socketInfo, type ProxyInfo } from '../proxy-protocol.js';
import { HttpListener, type HttpListenerSettings, type HttpObserver } from './listener.js';
import { HttpSession } from './session.js';

export interface HttpsTlsSettings {
  readonly certificates: readonly CertificateFiles[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
  /** Offer h2 by ALPN (besides http/1.1). */
  readonly http2: boolean;
  readonly sessionTimeoutMs: number;
  /** How often the certificate files are checked for changes; 0 = never. */
  readonly reloadCheckMs: number;
  readonly resumption: SessionResumption;
  /** Client certificates (mutual TLS): CA and CRL files, and whether one is required. */
  readonly clientAuth?: { readonly ca: string; readonly crl?: string | undefined; readonly verify: 'required' | 'optional' } | undefined;
}

export interface HttpsListenerSettings extends HttpListenerSettings {
  readonly tls: HttpsTlsSettings;
}

/** HTTP/2 limits toward clients. */
const H2_MAX_CONCURRENT_STREAMS = 128;

/**
 * An `https` listener: TLS termination (certificates chosen by SNI, reloaded when their files
 * change, session resumption by id and by ticket, local or shared), then HTTP/1.1 or h2 as ALPN
 * chose. HTTP/1.1 connections run an HttpSession over the TLS socket; each h2 stream runs an
 * HttpSession over an H2StreamSocket, so both take the same routes, persistence and header rules.
 */
export class HttpsListener extends HttpListener {
  override readonly protocol = 'https';
  readonly certificates: CertificateStore;
  private readonly tlsSettings: HttpsTlsSettings;
  private readonly tlsServer: TlsServer;
  private readonly h2Server: Http2Server;
  private readonly h2Sessions = new Set<ServerHttp2Session>();
  /** Client connections from PROXY headers, by the peer's "address port", until the handshake ends. */
  private readonly proxied = new Map<string, ProxyInfo>();
  /** h2 session → its client connection, TLS server name and client certificate. */
  private readonly h2Clients = new WeakMap<ServerHttp2Session, H2Client>();
  private nextH2Client: H2Client | undefined = undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
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
    const sessionTimeout = Math.max(1, Math.round(t.sessionTimeoutMs / 1000));
    this.certificates = new CertificateStore(t.certificates, { minVersion: t.minVersion, ciphers: t.ciphers, sessionTimeout }, `portico:${settings.name}`, t.clientAuth);
    const def = this.certificates.defaultCertificate;
    const ca = t.clientAuth;
    this.tlsServer = createTlsServer({
      ...this.certificates.sharedOptions,
      cert: def.cert,
      key: def.key,
      honorCipherOrder: true,
      // verify: required — OpenSSL refuses a handshake without a certificate, Node.js closes one whose certificate does not verify.
      requestCert: ca !== undefined,
      rejectUnauthorized: ca?.verify === 'required',
      ALPNProtocols: t.http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      SNICallback: this.sni,
      handshakeTimeout: settings.limits.headerTimeoutMs,
      ticketKeys: t.resumption.key,
    });
    this.tlsServer.on('secureConnection', this.onSecure);
    this.tlsServer.on('tlsClientError', this.onTlsError);
    this.tlsServer.on('newSession', t.resumption.onNewSession);
    this.tlsServer.on('resumeSession', t.resumption.onResumeSession);
    this.syncStaplers();
    if (this.staplers.size > 0) this.tlsServer.on('OCSPRequest', this.onOcspRequest);
    this.h2Server = createH2Server({
      settings: { maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS, maxHeaderListSize: settings.limits.maxHeaderBytes },
      maxSessionMemory: 16,
    });
    this.h2Server.on('session', this.onH2Session);
    this.h2Server.on('stream', this.onH2Stream);
    this.h2Server.on('sessionError', noop);
  }

  private readonly sni = (servername: string, cb: (err: Error | null, ctx?: import('node:tls').SecureContext) => void): void => {
    cb(null, this.certificates.contextFor(servername));
  };

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
    const t = this.tlsSettings;
    await t.resumption.start((key) => this.tlsServer.setTicketKeys(key));
    try {
      await this.certificates.remember();
      await super.start();
    } catch (err) {
      t.resumption.stop();
      throw err;
    }
    this.running = true;
    for (const s of this.staplers.values()) s.start();
    if (t.reloadCheckMs > 0) {
      this.reloadTimer = setInterval(() => void this.reloadCertificates(), t.reloadCheckMs);
      this.reloadTimer.unref();
    }
  }

  /**
   * Re-read the certificate files if they changed; new handshakes use the new certificates at
   * once (connections already made keep theirs). A file that does not load keeps the old ones.
   */
  async reloadCertificates(): Promise<boolean> {
    try {
      const changed = await this.certificates.reloadIfChanged();
      if (!changed) return false;
      const def = this.certificates.defaultCertificate;
      const t = this.tlsSettings;
      this.tlsServer.setSecureContext({ ...this.certificates.sharedOptions, cert: def.cert, key: def.key, honorCipherOrder: true });
      this.tlsServer.setTicketKeys(t.resumption.key);
      this.syncStaplers();
      this.log?.info(`listener ${this.name}: certificates reloaded`, {
        names: this.certificates.certificates.flatMap((c) => c.names).join(','),
      });
      return true;
    } catch (err) {
      this.log?.error(`listener ${this.name}: certificates not reloaded (the previous ones stay)`, { error: (err as Error).message });
      return false;
    }
  }

  protected override open(sock: Socket, peer: ProxyInfo | undefined): void {
    if (peer !== undefined) {
      const key = `${sock.remoteAddress} ${sock.remotePort}`;
      this.proxied.set(key, peer);
      sock.once('close', () => this.proxied.delete(key));
    }
    this.tlsServer.emit('connection', sock);
  }

  private readonly onSecure = (s: TLSSocket): void => {
    let peer: ProxyInfo | undefined;
    if (this.proxied.size > 0) {
      const key = `${s.remoteAddress} ${s.remotePort}`;
      peer = this.proxied.get(key);
      if (peer !== undefined) this.proxied.delete(key);
    }
    const cert = this.tlsSettings.clientAuth === undefined ? undefined : clientCertInfo(s);
    if (s.alpnProtocol === 'h2') {
      this.nextH2Client = { peer: peer ?? socketInfo(s), servername: s.servername ?? false, cert };
      this.h2Server.emit('connection', s);
      return;
    }
    this.sessions.add(new HttpSession(s, this, peer, cert));
  };

  private readonly onTlsError = (_err: Error, s: TLSSocket): void => {
    this.onRejected('tls-handshake');
    s.destroy();
  };

  private readonly onH2Session = (session: ServerHttp2Session): void => {
    if (this.nextH2Client !== undefined) this.h2Clients.set(session, this.nextH2Client);
    this.nextH2Client = undefined;
    this.h2Sessions.add(session);
    session.on('close', () => this.h2Sessions.delete(session));
    session.on('error', noop);
    const idle = this.limits.keepAliveTimeoutMs;
    if (idle > 0) session.setTimeout(idle, () => session.close());
  };

  private readonly onH2Stream = (stream: ServerHttp2Stream, _headers: unknown, _flags: number, rawHeaders: string[]): void => {
    stream.on('error', noop);
    const c = this.h2Clients.get(stream.session as ServerHttp2Session);
    const sock = new H2StreamSocket(stream, rawHeaders, stream.endAfterHeaders, c?.peer.sourceAddress ?? '', c?.servername ?? false);
    this.sessions.add(new HttpSession(sock as unknown as Socket, this, c?.peer, c?.cert));
  };

  override async stop(graceMs: number): Promise<void> {
    if (this.reloadTimer !== undefined) clearInterval(this.reloadTimer);
    this.reloadTimer = undefined;
    this.tlsSettings.resumption.stop();
    this.running = false;
    for (const s of this.staplers.values()) s.stop();
    // GOAWAY: h2 clients open no new stream here; streams in flight finish (or are cut with the rest).
    for (const s of this.h2Sessions) s.close();
    await super.stop(graceMs);
    for (const s of this.h2Sessions) s.destroy();
  }
}

interface H2Client {
  readonly peer: ProxyInfo;
  readonly servername: string | false;
  readonly cert: ClientCertInfo | undefined;
}

function noop(): void {}
