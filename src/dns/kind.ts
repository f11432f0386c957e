/** The `dns` listener kind: authoritative answers from the pools' servers, over UDP and TCP. */
import { dnsListenerSchema } from './schema.js';
import { limitShare } from '../core/limit-share.js';
import { listenerKind, type BuildContext } from '../listener/kind.js';
import type { Pool } from '../pool/pool.js';
import { buildDnsListener, dnsListenerSettings, type DnsDeps } from './build.js';
import type { DnsListener } from './listener.js';
import { dnsQueriesMetric } from './metrics.js';

/** The pools behind the context's handles, by name. */
const poolsOf = (ctx: BuildContext): Map<string, Pool> => new Map([...ctx.handles].map(([name, h]) => [name, h.pool]));
const deps = (ctx: BuildContext): DnsDeps => ({ rng: ctx.rng, clock: ctx.clock });

export const dnsKind = listenerKind<'dns', DnsListener>({
  protocol: 'dns',
  schema: dnsListenerSchema,
  transports: ['udp', 'tcp'],
  build: (lc, ctx) => buildDnsListener(lc, poolsOf(ctx), deps(ctx)),
  update(l, lc, ctx) {
    l.update(dnsListenerSettings(lc, poolsOf(ctx), deps(ctx)));
    return true;
  },
  shareOf: (lc, workers) => ({ ...lc, tcp: { ...lc.tcp, maxConnections: limitShare(lc.tcp.maxConnections, workers) } }),
  metrics: (listeners) => [dnsQueriesMetric(listeners)],
});
