import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DiscoveryError, parseServerEntry, serverNameOf } from './discovery.js';
import { parseEtcdUrl } from './etcd-url.js';
import { FileDiscovery, parseServerList } from './file-discovery.js';
import { parseZookeeperEntry } from './zookeeper-discovery.js';
import { ConsulDiscovery, consulSource } from './consul-discovery.js';

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

describe('zookeeper node data', () => {
  it('host:port, {host, port, weight}, a server of the file, and Curator ServiceInstance JSON; named after the node', () => {
    const a = parseZookeeperEntry('10.0.0.1:8080\n', 'app1');
    assert.ok(a.ok && a.server !== null);
    assert.deepEqual(a.server.address, { host: '10.0.0.1', port: 8080 });
    assert.equal(a.server.name, 'app1');
    const b = parseZookeeperEntry('{"host":"10.0.0.2","port":81,"weight":3}', 'app2');
    assert.ok(b.ok && b.server !== null);
    assert.deepEqual([b.server.address, b.server.weight], [{ host: '10.0.0.2', port: 81 }, 3]);
    const c = parseZookeeperEntry('{"address":"10.0.0.3:82","backup":true}', 'app3');
    assert.ok(c.ok && c.server !== null && c.server.backup);
    const curator = { name: 'web', id: 'f81d4fae', address: '10.0.0.4', port: 8080, sslPort: null, payload: null, registrationTimeUTC: 1, serviceType: 'DYNAMIC' };
    const d = parseZookeeperEntry(JSON.stringify(curator), 'f81d4fae');
    assert.ok(d.ok && d.server !== null);
    assert.deepEqual([d.server.name, d.server.address], ['f81d4fae', { host: '10.0.0.4', port: 8080 }]);
    const ssl = parseZookeeperEntry(JSON.stringify({ ...curator, port: null, sslPort: 8443 }), 'x');
    assert.ok(ssl.ok && ssl.server !== null && ssl.server.address.port === 8443);
    const off = parseZookeeperEntry(JSON.stringify({ ...curator, enabled: false }), 'x');
    assert.deepEqual(off, { ok: true, server: null });
    const v6 = parseZookeeperEntry('{"host":"2001:db8::1","port":80}', 'v6');
    assert.ok(v6.ok && v6.server !== null && v6.server.address.host === '2001:db8::1');
  });

  it('refuses what is not a server, saying why', () => {
    for (const [data, why] of [
      ['', /no data/],
      ['{"host":"10.0.0.1"', /not JSON/],
      ['{"host":"10.0.0.1"}', /address/],
      ['nowhere', /address/],
    ] as const) {
      const r = parseZookeeperEntry(data, 'n');
      assert.ok(!r.ok, data);
      assert.match(r.message, why);
    }
  });
});

describe('consul health entries', () => {
  const entry = (id: string, node: string, over: { address?: string; port?: number; tags?: string[]; weight?: number; status?: string } = {}) => ({
    Node: { Node: node, Address: '10.0.0.99' },
    Service: { ID: id, Address: over.address ?? '', Port: over.port ?? 8080, Tags: over.tags ?? [], Weights: { Passing: over.weight ?? 1, Warning: 1 } },
    Checks: [{ Status: 'passing' }, { Status: over.status ?? 'passing' }],
  });
  it('service address or the node address, the passing weight, names from the ID (with the node when IDs repeat), passing and tagged only', () => {
    const d = new ConsulDiscovery({ url: 'http://127.0.0.1:8500', service: 'web', tags: ['prod'], waitMs: 60_000 });
    const out = d.parse([
      entry('web-1', 'n1', { address: '10.0.0.1', tags: ['prod'], weight: 5 }),
      entry('web-2', 'n2', { tags: ['prod', 'x'] }),
      entry('web', 'n3', { address: '10.0.0.3', tags: ['prod'] }),
      entry('web', 'n4', { address: '10.0.0.4', tags: ['prod'] }),
      entry('web-5', 'n5', { address: '10.0.0.5', tags: ['prod'], status: 'warning' }),
      entry('web-6', 'n6', { address: '10.0.0.6' }),
      entry('web-7', 'n7', { address: '10.0.0.7', tags: ['prod'], port: 0 }),
      entry('web-8', 'n8', { address: '10.0.0.8', tags: ['prod'], weight: 1000 }),
    ]);
    assert.deepEqual(
      out.map((s) => `${s.name} ${s.address.host}:${s.address.port} w${s.weight}`),
      ['web-1 10.0.0.1:8080 w5', 'web-2 10.0.0.99:8080 w1', 'n3-web 10.0.0.3:8080 w1', 'n4-web 10.0.0.4:8080 w1', 'web-8 10.0.0.8:8080 w256'],
    );
    assert.throws(() => d.parse({ error: 'x' }), /not a list/);
  });

  it('the source shown has no credentials', () => {
    assert.equal(consulSource('http://user:pw@consul.local:8500/', 'web', undefined), 'http://consul.local:8500/web');
    assert.equal(consulSource('https://consul.local', 'web', 'east'), 'https://consul.local/web@east');
  });
});
