/**
 * Test certificates made at test time with the openssl command (never committed), and the rule
 * for tests that need a system binary: skip with a visible reason, except under CI=true where a
 * missing binary is a failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function haveBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Why a test that needs `binaries` cannot run here, or undefined when it can. Under CI=true a
 * missing binary throws instead: CI installs every one (.ci/run).
 */
export function missingBinary(...binaries: string[]): string | undefined {
  const missing = binaries.filter((b) => !haveBinary(b));
  if (missing.length === 0) return undefined;
  const reason = `needs ${missing.join(', ')} (not installed)`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI must install it (.ci/run APT_PACKAGES)`);
  return reason;
}

export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends TestCert {
  /**
   * A certificate for `names` signed by this CA, valid `days` (default 3), with a CRL
   * distribution point when `crlUrl` is given.
   */
  issue(names: readonly string[], opts?: { days?: number; crlUrl?: string }): TestCert;
}

const ossl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

function read(dir: string, base: string): TestCert {
  const certFile = join(dir, `${base}.pem`);
  const keyFile = join(dir, `${base}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

let seq = 0;
const san = (names: readonly string[]): string => 'subjectAltName=' + names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');

/** A self-signed certificate (ECDSA P-256) for `names` (DNS names or IP addresses; the first is the CN). */
export function selfSigned(names: readonly string[], kind: 'ec' | 'rsa' = 'ec'): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'portico-cert-'));
  const base = `c${++seq}`;
  const key = kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  ossl(['req', '-x509', ...key, '-nodes', '-keyout', `${base}.key`, '-out', `${base}.pem`, '-days', '3', '-subj', `/CN=${names[0]}`, '-addext', san(names)], dir);
  return read(dir, base);
}

/** A certificate authority whose certificates servers present and clients verify with `ca`. */
export function testCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'portico-ca-'));
  ossl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3', '-subj', '/CN=Portico Test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  const ca = read(dir, 'ca');
  return {
    ...ca,
    issue(names, opts = {}) {
      const base = `s${++seq}`;
      ossl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`], dir);
      const ext = [san(names)];
      if (opts.crlUrl !== undefined) ext.push(`crlDistributionPoints=URI:${opts.crlUrl}`);
      writeFileSync(join(dir, `${base}.ext`), ext.join('\n') + '\n');
      ossl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${base}.pem`, '-days', String(opts.days ?? 3), '-extfile', `${base}.ext`], dir);
      return read(dir, base);
    },
  };
}

export interface PkiCert extends TestCert {
  /** Serial number, hex as OpenSSL writes it. */
  readonly serial: string;
}

/**
 * A certificate authority run with `openssl ca` (a database in index.txt), so certificates can
 * be revoked, a CRL made, and `openssl ocsp` can answer for them.
 */
export interface TestPki extends TestCert {
  readonly dir: string;
  /** index.txt: the CA database (`openssl ocsp -index`). */
  readonly indexFile: string;
  /** A certificate for a server: DNS names or IP addresses, and optionally the OCSP responder's URL (AIA). */
  server(names: readonly string[], opts?: { ocspUrl?: string }): PkiCert;
  /** A client certificate (extendedKeyUsage clientAuth) with a CN and optional URI and DNS SANs. */
  client(cn: string, opts?: { uri?: string; dns?: readonly string[]; days?: number }): PkiCert;
  revoke(cert: PkiCert): void;
  /** Writes a CRL of the revoked certificates (PEM) and returns its file. */
  crl(): string;
}

export function testPki(name = 'Portico Test PKI'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'portico-pki-'));
  ossl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(join(dir, 'crlnumber'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = pki',
      '[pki]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir',
      'certificate = $dir/ca.pem',
      'private_key = $dir/ca.key',
      'serial = $dir/serial',
      'crlnumber = $dir/crlnumber',
      'default_md = sha256',
      'default_days = 3',
      'default_crl_days = 1',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const ca = read(dir, 'ca');
  const issue = (cn: string, ext: string[], days = 3): PkiCert => {
    const base = `p${++seq}`;
    ossl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`], dir);
    writeFileSync(join(dir, `${base}.ext`), ext.join('\n') + '\n');
    ossl(['ca', '-batch', '-notext', '-config', 'ca.cnf', '-days', String(days), '-in', `${base}.csr`, '-out', `${base}.pem`, '-extfile', `${base}.ext`], dir);
    const serial = execFileSync('openssl', ['x509', '-in', `${base}.pem`, '-noout', '-serial'], { cwd: dir, encoding: 'utf8' }).trim().replace(/^serial=/, '');
    return { ...read(dir, base), serial };
  };
  return {
    ...ca,
    dir,
    indexFile: join(dir, 'index.txt'),
    server(names, opts = {}) {
      const ext = [san(names), 'extendedKeyUsage=serverAuth'];
      if (opts.ocspUrl !== undefined) ext.push(`authorityInfoAccess=OCSP;URI:${opts.ocspUrl}`);
      return issue(names[0]!, ext);
    },
    client(cn, opts = {}) {
      const sans = [...(opts.uri === undefined ? [] : [`URI:${opts.uri}`]), ...(opts.dns ?? []).map((d) => `DNS:${d}`)];
      const ext = ['extendedKeyUsage=clientAuth', ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : [])];
      return issue(cn, ext, opts.days);
    },
    revoke(cert) {
      ossl(['ca', '-config', 'ca.cnf', '-revoke', cert.certFile], dir);
    },
    crl() {
      const file = join(dir, `crl${++seq}.pem`);
      ossl(['ca', '-config', 'ca.cnf', '-gencrl', '-out', file], dir);
      return file;
    },
  };
}
