/** The `tcp` listener kind: layer 4, one server per client connection, SNI routes and session-id persistence with `inspect: tls`. */
import { checkTcpPools, tcpListenerSchema } from './schema.js';
import { limitShare } from '../../core/limit-share.js';
import { listenerKind, type BuildContext as AnyBuildContext } from '../../listener/kind.js';
import type { UpstreamPool } from '../upstream-pool.js';
import { buildTcpListener, updateTcpListener, type TcpBuildDeps, type TcpShared } from './build.js';

/** What a tcp listener builds from: the pools, and the per-pool L4 state every tcp listener shares (session-id tables, TLS toward servers). */
export type BuildContext = AnyBuildContext<UpstreamPool> & { readonly l4: TcpShared };
import type { TcpListener } from './tcp-listener.js';

const deps = (ctx: BuildContext): TcpBuildDeps => ({ handles: ctx.handles, observer: ctx.observer, shared: ctx.l4 });

export const tcpKind = listenerKind<'tcp', TcpListener, BuildContext>({
  protocol: 'tcp',
  schema: tcpListenerSchema,
  checks: checkTcpPools,
  build: (lc, ctx) => buildTcpListener(lc, deps(ctx)),
  update(l, lc, ctx) {
    updateTcpListener(l, lc, deps(ctx));
    return true;
  },
  shareOf: (lc, workers) => ({ ...lc, maxConnections: limitShare(lc.maxConnections, workers) }),
  adminViews: {
    /**
     * `GET /api/v1/listeners/{listener}/bindings`: the binding table, one row per live client
     * connection (client address and port, pool, server, bytes each way, age in ms).
     */
    bindings(l) {
      const bindings = l.bindings();
      return { listener: l.name, connections: bindings.length, bindings };
    },
  },
});
