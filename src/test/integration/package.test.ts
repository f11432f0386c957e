import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('npm pack ships the command, the compiled code, the docs and the unit file, and no compiled test', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const pack = (JSON.parse(r.stdout) as { files: { path: string }[]; entryCount: number; unpackedSize: number }[])[0]!;
  const files = pack.files.map((f) => f.path);
  // About 830 files and 3.8 MB unpacked (1,112 files and 5.5 MB with the compiled tests): a bound that a stray directory breaks.
  assert.ok(pack.entryCount < 1000, `${pack.entryCount} files in the package`);
  assert.ok(pack.unpackedSize < 5 * 1024 * 1024, `${pack.unpackedSize} bytes unpacked`);
  for (const needed of ['bin/portico', 'dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', 'README.md', 'docs/deployment.md', 'docs/production.md', 'contrib/portico.service', 'src/admin/dashboard/public/dashboard.js']) {
    assert.ok(files.includes(needed), `${needed} is in the package`);
  }
  const tests = files.filter((f) => /\.test\.|\.suite\.|^dist\/test\/|^dist\/test-helpers\//.test(f));
  assert.deepEqual(tests, []);
});
