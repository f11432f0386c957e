import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import { missingBinary, selfSigned, testCa } from '../test-helpers/certs.js';
import '../balancer/index.js';
import { ConfigError } from '../config/errors.js';
import { loadConfigFile, parseConfigText } from '../config/load.js';
import { checkFiles } from './config-files.js';

const skip = missingBinary('openssl');

/** The lines loadConfigFile refuses `yaml` with (written to lb.yaml in a new directory), or [] when it loads. */
function refusal(yaml: string): { file: string; lines: string[] } {
  const file = join(mkdtempSync(join(tmpdir(), 'portico-files-')), 'lb.yaml');
  writeFileSync(file, yaml);
  try {
    loadConfigFile(file, {}, { files: checkFiles });
    return { file, lines: [] };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { file, lines: err.lines() };
  }
}

const pools = 'pools:\n  - name: web\n    servers: [ { name: a, address: 127.0.0.1:9101 } ]\n';

test('the files a configuration names are checked as start loads them, each at FILE:LINE:COL of its key', { skip }, () => {
  const good = selfSigned(['a.test']);
  const other = selfSigned(['b.test']);
  const ca = testCa();
  const dir = mkdtempSync(join(tmpdir(), 'portico-files-'));
  const missing = join(dir, 'missing.pem');
  const notPem = join(dir, 'not.pem');
  writeFileSync(notPem, 'hello\n');
  const { file, lines } = refusal(
    [
      'admin:',
      '  listen: 127.0.0.1:0',
      '  tls:',
      `    cert: ${good.certFile}`,
      `    key: ${other.keyFile}`,
      'listeners:',
      '  - name: secure',
      '    protocol: https',
      '    listen: 127.0.0.1:0',
      '    routes: [ { pool: web } ]',
      '    tls:',
      '      certificates:',
      `        - { cert: ${good.certFile}, key: ${good.keyFile} }`,
      `        - { cert: ${missing}, key: ${good.keyFile} }`,
      `        - { cert: ${good.certFile}, key: ${other.keyFile} }`,
      `        - { cert: ${notPem}, key: ${good.keyFile} }`,
      '      clientAuth:',
      `        ca: ${ca.certFile}`,
      `        crl: ${notPem}`,
      pools.trimEnd(),
      `    tls: { ca: ${missing} }`,
      '',
    ].join('\n'),
  );
  assert.deepEqual(lines, [
    `${file}:5:5 admin.tls.key: ${other.keyFile}: the key does not match ${good.certFile}`,
    `${file}:14:13 listeners.0.tls.certificates.1.cert: ${missing}: cannot be read (ENOENT)`,
    `${file}:15:52 listeners.0.tls.certificates.2.key: ${other.keyFile}: the key does not match ${good.certFile}`,
    `${file}:16:13 listeners.0.tls.certificates.3.cert: ${notPem}: holds no PEM certificate`,
    `${file}:19:9 listeners.0.tls.clientAuth.crl: ${notPem}: holds no PEM certificate revocation list`,
    `${file}:23:12 pools.0.tls.ca: ${missing}: cannot be read (ENOENT)`,
  ]);
});

test('a configuration whose files all load is taken; parseConfigText reads no file unless asked', { skip }, () => {
  const good = selfSigned(['a.test']);
  const yaml = ['listeners:', '  - name: secure', '    protocol: https', '    listen: 127.0.0.1:0', '    routes: [ { pool: web } ]', `    tls: { certificates: [ { cert: ${good.certFile}, key: ${good.keyFile} } ] }`, pools].join('\n');
  assert.deepEqual(refusal(yaml).lines, []);
  const absent = yaml.replaceAll(good.certFile, '/nonexistent/c.pem');
  assert.equal(parseConfigText(absent, 'lb.yaml', {}).listeners.length, 1);
  assert.throws(() => parseConfigText(absent, 'lb.yaml', {}, { files: checkFiles }), /lb\.yaml:6:\d+ listeners\.0\.tls\.certificates\.0\.cert: \/nonexistent\/c\.pem: cannot be read \(ENOENT\)/);
});
