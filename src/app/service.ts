/** Something Portico runs: a listener, a health monitor, the admin API. Constructors do no I/O. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Stop accepting; finish in-flight work for up to graceMs, then cut. */
  stop(graceMs: number): Promise<void>;
}

export type { ListenerService } from '../listener/kind.js';

/** Why a bind failed, in an operator's words, by the error's code. */
const BIND_HINTS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is in use by another process',
  EACCES: 'permission denied; a port below 1024 needs root or the CAP_NET_BIND_SERVICE capability (see docs/deployment.md)',
  EADDRNOTAVAIL: 'no interface of this host has that address',
};

/**
 * The error of a service that could not start listening: `what` (`listener web`) and the address
 * it was to listen on, the error's code and what it means; the original error is its cause.
 */
export function listenFailure(what: string, protocol: string, address: { host: string; port: number }, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  const code = e?.code;
  const why = code === undefined ? String(e?.message ?? err) : `${code} (${BIND_HINTS[code] ?? e.message})`;
  return new Error(`${what} cannot listen on ${protocol}://${host}:${address.port}: ${why}`, { cause: err });
}
