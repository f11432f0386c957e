/** The `redirect` listener kind: each request answered with a redirect to the picked server's own URL, over HTTP or TLS. */
import { redirectListenerSchema } from './schema.js';
import { listenerKind } from '../../listener/kind.js';
import type { BuildContext } from '../http/kind.js';
import type { PoolHandle } from '../http/listener-runtime.js';
import { buildRedirectListener, updateRedirectListener } from './build.js';
import type { HttpListener } from '../http/listener.js';

function handleOf(pool: string, ctx: BuildContext): PoolHandle {
  const h = ctx.handles.get(pool);
  if (h === undefined) throw new Error(`pool ${pool} does not exist`);
  return h;
}

export const redirectKind = listenerKind<'redirect', HttpListener, BuildContext>({
  protocol: 'redirect',
  schema: redirectListenerSchema,
  build(lc, ctx) {
    const h = handleOf(lc.pool, ctx);
    return buildRedirectListener(lc, h, ctx.observer, { clock: ctx.clock, log: ctx.log, store: ctx.store });
  },
  update(l, lc, ctx) {
    const h = handleOf(lc.pool, ctx);
    return updateRedirectListener(l, lc, h);
  },
});
