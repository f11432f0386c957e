/**
 * Every listener kind, by the `protocol` it answers to. Adding a kind is a folder with its
 * `kind.ts` (src/listener/kind.ts says what one holds), its schema in the listener union
 * (src/config/schema/listener.ts) and one line here.
 */
import type { ListenerConfig } from '../config/types.js';
import { dnsKind } from '../dns/kind.js';
import type { AnyListenerKind, ListenerKind } from '../listener/kind.js';
import { httpKind, httpsKind } from '../proxy/http/kind.js';
import { redirectKind } from '../proxy/redirect/kind.js';
import { tcpKind } from '../proxy/tcp/kind.js';

export const listenerKinds: readonly AnyListenerKind[] = [
  httpKind,
  httpsKind,
  tcpKind,
  redirectKind,
  dnsKind,
];

const byProtocol = new Map<string, AnyListenerKind>(listenerKinds.map((k) => [k.protocol, k]));

/** The kind of a listener's configuration (or of a running listener, by its `protocol`). */
export function kindOf(protocol: ListenerConfig['protocol'] | string): ListenerKind {
  const k = byProtocol.get(protocol);
  // The schema admits only registered protocols (listener-kinds.test.ts): reaching here is a bug.
  if (k === undefined) throw new Error(`listener protocol ${protocol} has no registered kind`);
  return k;
}
