import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import '../balancer/index.js';
import { loadConfigFile, parseConfigText } from './load.js';

test('stateDir: by default .portico next to the configuration file, a relative one from its directory, whatever the working directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-statedir-'));
  mkdirSync(join(dir, 'etc'));
  const at = (name: string, text: string): string => {
    const f = join(dir, 'etc', name);
    writeFileSync(f, text);
    return f;
  };
  assert.notEqual(process.cwd(), join(dir, 'etc'));
  assert.equal(loadConfigFile(at('a.yaml', 'pools: []\n'), {}).stateDir, join(dir, 'etc', '.portico'));
  assert.equal(loadConfigFile(at('b.yaml', 'stateDir: ../var/state\n'), {}).stateDir, join(dir, 'var', 'state'));
  assert.equal(loadConfigFile(at('c.yaml', 'stateDir: /var/lib/portico\n'), {}).stateDir, '/var/lib/portico');
  // A text or object without a file has no directory of its own: the key as given.
  assert.equal(parseConfigText('pools: []\n', 'x.yaml', {}).stateDir, '.portico');
});
