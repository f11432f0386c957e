import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { loadOrCreateSecret, SECRET_FILE } from './secret.js';

it('creates a secret in the state directory once (mode 0600) and reads the same one back', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'portico-secret-')), 'nested', 'state');
  const first = loadOrCreateSecret(dir);
  assert.equal(first.length, 32);
  assert.equal(statSync(join(dir, SECRET_FILE)).mode & 0o777, 0o600);
  const again = loadOrCreateSecret(dir);
  assert.ok(again.equals(first));
  assert.equal(readFileSync(join(dir, SECRET_FILE), 'utf8').trim(), first.toString('hex'));
});

it('two processes starting together agree on one secret', async () => {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'portico-secret-'));
  const mod = new URL('./secret.js', import.meta.url).href;
  const script = `import(${JSON.stringify(mod)}).then((m) => process.stdout.write(m.loadOrCreateSecret(${JSON.stringify(dir)}).toString('hex')))`;
  const run = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['-e', script]);
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('error', reject);
      c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
    });
  const got = await Promise.all([run(), run(), run(), run()]);
  assert.equal(new Set(got).size, 1, got.join(' '));
  assert.equal(readFileSync(join(dir, SECRET_FILE), 'utf8').trim(), got[0]);
});

it('refuses a file that is not a secret rather than use a weak key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-secret-'));
  writeFileSync(join(dir, SECRET_FILE), 'hello\n');
  assert.throws(() => loadOrCreateSecret(dir), /not a secret/);
});
