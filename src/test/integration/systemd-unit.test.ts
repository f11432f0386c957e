import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { missingBinary } from '../../test-helpers/certs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const unit = readFileSync(join(root, 'contrib', 'portico.service'), 'utf8');

test('contrib/portico.service passes systemd-analyze verify without a warning', { skip: missingBinary('systemd-analyze') }, () => {
  // verify checks that ExecStart's program exists: this checkout's bin/portico stands in for the installed /usr/bin/portico.
  const dir = mkdtempSync(join(tmpdir(), 'portico-unit-'));
  const file = join(dir, 'portico.service');
  writeFileSync(file, unit.replaceAll('/usr/bin/portico', join(root, 'bin', 'portico')));
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal((r.stdout + r.stderr).trim(), '', 'no warning (an unknown key is only a warning)');
});

test('the unit: readiness by notify, HUP to the main process, the worker group stopped through its primary, capabilities and directories', () => {
  const keys = new Map<string, string>();
  for (const line of unit.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m !== null) keys.set(m[1]!, m[2]!);
  }
  assert.equal(keys.get('Type'), 'notify');
  assert.equal(keys.get('NotifyAccess'), 'all');
  assert.equal(keys.get('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(keys.get('KillMode'), 'mixed');
  assert.deepEqual(keys.get('AmbientCapabilities')!.split(' ').sort(), ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE']);
  assert.equal(keys.get('StateDirectory'), 'portico');
  assert.equal(keys.get('LogsDirectory'), 'portico');
  assert.equal(keys.get('NoNewPrivileges'), 'yes');
});
