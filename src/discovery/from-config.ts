import type { DiscoveryConfig } from '../config/types.js';
import type { Discovery } from './discovery.js';
import { ConsulDiscovery } from './consul-discovery.js';
import { DnsDiscovery } from './dns-discovery.js';
import { EtcdDiscovery } from './etcd-discovery.js';
import { FileDiscovery } from './file-discovery.js';
import { ZookeeperDiscovery } from './zookeeper-discovery.js';

/** The provider of a pool's `discovery` section; undefined for `static` (the servers of the file). */
export function createDiscovery(dc: DiscoveryConfig, deps: { readonly warn: (message: string) => void }): Discovery | undefined {
  switch (dc.type) {
    case 'static':
      return undefined;
    case 'file':
      return new FileDiscovery({ path: dc.path });
    case 'dns-srv':
      return new DnsDiscovery({ name: dc.name, refreshMs: dc.refresh, nameservers: dc.nameservers?.map(formatAddress) });
    case 'dns':
      return new DnsDiscovery({ name: dc.name, port: dc.port, refreshMs: dc.refresh, nameservers: dc.nameservers?.map(formatAddress) });
    case 'etcd':
      return new EtcdDiscovery({ url: dc.url, warn: deps.warn });
    case 'consul':
      return new ConsulDiscovery({ url: dc.url, service: dc.service, tags: dc.tags, datacenter: dc.datacenter, token: dc.token, waitMs: dc.wait });
    case 'zookeeper':
      return new ZookeeperDiscovery({ hosts: dc.hosts, path: dc.path, sessionTimeoutMs: dc.sessionTimeout, connectTimeoutMs: dc.connectTimeout, warn: deps.warn });
  }
}

function formatAddress(a: { readonly host: string; readonly port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
