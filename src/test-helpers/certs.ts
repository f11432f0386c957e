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
  /** A certificate for `names` signed by this CA. */
  issue(names: readonly string[]): TestCert;
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
    issue(names) {
      const base = `s${++seq}`;
      ossl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`], dir);
      writeFileSync(join(dir, `${base}.ext`), san(names) + '\n');
      ossl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${base}.pem`, '-days', '3', '-extfile', `${base}.ext`], dir);
      return read(dir, base);
    },
  };
}
