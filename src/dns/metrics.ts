/** `portico_dns_queries_total{listener,zone,rcode}` (SPEC §6), read from the dns listeners at scrape time. */
import { CollectedMetric } from '../observability/metrics.js';
import type { DnsListener } from './listener.js';

export function dnsQueriesMetric(listeners: () => Iterable<DnsListener>): CollectedMetric {
  return new CollectedMetric(
    'portico_dns_queries_total',
    'DNS messages handled, by listener, zone (empty outside every zone) and rcode (DROPPED: not answered; RATE-LIMITED: dropped by response-rate limiting)',
    'counter',
    function* () {
      for (const l of listeners()) {
        for (const c of l.queryCounts()) yield { labels: { listener: l.name, zone: c.zone, rcode: c.rcode }, value: c.n };
      }
    },
  );
}
