import type { AdminState, OpState, Server } from '../core/server.js';

/**
 * The live side of one server in one pool: counters the data path updates and the
 * states the pool keeps. One object per server for the pool's life (kept across
 * reloads while the server keeps its name), so hot-path updates are field writes.
 */
export class ServerRuntime {
  server: Server;
  admin: AdminState;
  op: OpState;
  /** Requests in flight (picked and not yet finished). */
  active = 0;
  /** Requests started on this server, ever. */
  requests = 0;
  /** Requests that ended in an upstream error (connect, reset, timeout, bad response). */
  failures = 0;
  /** 5xx responses sent by the server. */
  serverErrors = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** When the op state last changed (ms, the pool's clock). */
  changedAt = 0;
  /** Effective weight override during slow start; undefined = configured weight. */
  effectiveWeight: number | undefined = undefined;
  /** Removal requested (drain first, remove once idle). */
  removing = false;

  // ---- lifecycle: the op state is down while any source says so (Envoy's health flags) ----
  /** What active checks (or whoever sets the op state other than outlier detection) observed. */
  observed: OpState;
  /** Ejected by outlier detection (passive checks). */
  ejected = false;
  /** Consecutive errors of live traffic (outlier detection). */
  errorStreak = 0;
  /** Ejections in a row (outlier detection doubles ejectFor each time). */
  ejections = 0;
  /** When the last ejection ended (ms, the pool's clock); 0 when never. */
  ejectionEndedAt = 0;
  /** When its slow-start ramp began (ms, the pool's clock); -1 when not ramping. */
  rampStartedAt = -1;

  constructor(server: Server, admin: AdminState, op: OpState) {
    this.server = server;
    this.admin = admin;
    this.op = op;
    this.observed = op;
  }

  get weight(): number {
    return this.effectiveWeight ?? this.server.weight;
  }
}
