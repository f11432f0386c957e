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
import { kernelKinds } from '../kernel/kind.js';
import { kindKey, type BuildContext, type KindSelector, type ListenerKind } from '../listener/kind.js';
import type { PoolHandle } from '../proxy/http/listener-runtime.js';
import type { RoutePhaseFactory } from '../proxy/http/router.js';
import type { TcpShared } from '../proxy/tcp/build.js';
import { httpKind, httpsKind } from '../proxy/http/kind.js';
import { redirectKind } from '../proxy/redirect/kind.js';
import { tcpKind } from '../proxy/tcp/kind.js';

/** What the composition root gives every kind: what each of them builds from. */
export type AppBuildContext = BuildContext<PoolHandle> & { readonly l4: TcpShared; readonly routePhases: readonly RoutePhaseFactory[]; readonly node: string };

/** A registered kind, its configuration and listener types erased. */
export type RegisteredKind = ListenerKind<any, any, AppBuildContext>;

export const listenerKinds: readonly RegisteredKind[] = [
  httpKind,
  httpsKind,
  tcpKind,
  redirectKind,
  dnsKind,
  ...kernelKinds,
];

for (const k of listenerKinds) registerListenerConfig(k);

const byKey = new Map<string, RegisteredKind>(listenerKinds.map((k) => [kindKey(k), k]));

/**
 * The kind of a listener's configuration or of a running listener: by its `protocol`, and its
 * `dataPlane` (kindKey); a bare protocol names its userspace kind.
 */
export function kindOf(x: KindSelector | ListenerConfig['protocol'] | string): ListenerKind<ListenerConfig, ListenerService, AppBuildContext> {
  const key = typeof x === 'string' ? x : kindKey(x);
  const k = byKey.get(key);
  // The listener union holds only registered kinds: reaching here is a bug.
  if (k === undefined) throw new Error(`listener protocol ${key} has no registered kind`);
  return k;
}
