import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DiscoveryError, parseServerEntry, serverNameOf } from './discovery.js';
import { parseEtcdUrl } from './etcd-url.js';
import { FileDiscovery, parseServerList } from './file-discovery.js';

describe('parseEtcdUrl', () => {
  it('gives the endpoint and a prefix ending in /', () => {
    assert.deepEqual(parseEtcdUrl('etcd://10.0.0.5:2379/portico/pools/web'), { endpoint: 'http://10.0.0.5:2379', prefix: '/portico/pools/web/' });
    assert.deepEqual(parseEtcdUrl('etcd://etcd.local/portico/'), { endpoint: 'http://etcd.local:2379', prefix: '/portico/' });
    assert.deepEqual(parseEtcdUrl('etcd://127.0.0.1:2379'), { endpoint: 'http://127.0.0.1:2379', prefix: '/' });
    assert.throws(() => parseEtcdUrl('http://127.0.0.1:2379/x'), /expected etcd:\/\//);
  });
});

describe('server entries', () => {
  it('take the defaults of a configured server, and a name from the key when they have none', () => {
    const r = parseServerEntry({ address: '10.0.0.1:80' }, 'app1');
    assert.ok(r.ok);
    assert.deepEqual(r.server, { name: 'app1', address: { host: '10.0.0.1', port: 80 }, weight: 1, backup: false, maxConnections: 0, state: 'ready' });
    const bad = parseServerEntry({ name: 'x', address: 'nowhere', colour: 'red' });
    assert.ok(!bad.ok);
    assert.match(bad.message, /address/);
  });

  it('names from free text keep to the characters a name allows, at most 64', () => {
    assert.equal(serverNameOf('web1.example.com-8080'), 'web1.example.com-8080');
    assert.equal(serverNameOf('2001:db8::1-80'), '2001_db8__1-80');
    assert.equal(serverNameOf('/x'), 'x');
    const long = serverNameOf('a'.repeat(100));
    assert.equal(long.length, 64);
    assert.notEqual(serverNameOf('a'.repeat(99) + 'b'), long);
  });

  it('a list is refused whole when one entry is invalid, naming each bad entry', () => {
    assert.deepEqual(parseServerList(null, 't'), []);
    assert.equal(parseServerList({ servers: [{ name: 'a', address: '127.0.0.1:1' }] }, 't').length, 1);
    assert.throws(
      () => parseServerList([{ name: 'a', address: '127.0.0.1:1' }, { name: 'b' }, { address: '127.0.0.1:2' }], 't'),
      (err: unknown) => err instanceof DiscoveryError && /entry 1: .*address/.test(err.message) && /entry 2: .*name/.test(err.message),
    );
    assert.throws(() => parseServerList({ hosts: [] }, 't'), /expected a list of servers/);
  });
});

describe('FileDiscovery', () => {
  it('yields the file, again when it changes, and fails when it disappears', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-fd-'));
    const file = join(dir, 's.json');
    writeFileSync(file, JSON.stringify([{ name: 'a', address: '127.0.0.1:1' }]));
    const ac = new AbortController();
    const seen: string[][] = [];
    const it = new FileDiscovery({ path: file, pollMs: 50 }).watch(ac.signal)[Symbol.asyncIterator]();
    try {
      const first = await it.next();
      seen.push((first.value as { name: string }[]).map((s) => s.name));
      writeFileSync(file, JSON.stringify([{ name: 'a', address: '127.0.0.1:1' }, { name: 'b', address: '127.0.0.1:2' }]));
      const second = await it.next();
      seen.push((second.value as { name: string }[]).map((s) => s.name));
      unlinkSync(file);
      await assert.rejects(it.next(), (err: unknown) => err instanceof DiscoveryError && /ENOENT/.test(err.message));
      assert.deepEqual(seen, [['a'], ['a', 'b']]);
    } finally {
      ac.abort();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
