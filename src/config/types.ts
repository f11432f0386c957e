/** The typed, validated, deep-frozen configuration that the rest of Portico consumes. */
import type { z } from 'zod';
import type { configSchema } from './schema/root.js';

export type DeepReadonly<T> = T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** What a configuration file or object holds before validation (for library users writing one in code). */
export type ConfigInput = z.input<typeof configSchema>;
/** Durations are milliseconds, addresses `{ host, port }`, rates `{ count, perMs }`, status ranges `[lo, hi][]`. */
export type Config = DeepReadonly<z.output<typeof configSchema>>;

export type AdminConfig = Config['admin'];
export type ClusterConfig = Config['cluster'];
export type LogConfig = Config['log'];
export type AccessLogConfig = Exclude<LogConfig['access'], false>;

export type ListenerConfig = Config['listeners'][number];
export type ListenerProtocol = ListenerConfig['protocol'];
export type HttpListenerConfig = Extract<ListenerConfig, { protocol: 'http' }>;
export type HttpsListenerConfig = Extract<ListenerConfig, { protocol: 'https' }>;
/** The userspace tcp proxy (`dataPlane` absent or `userspace`). */
export type TcpListenerConfig = Extract<ListenerConfig, { protocol: 'tcp'; dataPlane?: 'userspace' | undefined }>;
/** A kernel (nftables) virtual server: `dataPlane: kernel`, protocol tcp or udp. */
export type KernelListenerConfig = Extract<ListenerConfig, { dataPlane: 'kernel' }>;
export type RedirectListenerConfig = Extract<ListenerConfig, { protocol: 'redirect' }>;
export type DnsListenerConfig = Extract<ListenerConfig, { protocol: 'dns' }>;
export type HttpLimitsConfig = HttpListenerConfig['limits'];
export type AccessConfig = HttpListenerConfig['access'];
export type RateLimitConfig = Exclude<HttpListenerConfig['rateLimit'], false>;
export type ListenerTlsConfig = HttpsListenerConfig['tls'];
export type DnsZoneConfig = DnsListenerConfig['zones'][number];
export type DnsRecordConfig = DnsZoneConfig['records'][number];

export type RouteConfig = HttpListenerConfig['routes'][number];
export type RouteMatchConfig = NonNullable<RouteConfig['match']>;
export type RouteRedirectConfig = NonNullable<RouteConfig['redirect']>;
export type RouteRespondConfig = NonNullable<RouteConfig['respond']>;
export type RouteHeadersConfig = RouteConfig['headers'];

export type PoolConfig = Config['pools'][number];
export type ServerConfig = PoolConfig['servers'][number];
export type HashConfig = PoolConfig['hash'];
export type LardConfig = PoolConfig['lard'];
export type HealthConfig = PoolConfig['health'];
export type HealthCheckType = HealthConfig['type'];
export type PassiveConfig = Exclude<PoolConfig['passive'], false>;
export type PersistenceConfig = Exclude<PoolConfig['persistence'], false>;
export type PoolTimeoutsConfig = PoolConfig['timeouts'];
export type KeepAliveConfig = PoolConfig['keepAlive'];
export type QueueConfig = PoolConfig['queue'];
export type UpstreamTlsConfig = Exclude<PoolConfig['tls'], false>;
export type DiscoveryConfig = PoolConfig['discovery'];

export type { Address } from './values/address.js';
export type { Rate } from './values/rate.js';
export type { StatusRange } from './values/status-ranges.js';
