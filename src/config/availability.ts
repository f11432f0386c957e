import { availableParallelism } from 'node:os';
import { compressionAvailable } from '../compress/engine.js';
import { icmpUnavailable } from '../net/icmp-support.js';
import type { PathIssue } from './path.js';
import type { Config } from './types.js';

/**
 * Configuration that the schema accepts but this build of Portico cannot run yet. Each
 * entry is refused with a clear message, so that no configuration is silently ignored.
 * An entry is removed when its feature lands.
 */
export function checkAvailability(config: Config): PathIssue[] {
  const out: PathIssue[] = [];
  config.listeners.forEach((l, i) => {
    if (l.protocol === 'dns') return;
    if (l.protocol === 'redirect') {
      const ps = config.pools.find((p) => p.name === l.pool)?.persistence;
      if (ps !== undefined && ps !== false && ps.type === 'cookie' && ps.mode === 'prefix') {
        out.push({ path: ['listeners', i, 'pool'], message: "cookie persistence in prefix mode needs the server's own cookie, which a redirect listener never sees (use mode: insert)" });
      }
      return;
    }
    if (l.protocol === 'udp' || (l.protocol === 'tcp' && l.dataPlane === 'kernel')) {
      // Under cluster.workers the primary runs every nft and conntrack command (src/cluster/workers-kernel.ts).
      // The distributed mode's membership (heartbeats, bucket leases) is one node's, kept by one
      // process: several workers would each claim the node's buckets.
      if (l.forwarding === 'distributed') {
        const workers = config.cluster.workers === 'auto' ? availableParallelism() : config.cluster.workers;
        if (workers > 1) {
          out.push({
            path: ['listeners', i, 'forwarding'],
            message: `forwarding: distributed runs in one process (cluster.workers is ${config.cluster.workers}, ${workers} processes): set cluster.workers: 1 (the kernel forwards the packets; one process keeps the node's buckets)`,
          });
        }
      }
      return;
    }
    if (l.protocol === 'tcp') return;
    l.routes.forEach((r, j) => {
      if (r.match?.sni !== undefined && l.protocol === 'http') {
        out.push({ path: ['listeners', i, 'routes', j, 'match', 'sni'], message: 'matching on sni needs an https listener (plain HTTP carries no TLS server name)' });
      }
      // Streaming compression drives node:zlib's engine synchronously (src/compress/engine.ts).
      if (r.compress !== undefined && r.compress !== false) {
        const why = compressionAvailable();
        if (why !== undefined) out.push({ path: ['listeners', i, 'routes', j, 'compress'], message: why });
      }
      if (r.match?.clientCert !== undefined && (l.protocol !== 'https' || l.tls.clientAuth === false)) {
        out.push({ path: ['listeners', i, 'routes', j, 'match', 'clientCert'], message: 'matching on clientCert needs an https listener with tls.clientAuth' });
      }
    });
  });
  config.pools.forEach((p, i) => {
    if (p.health.type === 'icmp') {
      const why = icmpUnavailable();
      if (why !== undefined) out.push({ path: ['pools', i, 'health', 'type'], message: why });
    }
  });
  return out;
}
