import type { FailureKind } from '../health/outlier.js';
import type { Persistence } from '../persistence/persistence.js';
import type { Pool } from '../pool/pool.js';
import type { ServerRuntime } from '../pool/server-runtime.js';

/**
 * A pool as every data path (http and tcp alike) uses it: the pool, its retries and timeouts,
 * passive health and persistence. The HTTP data path's `PoolHandle` adds connection reuse,
 * the response timeout and the request hash key.
 */
export interface UpstreamPool {
  readonly pool: Pool;
  readonly retries: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly retryAfterSec: number;
  /** How long a request may wait in the pool's queue (every server at maxConnections); 0 = no limit. */
  readonly queueTimeoutMs?: number | undefined;
  /**
   * Passive health: told of every finished request on a server, with how it failed ('' when the
   * server answered) and the server's status (0 when it gave none).
   */
  onOutcome?: ((rt: ServerRuntime, failure: FailureKind, status: number) => void) | undefined;
  /** Keeps clients on one server (the pool's `persistence`). */
  readonly persistence?: Persistence | undefined;
}
