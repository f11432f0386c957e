import { LbError } from '../core/errors.js';
import type { ServerConfig } from '../config/types.js';
import { serverSchema } from '../config/schema/server.js';

/** One discovered server: the same shape as a server of the configuration file, defaults applied. */
export type ServerSpec = ServerConfig;

/**
 * A source of server lists. `watch` yields whole lists (never deltas) until `signal` aborts.
 * A failure throws a DiscoveryError out of the iteration; the watcher keeps the last good
 * list and calls `watch` again after a back-off.
 */
export interface Discovery {
  readonly name: string;
  watch(signal: AbortSignal): AsyncIterable<readonly ServerSpec[]>;
}

/** A provider could not produce a list (resolution failed, a file is invalid, etcd is unreachable ...). */
export class DiscoveryError extends LbError {
  readonly code = 'LB_DISCOVERY';
  readonly source = 'internal';
  override readonly retryable = true;
  constructor(readonly provider: string, message: string, options?: ErrorOptions) {
    super(`${provider}: ${message}`, options);
  }
}

/**
 * Validate one raw entry (from a file or an etcd value) as a server of the configuration
 * file. `fallbackName` is used when the entry has no name. Returns the server or the reasons.
 */
export function parseServerEntry(raw: unknown, fallbackName?: string): { ok: true; server: ServerSpec } | { ok: false; message: string } {
  let input = raw;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && fallbackName !== undefined && !('name' in raw)) {
    input = { name: fallbackName, ...raw };
  }
  const r = serverSchema.safeParse(input);
  if (r.success) return { ok: true, server: r.data as ServerSpec };
  const message = r.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  return { ok: false, message };
}

/** A server name from free text (a DNS name, an etcd key): the characters a name allows, at most 64. */
export function serverNameOf(text: string): string {
  let n = text.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  if (n === '') n = 'server';
  if (n.length > 64) n = n.slice(0, 55) + '-' + shortHash(n);
  return n;
}

function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
