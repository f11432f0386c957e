/**
 * The certificates of an https listener, chosen by SNI: an exact name first, then a wildcard
 * certificate for the parent domain (`*.example.com` covers one label, as TLS clients check),
 * then the default (the first certificate). Names come from each certificate's DNS subject
 * alternative names (or its CN when it has none). The files are re-read when they change, and
 * the new contexts replace the old ones at once; a file that does not load keeps the old one.
 * With client certificates (mutual TLS), every context carries the client CA and CRL, which are
 * watched and reloaded the same way.
 */
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { constants as cryptoConstants, createHash, X509Certificate } from 'node:crypto';
import { ocspTarget, type OcspTarget } from './ocsp.js';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
  /** Staple OCSP responses fetched from the certificate's responder. */
  readonly ocsp?: boolean | undefined;
}

/** Options every context of the listener shares (versions, ciphers). */
export type ContextOptions = Pick<SecureContextOptions, 'minVersion' | 'ciphers' | 'sessionTimeout' | 'ecdhCurve'>;

/** Client certificates: the CA file they must chain to, and an optional CRL file. */
export interface ClientAuthFiles {
  readonly ca: string;
  readonly crl?: string | undefined;
}

/** The client CA and CRL texts every context carries. */
interface ClientAuthTexts {
  readonly ca: string;
  readonly crl: string | undefined;
}

/** One loaded certificate. */
export interface LoadedCertificate {
  readonly files: CertificateFiles;
  readonly names: readonly string[];
  readonly notAfter: string;
  readonly fingerprint256: string;
  /** The PEM texts (for a tls.Server's default context). */
  readonly cert: string;
  readonly key: string;
  readonly context: SecureContext;
  /** With `ocsp`: what to ask the certificate's OCSP responder. */
  readonly ocsp: OcspTarget | undefined;
}

/** A certificate file that does not load: says which file and why. */
export class CertificateError extends Error {
  constructor(readonly file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'CertificateError';
  }
}

interface Snapshot {
  readonly certs: readonly LoadedCertificate[];
  /** What every context shares: the listener's options, the client CA and CRL, the session id context. */
  readonly shared: SecureContextOptions;
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** Parent domain ("example.com") of each `*.example.com` name. */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
}

/** Names a certificate serves: DNS SANs, or the CN without SANs; lower case. */
export function certificateNames(pem: string): string[] {
  const x = new X509Certificate(pem);
  const san = x.subjectAltName;
  const names: string[] = [];
  if (san !== undefined) {
    for (const part of san.split(',')) {
      const p = part.trim();
      if (p.startsWith('DNS:')) names.push(p.slice(4).toLowerCase().replace(/\.$/, ''));
    }
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject);
    if (cn !== null) names.push(cn[1]!.trim().toLowerCase());
  }
  return names;
}

function load(files: CertificateFiles, cert: string, key: string, options: SecureContextOptions): LoadedCertificate {
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new CertificateError(files.cert, 'holds no PEM certificate');
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new CertificateError(files.key, 'holds no PEM private key');
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (err) {
    throw new CertificateError(files.cert, `not a valid certificate (${(err as Error).message})`);
  }
  let context: SecureContext;
  try {
    context = createSecureContext({ ...options, cert, key });
  } catch (err) {
    const m = (err as Error).message;
    throw new CertificateError(files.key, /mismatch/i.test(m) ? `the key does not match ${files.cert}` : `cannot be used (${m})`);
  }
  let ocsp: OcspTarget | undefined;
  if (files.ocsp === true) {
    try {
      ocsp = ocspTarget(cert);
    } catch (err) {
      throw new CertificateError(files.cert, `ocsp: ${(err as Error).message}`);
    }
  }
  return { files, names: certificateNames(cert), notAfter: x.validTo, fingerprint256: x.fingerprint256, cert, key, context, ocsp };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CertificateError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/**
 * OpenSSL options every context takes: no renegotiation. A TLS 1.2 client that asks for one (a
 * second handshake on the connection, each costing the server a private-key operation) is
 * answered with a no_renegotiation alert, as HAProxy and NGINX do; TLS 1.3 has no renegotiation.
 */
export const SECURE_OPTIONS = cryptoConstants.SSL_OP_NO_RENEGOTIATION;

/**
 * The options every context of the listener takes. The session id context depends on the client
 * CA and CRL: a session verified under other ones (a certificate revoked since) is not resumed.
 */
function sharedOptions(options: ContextOptions, sessionIdBase: string, client: ClientAuthTexts | undefined): SecureContextOptions {
  const sid = createHash('sha256').update(sessionIdBase);
  if (client === undefined) return { ...options, secureOptions: SECURE_OPTIONS, sessionIdContext: sid.digest('hex').slice(0, 32) };
  sid.update('\0').update(client.ca).update('\0').update(client.crl ?? '');
  const shared: SecureContextOptions = { ...options, secureOptions: SECURE_OPTIONS, sessionIdContext: sid.digest('hex').slice(0, 32), ca: client.ca };
  if (client.crl !== undefined) shared.crl = client.crl;
  return shared;
}

/** Checks the client CA and CRL texts (a CertificateError names the file at fault). */
function checkClientAuth(files: ClientAuthFiles, t: ClientAuthTexts): void {
  if (!t.ca.includes('-----BEGIN CERTIFICATE-----')) throw new CertificateError(files.ca, 'holds no PEM certificate');
  try {
    createSecureContext({ ca: t.ca });
  } catch (err) {
    throw new CertificateError(files.ca, `not a valid CA certificate (${(err as Error).message})`);
  }
  if (t.crl !== undefined) {
    if (!t.crl.includes('-----BEGIN X509 CRL-----')) throw new CertificateError(files.crl!, 'holds no PEM certificate revocation list');
    try {
      createSecureContext({ ca: t.ca, crl: t.crl });
    } catch (err) {
      throw new CertificateError(files.crl!, `not a valid certificate revocation list (${(err as Error).message})`);
    }
  }
}

/**
 * What a store would refuse in one certificate and its key (unreadable, not PEM, not parsed, the
 * key not matching, an OCSP target missing), without building a store: for `portico check`.
 */
export function certificateProblem(files: CertificateFiles, options: ContextOptions = {}): CertificateError | undefined {
  try {
    load(files, readText(files.cert), readText(files.key), { ...options });
    return undefined;
  } catch (err) {
    if (err instanceof CertificateError) return err;
    throw err;
  }
}

/** What a store would refuse in the client CA and CRL files (unreadable, not PEM, not parsed). */
export function clientAuthProblem(files: ClientAuthFiles): CertificateError | undefined {
  try {
    checkClientAuth(files, { ca: readText(files.ca), crl: files.crl === undefined ? undefined : readText(files.crl) });
    return undefined;
  } catch (err) {
    if (err instanceof CertificateError) return err;
    throw err;
  }
}

function snapshot(certs: readonly LoadedCertificate[], shared: SecureContextOptions): Snapshot {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  for (const c of certs) {
    for (const n of c.names) {
      if (n.startsWith('*.')) {
        if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), c.context);
      } else if (!exact.has(n)) {
        exact.set(n, c.context);
      }
    }
  }
  return { certs, shared, exact, wildcard };
}

export class CertificateStore {
  private snap: Snapshot;
  private readonly files: readonly CertificateFiles[];
  private readonly options: ContextOptions;
  private readonly sessionIdBase: string;
  private readonly client: ClientAuthFiles | undefined;
  /** Modification stamps of every file at the last (re)load. */
  private stamps: string[] = [];
  /** Increases on every successful reload. */
  generation = 0;

  /**
   * Loads every certificate (and the client CA and CRL) now; throws a CertificateError naming the
   * file at fault. `sessionIdBase` names the listener in the session id context.
   */
  constructor(files: readonly CertificateFiles[], options: ContextOptions, sessionIdBase: string, client?: ClientAuthFiles) {
    if (files.length === 0) throw new Error('at least one certificate is needed');
    this.files = files;
    this.options = options;
    this.sessionIdBase = sessionIdBase;
    this.client = client;
    let texts: ClientAuthTexts | undefined;
    if (client !== undefined) {
      texts = { ca: readText(client.ca), crl: client.crl === undefined ? undefined : readText(client.crl) };
      checkClientAuth(client, texts);
    }
    const shared = sharedOptions(options, sessionIdBase, texts);
    this.snap = snapshot(files.map((f) => load(f, readText(f.cert), readText(f.key), shared)), shared);
  }

  /** Options of the listener's default context: what every certificate's context shares. */
  get sharedOptions(): SecureContextOptions {
    return this.snap.shared;
  }

  /** The default certificate (the first): used without SNI or when no name matches. */
  get defaultCertificate(): LoadedCertificate {
    return this.snap.certs[0]!;
  }

  get certificates(): readonly LoadedCertificate[] {
    return this.snap.certs;
  }

  /** The context for a ClientHello's server name. */
  contextFor(servername: string): SecureContext {
    const s = this.snap;
    const name = servername.toLowerCase();
    const exact = s.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = s.wildcard.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return s.certs[0]!.context;
  }

  /**
   * Re-read the files when any changed since the last load. Returns true when new certificates
   * are in force; throws a CertificateError (the old ones stay) when a changed file does not load.
   */
  async reloadIfChanged(): Promise<boolean> {
    const c = this.client;
    const paths = this.files.flatMap((f) => [f.cert, f.key]);
    if (c !== undefined) paths.push(c.ca, ...(c.crl === undefined ? [] : [c.crl]));
    const stamps = await Promise.all(
      paths.map(async (p) => {
        try {
          const st = await stat(p);
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch {
          return 'missing';
        }
      }),
    );
    if (this.stamps.length === 0) {
      this.stamps = stamps;
      return false;
    }
    if (stamps.every((s, i) => s === this.stamps[i])) return false;
    let texts: ClientAuthTexts | undefined;
    if (c !== undefined) {
      try {
        texts = { ca: await readFile(c.ca, 'utf8'), crl: c.crl === undefined ? undefined : await readFile(c.crl, 'utf8') };
      } catch (err) {
        throw new CertificateError((err as NodeJS.ErrnoException).path ?? c.ca, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      checkClientAuth(c, texts);
    }
    const shared = sharedOptions(this.options, this.sessionIdBase, texts);
    const loaded: LoadedCertificate[] = [];
    for (const f of this.files) {
      let cert: string;
      let key: string;
      try {
        [cert, key] = await Promise.all([readFile(f.cert, 'utf8'), readFile(f.key, 'utf8')]);
      } catch (err) {
        throw new CertificateError((err as NodeJS.ErrnoException).path ?? f.cert, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      loaded.push(load(f, cert, key, shared));
    }
    this.stamps = stamps;
    this.snap = snapshot(loaded, shared);
    this.generation++;
    return true;
  }

  /** Record the files' current stamps (call once after construction, before watching). */
  async remember(): Promise<void> {
    await this.reloadIfChanged();
  }
}
