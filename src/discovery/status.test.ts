import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { DiscoveryConfig } from '../config/types.js';
import { discoveryMetrics, discoverySource, discoveryStatus, type DiscoveryStatus } from './status.js';
import type { WatcherState } from './watcher.js';

const state = (over: Partial<WatcherState>): WatcherState => ({
  servers: undefined,
  updates: 0,
  failures: 0,
  lastError: undefined,
  ignoredEmpty: 0,
  lastUpdateAt: undefined,
  lastErrorAt: undefined,
  failing: false,
  ...over,
});
const two = [
  { name: 'a', address: { host: '10.0.0.1', port: 80 }, weight: 1, backup: false, maxConnections: 0, state: 'ready' },
  { name: 'b', address: { host: '10.0.0.2', port: 80 }, weight: 1, backup: false, maxConnections: 0, state: 'ready' },
] as WatcherState['servers'];

describe('discovery status', () => {
  it('names the source of each type, never the credentials of an etcd URL', () => {
    assert.equal(discoverySource({ type: 'file', path: '/etc/portico/s.yaml' } as DiscoveryConfig), '/etc/portico/s.yaml');
    assert.equal(discoverySource({ type: 'dns-srv', name: '_http._tcp.web.example.com', refresh: 30_000 } as DiscoveryConfig), '_http._tcp.web.example.com');
    assert.equal(discoverySource({ type: 'dns', name: 'web.example.com', port: 8080, refresh: 30_000 } as DiscoveryConfig), 'web.example.com:8080');
    const etcd = discoverySource({ type: 'etcd', url: 'etcd://user:s3cret@10.0.0.5:2379/portico/pools/app' } as DiscoveryConfig);
    assert.equal(etcd, 'etcd://10.0.0.5:2379/portico/pools/app/');
    assert.doesNotMatch(etcd, /s3cret|user/);
    const zk = { type: 'zookeeper', hosts: [{ host: '10.0.0.7', port: 2181 }, { host: '::1', port: 2181 }], path: '/services/web' };
    assert.equal(discoverySource(zk as DiscoveryConfig), 'zookeeper://10.0.0.7:2181,[::1]:2181/services/web');
  });

  it('the list in force, the times as ISO, and the last known good only while failing with a list', () => {
    const dc = { type: 'file', path: '/s.json' } as DiscoveryConfig;
    const ok = discoveryStatus(dc, state({ servers: two, updates: 3, lastUpdateAt: Date.UTC(2026, 0, 2, 3, 4, 5) }));
    assert.deepEqual(ok, {
      type: 'file',
      source: '/s.json',
      servers: 2,
      updates: 3,
      failures: 0,
      ignoredEmpty: 0,
      lastError: null,
      lastUpdateAt: '2026-01-02T03:04:05.000Z',
      lastErrorAt: null,
      usingLastKnownGood: false,
    });
    const failing = discoveryStatus(dc, state({ servers: two, updates: 3, failures: 1, failing: true, lastError: 'bad', lastErrorAt: 0 }));
    assert.equal(failing.usingLastKnownGood, true);
    assert.equal(failing.lastErrorAt, '1970-01-01T00:00:00.000Z');
    // Failing from the start: there is no list to keep.
    assert.equal(discoveryStatus(dc, state({ failures: 1, failing: true, lastError: 'ENOENT' })).usingLastKnownGood, false);
  });

  it('metrics: one sample per pool, counters summed and gauges taken at most once when merged', async () => {
    const s: DiscoveryStatus = {
      type: 'file',
      source: '/s.json',
      servers: 2,
      updates: 3,
      failures: 1,
      ignoredEmpty: 0,
      lastError: 'x',
      lastUpdateAt: '2026-01-02T03:04:05.500Z',
      lastErrorAt: null,
      usingLastKnownGood: true,
    };
    const metrics = discoveryMetrics(() => [['web', s], ['api', { ...s, lastUpdateAt: null, updates: 0, servers: 0 }]]);
    const got = Object.fromEntries(await Promise.all(metrics.map(async (m) => [m.name, (await m.get()).values.map((v) => `${v.labels['pool']}=${v.value}`).join(' ')])));
    assert.deepEqual(got, {
      portico_discovery_updates_total: 'web=3 api=0',
      portico_discovery_failures_total: 'web=1 api=1',
      portico_discovery_servers: 'web=2 api=0',
      portico_discovery_last_update_timestamp_seconds: `web=${Date.UTC(2026, 0, 2, 3, 4, 5, 500) / 1000} api=0`,
    });
    assert.deepEqual(
      metrics.map((m) => `${m.type}/${m.aggregator}`),
      ['counter/sum', 'counter/sum', 'gauge/max', 'gauge/max'],
    );
  });
});
