/**
 * The certificates of an https listener, chosen by SNI: an exact name first, then a wildcard
 * certificate for the parent domain (`*.example.com` covers one label, as TLS clients check),
 * then the default (the first certificate). Names come from each certificate's DNS subject
 * alternative names (or its CN when it has none). The files are re-read when they change, and
 * the new contexts replace the old ones at once; a file that does not load keeps the old one.
 */
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** Options every context of the listener shares (versions, ciphers, session id context). */
export type ContextOptions = Pick<SecureContextOptions, 'minVersion' | 'ciphers' | 'sessionIdContext' | 'sessionTimeout' | 'ecdhCurve'>;

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

function load(files: CertificateFiles, cert: string, key: string, options: ContextOptions): LoadedCertificate {
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
  return { files, names: certificateNames(cert), notAfter: x.validTo, fingerprint256: x.fingerprint256, cert, key, context };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CertificateError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

function snapshot(certs: readonly LoadedCertificate[]): Snapshot {
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
  return { certs, exact, wildcard };
}

export class CertificateStore {
  private snap: Snapshot;
  private readonly files: readonly CertificateFiles[];
  private readonly options: ContextOptions;
  /** Modification stamps of every file at the last (re)load. */
  private stamps: string[] = [];
  /** Increases on every successful reload. */
  generation = 0;

  /** Loads every certificate now; throws a CertificateError naming the file at fault. */
  constructor(files: readonly CertificateFiles[], options: ContextOptions) {
    if (files.length === 0) throw new Error('at least one certificate is needed');
    this.files = files;
    this.options = options;
    this.snap = snapshot(files.map((f) => load(f, readText(f.cert), readText(f.key), options)));
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
    const stamps = await Promise.all(
      this.files.flatMap((f) => [f.cert, f.key]).map(async (p) => {
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
    const loaded: LoadedCertificate[] = [];
    for (const f of this.files) {
      let cert: string;
      let key: string;
      try {
        [cert, key] = await Promise.all([readFile(f.cert, 'utf8'), readFile(f.key, 'utf8')]);
      } catch (err) {
        throw new CertificateError((err as NodeJS.ErrnoException).path ?? f.cert, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      loaded.push(load(f, cert, key, this.options));
    }
    this.stamps = stamps;
    this.snap = snapshot(loaded);
    this.generation++;
    return true;
  }

  /** Record the files' current stamps (call once after construction, before watching). */
  async remember(): Promise<void> {
    await this.reloadIfChanged();
  }
}
