import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import '../app/listener-kinds.js';
import '../balancer/index.js';
import { validateConfig } from '../config/load.js';
import { JOURNAL_FILE, RuntimeJournal, parseJournal, serverChange, withHealthChange, withServerChange, type RuntimeChange } from './journal.js';
import { overlay } from './overlay.js';

const at = '2026-01-01T00:00:00.000Z';

describe('RuntimeJournal', () => {
  it('writes the changes and reads them back; a missing file is an empty journal', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-journal-'));
    try {
      const j = new RuntimeJournal(join(dir, 'state'));
      assert.deepEqual(j.load(), { changes: [] });
      const changes: RuntimeChange[] = [{ kind: 'server', pool: 'web', server: 'a', set: { weight: 3 }, at }];
      j.save(changes);
      const again = new RuntimeJournal(join(dir, 'state'));
      assert.deepEqual(again.load().changes, changes);
      assert.deepEqual(readdirSync(join(dir, 'state')), [JOURNAL_FILE], 'no temporary file is left');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a malformed file is moved aside and reported, not applied', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-journal-'));
    try {
      writeFileSync(join(dir, JOURNAL_FILE), '{"version":1,"changes":[{"kind":"server"');
      const r = new RuntimeJournal(dir).load();
      assert.deepEqual(r.changes, []);
      assert.match(r.problem!, /not JSON/);
      assert.ok(!existsSync(join(dir, JOURNAL_FILE)));
      const aside = readdirSync(dir).find((f) => f.startsWith(`${JOURNAL_FILE}.bad-`))!;
      assert.match(readFileSync(join(dir, aside), 'utf8'), /"kind":"server"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file that cannot be written throws and keeps the changes in force', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-journal-'));
    try {
      writeFileSync(join(dir, 'file'), 'not a directory');
      const j = new RuntimeJournal(join(dir, 'file', 'state'));
      assert.throws(() => j.save([{ kind: 'server', pool: 'p', server: 's', removed: true, at }]));
      assert.deepEqual(j.current, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parseJournal refuses entries it does not understand', () => {
    assert.match(parseJournal('{"version":2,"changes":[]}') as string, /version 1/);
    assert.match(parseJournal('{"version":1,"changes":[{"kind":"x","pool":"p","at":"t"}]}') as string, /changes\[0\]: unknown kind/);
    assert.match(parseJournal('{"version":1,"changes":[{"kind":"server","pool":"p","server":"s","set":{"weight":999},"at":"t"}]}') as string, /set must/);
    assert.deepEqual(parseJournal('{"version":1,"changes":[{"kind":"health","pool":"p","health":{"type":"none"},"at":"t"}]}'), [
      { kind: 'health', pool: 'p', health: { type: 'none' }, at: 't' },
    ]);
  });

  it('edits replace one entry and keep the order of the others', () => {
    const a: RuntimeChange = { kind: 'server', pool: 'p', server: 'a', removed: true, at };
    const b: RuntimeChange = { kind: 'server', pool: 'p', server: 'b', set: { state: 'drain' }, at };
    let list = withServerChange([], 'p', 'a', a);
    list = withServerChange(list, 'p', 'b', b);
    list = withServerChange(list, 'p', 'a', { ...a, removed: undefined, set: { weight: 2 } });
    assert.deepEqual(list.map((c) => (c.kind === 'server' ? c.server : c.pool)), ['a', 'b']);
    assert.deepEqual(serverChange(list, 'p', 'a')?.set, { weight: 2 });
    list = withServerChange(list, 'p', 'a', undefined);
    assert.deepEqual(list, [b]);
    list = withHealthChange(list, 'p', { kind: 'health', pool: 'p', health: { type: 'tcp' }, at });
    assert.equal(list.length, 2);
    assert.deepEqual(withHealthChange(list, 'p', undefined), [b]);
  });
});

describe('overlay', () => {
  const file = validateConfig({
    admin: { enabled: false },
    pools: [
      { name: 'web', servers: [{ name: 'a', address: '127.0.0.1:1' }, { name: 'b', address: '127.0.0.1:2', weight: 2 }] },
      { name: 'api', servers: [{ name: 'x', address: '127.0.0.1:3' }] },
    ],
  });

  it('no change: the file itself', () => {
    assert.equal(overlay(file, []).config, file);
  });

  it('the file says what exists, the changes what the operator changed', () => {
    const o = overlay(file, [
      { kind: 'server', pool: 'web', server: 'a', removed: true, at },
      { kind: 'server', pool: 'web', server: 'b', set: { weight: 7, state: 'drain' }, at },
      { kind: 'server', pool: 'web', server: 'c', spec: { name: 'c', address: '127.0.0.1:4' }, set: { weight: 3 }, at },
      { kind: 'health', pool: 'api', health: { type: 'tcp', interval: '5s' }, at },
    ]);
    const web = o.config.pools[0]!;
    assert.deepEqual(web.servers.map((s) => `${s.name}:${s.weight}:${s.state}`), ['b:7:drain', 'c:3:ready']);
    assert.equal(web.servers[1]!.address.port, 4);
    assert.equal(o.config.pools[1]!.health.type, 'tcp');
    assert.ok(o.entries.every((e) => e.applied));
    assert.ok(Object.isFrozen(o.config.pools[0]!.servers));
    assert.equal(file.pools[0]!.servers.length, 2, 'the file configuration is untouched');
  });

  it('changes that no longer fit the file are reported, not applied', () => {
    const o = overlay(file, [
      { kind: 'server', pool: 'gone', server: 'a', removed: true, at },
      { kind: 'server', pool: 'web', server: 'zz', set: { weight: 1 }, at },
      { kind: 'server', pool: 'web', server: 'bad', spec: { name: 'bad', address: 'nowhere' }, at },
    ]);
    assert.deepEqual(
      o.entries.map((e) => [e.applied, e.reason]),
      [
        [false, 'pool gone is not in the configuration'],
        [false, 'server zz is not in pool web'],
        [false, 'the registered server no longer validates: address: bad address "nowhere": missing :PORT'],
      ],
    );
    assert.deepEqual(o.config.pools[0]!.servers.map((s) => s.name), ['a', 'b']);
  });
});
