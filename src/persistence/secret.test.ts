import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { loadOrCreateSecret, SECRET_FILE } from './secret.js';

it('creates a secret in the state directory once (mode 0600) and reads the same one back', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'portico-secret-')), 'nested', 'state');
  const first = await loadOrCreateSecret(dir);
  assert.equal(first.length, 32);
  assert.equal(statSync(join(dir, SECRET_FILE)).mode & 0o777, 0o600);
  const again = await loadOrCreateSecret(dir);
  assert.ok(again.equals(first));
  const racing = await Promise.all([loadOrCreateSecret(dir), loadOrCreateSecret(dir)]);
  assert.ok(racing.every((s) => s.equals(first)));
});

it('two processes starting together agree on one secret', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-secret-'));
  const [a, b] = await Promise.all([loadOrCreateSecret(dir), loadOrCreateSecret(dir)]);
  assert.ok(a.equals(b));
  assert.equal(readFileSync(join(dir, SECRET_FILE), 'utf8').trim(), a.toString('hex'));
});

it('refuses a file that is not a secret rather than use a weak key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-secret-'));
  writeFileSync(join(dir, SECRET_FILE), 'hello\n');
  await assert.rejects(loadOrCreateSecret(dir), /not a secret/);
});
