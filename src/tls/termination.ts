/**
 * TLS termination for the listeners that terminate TLS (https, redirect): the certificates chosen
 * by SNI and re-read when their files change (CertificateStore), the tls.Server that runs the
 * handshakes of the sockets a listener accepted and admitted, and session resumption by id and
 * by ticket (SessionResumption, local or shared). The listener gets each connection once its
 * handshake is done.
 */
import type { Socket } from 'node:net';
import { createServer, type SecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../observability/logger.js';
import { CertificateStore, type CertificateFiles } from './cert-store.js';
import type { SessionResumption } from './session-resumption.js';
import { LiveSet } from '../net/live-set.js';

/** The `tls` section of a listener, as the termination takes it. */
export interface TlsTerminationSettings {
  readonly certificates: readonly CertificateFiles[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
  readonly sessionTimeoutMs: number;
  /** How often the certificate files are checked for changes; 0 = never. */
  readonly reloadCheckMs: number;
  readonly resumption: SessionResumption;
  /** Client certificates (mutual TLS): CA and CRL files, and whether one is required. */
  readonly clientAuth?: { readonly ca: string; readonly crl?: string | undefined; readonly verify: 'required' | 'optional' } | undefined;
}

export interface TlsTerminationOptions {
  /** The listener's name (session id context, log lines). */
  readonly listener: string;
  /** ALPN protocols offered, in order of preference. */
  readonly alpn: readonly string[];
  /** Longest handshake; then the connection is closed. */
  readonly handshakeTimeoutMs: number;
  /** A connection whose handshake completed. */
  readonly onSecure: (s: TLSSocket) => void;
  /** A handshake that failed (not TLS, no common version or cipher, timeout ...); the socket is then destroyed. */
  readonly onHandshakeError: () => void;
  /** New certificates are in force (after a reload). */
  readonly onReloaded?: (() => void) | undefined;
  readonly log?: Logger | undefined;
}

/** The slot a socket keeps in its listener's set of handshakes in progress. */
const handshaking = Symbol('handshaking');

export class TlsTermination {
  readonly certificates: CertificateStore;
  readonly server: TlsServer;
  private readonly t: TlsTerminationSettings;
  private readonly o: TlsTerminationOptions;
  private reloadTimer: NodeJS.Timeout | undefined;
  /** Accepted sockets whose handshake has not completed. */
  private readonly handshaking = new LiveSet<Socket>(handshaking);
  /** An accepted socket's 'close' (this = the socket): made once, not per connection. */
  private readonly forgetHandshake: (this: Socket) => void;

  /** Loads the certificates now: a CertificateError names a file that does not load. */
  constructor(t: TlsTerminationSettings, o: TlsTerminationOptions) {
    this.t = t;
    this.o = o;
    const handshaking = this.handshaking;
    this.forgetHandshake = function (this: Socket): void {
      handshaking.delete(this);
    };
    const sessionTimeout = Math.max(1, Math.round(t.sessionTimeoutMs / 1000));
    this.certificates = new CertificateStore(t.certificates, { minVersion: t.minVersion, ciphers: t.ciphers, sessionTimeout }, `portico:${o.listener}`, t.clientAuth);
    const def = this.certificates.defaultCertificate;
    const ca = t.clientAuth;
    this.server = createServer({
      ...this.certificates.sharedOptions,
      cert: def.cert,
      key: def.key,
      honorCipherOrder: true,
      // verify: required — OpenSSL refuses a handshake without a certificate, Node.js closes one whose certificate does not verify.
      requestCert: ca !== undefined,
      rejectUnauthorized: ca?.verify === 'required',
      ALPNProtocols: [...o.alpn],
      SNICallback: this.sni,
      handshakeTimeout: o.handshakeTimeoutMs,
      ticketKeys: t.resumption.key,
    });
    this.server.on('secureConnection', this.onSecure);
    this.server.on('tlsClientError', this.onTlsError);
    this.server.on('newSession', t.resumption.onNewSession);
    this.server.on('resumeSession', t.resumption.onResumeSession);
  }

  private readonly sni = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.certificates.contextFor(servername));
  };

  private readonly onSecure = (s: TLSSocket): void => {
    // 'close' comes once: `on` spares the wrapper `once` makes per connection.
    s.on('close', closeParent);
    // Half-close, taken away for the handshake (accept), is the listener's again.
    s.allowHalfOpen = true;
    const parent = parentOf(s);
    if (parent !== undefined) this.handshaking.delete(parent);
    this.o.onSecure(s);
  };

  private readonly onTlsError = (_err: Error, s: TLSSocket): void => {
    this.o.onHandshakeError();
    s.destroy();
    closeParent.call(s);
  };

  /**
   * Run the TLS handshake on an accepted connection; `onSecure` gets it when it is done. Until
   * then the connection counts in `pending`, and a client that closes ends it at once (its TLS
   * socket, which takes `allowHalfOpen` from this one, is not left half-open until the timeout).
   */
  accept(sock: Socket): void {
    this.handshaking.add(sock);
    sock.on('close', this.forgetHandshake);
    sock.allowHalfOpen = false;
    this.server.emit('connection', sock);
  }

  /** Connections in their handshake now (they count toward the listener's maxConnections). */
  get pending(): number {
    return this.handshaking.size;
  }

  /** Close every connection still in its handshake (the end of a stop's grace period). */
  cutHandshakes(): void {
    for (const sock of this.handshaking) sock.destroy();
  }

  /**
   * The first ticket key (from the shared store with `sessionCache: shared`) and the files'
   * stamps; then the files are checked every `reloadCheckMs`. Call before the listener binds.
   */
  async start(): Promise<void> {
    const t = this.t;
    await t.resumption.start((key) => this.server.setTicketKeys(key));
    try {
      await this.certificates.remember();
    } catch (err) {
      t.resumption.stop();
      throw err;
    }
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
    const name = this.o.listener;
    try {
      const changed = await this.certificates.reloadIfChanged();
      if (!changed) return false;
      const def = this.certificates.defaultCertificate;
      this.server.setSecureContext({ ...this.certificates.sharedOptions, cert: def.cert, key: def.key, honorCipherOrder: true });
      this.server.setTicketKeys(this.t.resumption.key);
      this.o.onReloaded?.();
      this.o.log?.info(`listener ${name}: certificates reloaded`, {
        names: this.certificates.certificates.flatMap((c) => c.names).join(','),
      });
      return true;
    } catch (err) {
      this.o.log?.error(`listener ${name}: certificates not reloaded (the previous ones stay)`, { error: (err as Error).message });
      return false;
    }
  }

  /** No more reload checks nor ticket key rotation. */
  stop(): void {
    if (this.reloadTimer !== undefined) clearInterval(this.reloadTimer);
    this.reloadTimer = undefined;
    this.t.resumption.stop();
  }
}

/**
 * The accepted socket a TLS socket wraps (`_parent`, where Node.js keeps it). Node.js closes the
 * TLS socket when that socket closes, but not the reverse: when the TLS side ends first, the
 * accepted socket and its file descriptor would stay open until some later timeout, and the
 * listener's stop would wait for it. It is destroyed with its TLS socket.
 */
function closeParent(this: TLSSocket): void {
  const parent = parentOf(this);
  if (parent !== undefined && !parent.destroyed) parent.destroy();
}

function parentOf(s: TLSSocket): Socket | undefined {
  return (s as unknown as { _parent?: Socket | null })._parent ?? undefined;
}
