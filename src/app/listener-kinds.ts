/**
 * Every listener kind, by the `protocol` it answers to. Adding a kind is a folder with its
 * `kind.ts` (src/listener/kind.ts says what one holds) and its schema, and one line here.
 * Importing this module registers each kind's schema and checks into the listener union of the
 * configuration (src/config/schema/listener.ts): import it before validating a configuration.
 */
import { registerListenerConfig } from '../config/schema/listener.js';
import type { ListenerConfig } from '../config/types.js';
import type { ListenerService } from './service.js';
import { dnsKind } from '../dns/kind.js';
import type { BuildContext, ListenerKind } from '../listener/kind.js';
import type { PoolHandle } from '../proxy/http/listener-runtime.js';
import type { RoutePhaseFactory } from '../proxy/http/router.js';
import type { TcpShared } from '../proxy/tcp/build.js';
import { httpKind, httpsKind } from '../proxy/http/kind.js';
import { redirectKind } from '../proxy/redirect/kind.js';
import { tcpKind } from '../proxy/tcp/kind.js';

/** What the composition root gives every kind: what each of them builds from. */
export type AppBuildContext = BuildContext<PoolHandle> & { readonly l4: TcpShared; readonly routePhases: readonly RoutePhaseFactory[] };

/** A registered kind, its configuration and listener types erased. */
export type RegisteredKind = ListenerKind<any, any, AppBuildContext>;

export const listenerKinds: readonly RegisteredKind[] = [
  httpKind,
  httpsKind,
  tcpKind,
  redirectKind,
  dnsKind,
];

for (const k of listenerKinds) registerListenerConfig(k);

const byProtocol = new Map<string, RegisteredKind>(listenerKinds.map((k) => [k.protocol, k]));

/** The kind of a listener's configuration (or of a running listener, by its `protocol`). */
export function kindOf(protocol: ListenerConfig['protocol'] | string): ListenerKind<ListenerConfig, ListenerService, AppBuildContext> {
  const k = byProtocol.get(protocol);
  // The listener union holds only registered protocols: reaching here is a bug.
  if (k === undefined) throw new Error(`listener protocol ${protocol} has no registered kind`);
  return k;
}
