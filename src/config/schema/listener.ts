/**
 * The listener union: one member per listener kind, built from the kinds that registered here.
 *
 * `config` sits below the kinds (src/proxy/http/, src/proxy/tcp/, src/dns/ ...), so it cannot
 * import their schemas; the registry is inverted instead. Each kind writes its schema in its own
 * folder (a strict object whose `protocol` is its literal, from the fields of src/config/schema/)
 * and
 * - declares it for the types, by declaration merging into `ListenerSchemas`:
 *   `declare module '../../config/schema/listener.js' { interface ListenerSchemas { tcp: typeof tcpListenerSchema } }`,
 *   so `ListenerConfig` (src/config/types.ts) is the union of every kind's output;
 * - is registered at run time with its checks (`registerListenerConfig`), by the list of kinds
 *   (src/app/listener-kinds.ts: importing it registers them all, as src/balancer/index.ts does
 *   for the algorithms).
 * The union is made on the first validation, in registration order, and is fixed from then on.
 */
import { z } from 'zod';
import type { PathIssue } from '../path.js';
import { fail, ok, show } from '../values/parsed.js';
import type { RawMap } from '../checks/raw.js';
import { flag, leaf, listenAddress, name } from './fields.js';

/**
 * Every listener kind's schema by its `protocol`, for the types. Empty here: each kind adds its
 * member by declaration merging (see above).
 */
export interface ListenerSchemas {}

type AnyListenerSchema = ListenerSchemas[keyof ListenerSchemas];
/** A listener as a file writes it (any registered kind). */
export type ListenerInput = z.input<AnyListenerSchema>;
/** A listener once validated (any registered kind). */
export type ListenerOutput = z.output<AnyListenerSchema>;

/** What the configuration needs of a listener kind: its schema, its checks and what it binds. */
export interface ListenerConfigKind {
  /** The value of `protocol` that selects this kind. */
  readonly protocol: string;
  /**
   * `kernel`: the kind of `dataPlane: kernel` listeners of this protocol (src/kernel/); absent:
   * the userspace kind. Kinds that share a protocol are one member of the union, itself a union
   * by `dataPlane` (the userspace kind's schema takes `dataPlane: userspace`, optional).
   */
  readonly dataPlane?: 'kernel' | undefined;
  /** A strict object whose `protocol` is the literal `protocol` (a member of the listener union). */
  readonly schema: z.ZodType;
  /**
   * Checks that span keys beyond one listener and concern this kind (the pools its listeners
   * use ...), on the raw document (src/config/checks/raw.ts), run beside the schema in the same
   * pass so that every problem is reported at once. A check of one listener's own keys belongs in
   * the schema's `superRefine`.
   */
  readonly checks?: (root: RawMap) => PathIssue[];
  /**
   * The transports its `listen` address binds (default `tcp`); two listeners conflict on the same
   * address and port only when they share one (src/config/checks/listen-conflicts.ts).
   */
  readonly transports?: readonly Transport[];
}

export type Transport = 'tcp' | 'udp';

const kinds: ListenerConfigKind[] = [];
let fixed = false;

/** Make `kind` a member of the listener union. Throws on a second kind with the same protocol, or once a configuration was validated. */
export function registerListenerConfig(kind: ListenerConfigKind): void {
  const literal = (kind.schema as unknown as { shape?: { protocol?: { value?: unknown } } }).shape?.protocol?.value;
  if (literal !== kind.protocol) throw new Error(`listener protocol ${kind.protocol}: its schema's protocol is ${String(literal)}`);
  if (kinds.some((k) => k.protocol === kind.protocol && k.dataPlane === kind.dataPlane)) {
    throw new Error(`listener protocol ${kind.protocol}${kind.dataPlane === undefined ? '' : ` (dataPlane ${kind.dataPlane})`} is registered twice`);
  }
  if (fixed) throw new Error(`listener protocol ${kind.protocol} registered after a configuration was validated; register every kind first`);
  kinds.push(kind);
}

/** The registered kinds, in registration order. */
export function listenerConfigKinds(): readonly ListenerConfigKind[] {
  return kinds;
}

/** The registered kind of `protocol` (and `dataPlane`: absent or `userspace` is the userspace kind), if any. */
export function listenerConfigKind(protocol: unknown, dataPlane?: unknown): ListenerConfigKind | undefined {
  const plane = dataPlane === 'kernel' ? 'kernel' : undefined;
  return kinds.find((k) => k.protocol === protocol && k.dataPlane === plane) ?? kinds.find((k) => k.protocol === protocol);
}

let union: z.ZodType<ListenerOutput, ListenerInput> | undefined;

/** The discriminated union of the registered kinds' schemas (made once, then fixed). */
export function listenerUnion(): z.ZodType<ListenerOutput, ListenerInput> {
  if (union !== undefined) return union;
  if (kinds.length === 0) throw new Error('no listener kind is registered: import src/app/listener-kinds.js before validating a configuration');
  fixed = true;
  // One member per protocol; kinds that share one (tcp: userspace and kernel) are a union by dataPlane.
  const protocols = [...new Set(kinds.map((k) => k.protocol))];
  const members = protocols.map((p) => {
    const same = kinds.filter((k) => k.protocol === p).map((k) => k.schema);
    return same.length === 1 ? same[0] : z.discriminatedUnion('dataPlane', same as unknown as [z.ZodObject, ...z.ZodObject[]]);
  }) as unknown as [z.ZodObject, ...z.ZodObject[]];
  union = z
    .discriminatedUnion('protocol', members)
    .describe('A listener accepts client connections; `protocol` selects its kind') as unknown as z.ZodType<ListenerOutput, ListenerInput>;
  return union;
}

/** The schema of one entry of `listeners`: the union, made when first used. */
export const listenerSchema = z.lazy(listenerUnion);

/** The keys every listener has. */
export const listenerKeys = {
  name: name().describe('Unique name of the listener'),
  listen: listenAddress().describe('Address to bind; port 0 takes any free port'),
};

/** PROXY protocol toward the servers: `false`, `v1` (text) or `v2` (binary). */
const sendProxy = leaf<false | 'false' | 'v1' | 'v2', false | 'v1' | 'v2'>('false | v1 | v2', (v) => {
  if (v === false || v === 'false') return ok(false);
  if (v === 'v1' || v === 'v2') return ok(v);
  return fail(`expected false, v1 or v2, got ${show(v)}`);
});

/** The PROXY protocol keys of a listener that relays connections to servers (http, https, tcp). */
export const proxyProtocolKeys = {
  sendProxy: sendProxy
    .prefault(false)
    .describe("Start every connection to a server with a PROXY protocol header naming the client: `v1`, `v2` or `false`"),
  acceptProxy: flag()
    .prefault(false)
    .describe('Clients (another balancer) start each connection with a PROXY protocol header (v1 or v2); its address is the client address'),
};
