/**
 * The files a configuration names, checked as `portico start` would load them: every TLS
 * certificate and its key (readable, PEM, parsed, the key matching the certificate), the client
 * CA and CRL of mutual TLS, the admin API's certificate, and each pool's CA toward its servers.
 * Paths are taken as `start` takes them: relative to the working directory. Given to the
 * configuration loader by the composition root (src/cli/main.ts: useFileCheck), since config/ is
 * below tls/.
 */
import { readFileSync } from 'node:fs';
import type { ConfigPath, PathIssue } from '../config/path.js';
import type { Config } from '../config/types.js';
import { certificateProblem, clientAuthProblem, type CertificateError } from './cert-store.js';

export function checkFiles(config: Config): PathIssue[] {
  const issues: PathIssue[] = [];
  const at = (path: ConfigPath, err: CertificateError): void => void issues.push({ path, message: err.message });
  config.listeners.forEach((l, li) => {
    if (l.protocol !== 'https' && l.protocol !== 'redirect') return;
    const tls = l.tls;
    if (tls === false || tls === undefined) return;
    const options = { minVersion: tls.minVersion, ciphers: tls.ciphers };
    tls.certificates.forEach((c, ci) => {
      const err = certificateProblem(c, options);
      if (err !== undefined) at(['listeners', li, 'tls', 'certificates', ci, err.file === c.cert ? 'cert' : 'key'], err);
    });
    const ca = 'clientAuth' in tls ? tls.clientAuth : false;
    if (ca !== false && ca !== undefined) {
      const err = clientAuthProblem(ca);
      if (err !== undefined) at(['listeners', li, 'tls', 'clientAuth', err.file === ca.ca ? 'ca' : 'crl'], err);
    }
  });
  const admin = config.admin.tls;
  if (config.admin.enabled && admin !== false) {
    const err = certificateProblem(admin);
    if (err !== undefined) at(['admin', 'tls', err.file === admin.cert ? 'cert' : 'key'], err);
  }
  config.pools.forEach((p, pi) => {
    const tls = p.tls;
    if (typeof tls !== 'object' || tls === null || tls.ca === undefined) return;
    let text: string;
    try {
      text = readFileSync(tls.ca, 'utf8');
    } catch (err) {
      issues.push({ path: ['pools', pi, 'tls', 'ca'], message: `${tls.ca}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` });
      return;
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----')) issues.push({ path: ['pools', pi, 'tls', 'ca'], message: `${tls.ca}: holds no PEM certificate` });
  });
  return issues;
}
