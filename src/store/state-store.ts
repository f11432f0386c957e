/**
 * Shared state for stick tables, TLS sessions, rate-limit counters and runtime changes.
 * One interface, several stores (memory now; Redis for several nodes). A store error means
 * "not known" to the request path, never a failed request.
 */
export interface StateStore {
  get(key: string): Promise<string | undefined>;
  /** ttlMs: the key expires after this many milliseconds; omitted = no expiry. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Add `by` to an integer counter (created at 0) and return the new value; ttlMs applies when the key is created. */
  incr(key: string, by: number, ttlMs?: number): Promise<number>;
  /** Receive messages published on `channel` until `signal` aborts. */
  subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void>;
  publish(channel: string, msg: string): Promise<void>;
  close(): Promise<void>;
  /**
   * Goes up each time the store may have lost what was written to it (a network store that
   * reconnected); a writer that caches entries writes them again, on their next use. A store
   * that never loses writes leaves it undefined.
   */
  readonly generation?: number | undefined;
}
