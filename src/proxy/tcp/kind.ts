/** The `tcp` listener kind: layer 4, one server per client connection, SNI routes and session-id persistence with `inspect: tls`. */
import { tcpListenerSchema } from '../../config/schema/listener.js';
import { limitShare } from '../../core/limit-share.js';
import { listenerKind, type BuildContext } from '../../listener/kind.js';
import { buildTcpListener, updateTcpListener, type TcpBuildDeps } from './build.js';
import type { TcpListener } from './tcp-listener.js';

const deps = (ctx: BuildContext): TcpBuildDeps => ({ handles: ctx.handles, observer: ctx.observer, shared: ctx.l4 });

export const tcpKind = listenerKind<'tcp', TcpListener>({
  protocol: 'tcp',
  schema: tcpListenerSchema,
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
