/** A `dns` listener from its configuration: zones compiled against the pools, geo tables, rate limiting. */
import type { Clock } from '../core/clock.js';
import type { Rng } from '../core/rng.js';
import type { DnsListenerConfig } from '../config/types.js';
import { GeoMap } from './geo.js';
import { DnsListener, type DnsListenerSettings, type DnsObserver } from './listener.js';
import { Responder } from './responder.js';
import { ResponseRateLimiter } from './rrl.js';
import { Zone, ZoneSet, type PoolView } from './zone.js';

export interface DnsDeps {
  readonly rng: Rng;
  readonly clock: Clock;
  readonly observer?: DnsObserver | undefined;
  /** Seconds since 1970 used as the default SOA serial (the time the configuration was loaded). */
  readonly nowSec?: number | undefined;
}

/** The settings of a dns listener (also what a reload gives a running one). */
export function dnsListenerSettings(lc: DnsListenerConfig, pools: ReadonlyMap<string, PoolView>, deps: DnsDeps): DnsListenerSettings {
  const nowSec = deps.nowSec ?? Math.floor(Date.now() / 1000);
  const zones = new ZoneSet(lc.zones.map((z) => new Zone(z, pools, nowSec)));
  const geo = new GeoMap({ regions: lc.geo.regions, fallback: lc.geo.fallback, default: lc.geo.default, proximity: lc.proximity });
  const responder = new Responder({ zones, maxUdpSize: lc.maxUdpSize, geo: geo.isEmpty ? undefined : geo, rng: deps.rng });
  const rateLimiter = lc.responseRateLimit === false ? undefined : new ResponseRateLimiter(lc.responseRateLimit, deps.clock);
  return {
    name: lc.name,
    host: lc.listen.host,
    port: lc.listen.port,
    responder,
    rateLimiter,
    tcp: {
      idleTimeoutMs: lc.tcp.idleTimeout,
      maxConnections: lc.tcp.maxConnections,
      maxQueriesPerConnection: lc.tcp.maxQueriesPerConnection,
    },
  };
}

export function buildDnsListener(lc: DnsListenerConfig, pools: ReadonlyMap<string, PoolView>, deps: DnsDeps): DnsListener {
  return new DnsListener(dnsListenerSettings(lc, pools, deps), deps.observer);
}
