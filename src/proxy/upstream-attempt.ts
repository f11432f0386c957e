import type { Server, ServerId } from '../core/server.js';
import { Outcome, retryAllowed, type ServerFailure } from '../core/outcome.js';
import type { Pool } from '../pool/pool.js';
import type { QueuePriority, QueueWaiter } from '../pool/queue.js';
import type { ServerRuntime } from '../pool/server-runtime.js';

/** What an attempt needs of a pool as a route uses it (the http and tcp pool handles have it). */
export interface AttemptPool {
  readonly pool: Pool;
  /** Tries on another server after the first (SPEC §4, where safe). */
  readonly retries: number;
  /** Passive health: told of every release, with how the server failed ('' when it did not) and its status. */
  onOutcome?: ((rt: ServerRuntime, failure: ServerFailure, status: number) => void) | undefined;
}

/**
 * Who an attempt works for (an HTTP session, a tcp connection). The attempt calls back, never
 * the other way round through closures: the owner is bound once, when the attempt is made.
 */
export interface AttemptOwner {
  /**
   * A server was picked, before it is acquired: true when the owner answers the client itself
   * instead of contacting it (a redirect to it), having called `attempt.placed()`. Absent or
   * false: the server is acquired and `attemptConnect` follows.
   */
  attemptPicked?(server: Server): boolean;
  /** A server was picked and acquired (`attempt.server`, `attempt.runtime`): open or reuse a connection to it. */
  attemptConnect(server: Server): void;
  /** Every available server is at its maxConnections: the attempt waits in the pool's queue (arm the queue deadline). */
  attemptQueued(): void;
  /** No server could be had (none available, the queue full or closed, every try spent): answer with `outcome`. */
  attemptFailed(outcome: Outcome): void;
}

/**
 * The upstream attempt both data paths use: pick a server (the pinned one first, never one
 * already tried, by the request's hash key), wait in the pool's queue when every server is
 * full, hand the server to the owner to connect, retry on another server as SPEC §4 allows,
 * and release the server with the outcome.
 *
 * Pins: the server persistence pinned the request to is used whenever the pool still accepts
 * traffic pinned to it, it has a free slot and this request has not failed on it already, on
 * the first try or a later one. A failed server goes into `avoid`, so a retry goes elsewhere
 * (SPEC §4: retries only on another server); a pin the first try could not use (the server was
 * full) is still honoured by a retry once it has room.
 *
 * One attempt per connection, reset by `begin` for each request: nothing is allocated per
 * request but the `avoid` set, and that only once a try failed.
 */
export class UpstreamAttempt implements QueueWaiter {
  private readonly owner: AttemptOwner;
  private handle: AttemptPool | undefined = undefined;
  private pinned: Server | undefined = undefined;
  private priority: QueuePriority = 'normal';
  /** The pick context, reused: the request's hash key and path, and the servers tried. */
  private readonly ctx: { hashKey: string | undefined; path: string | undefined; avoid: Set<ServerId> | undefined } = {
    hashKey: undefined,
    path: undefined,
    avoid: undefined,
  };
  /** The last try's failure, the answer when no other server is left. */
  private last: Outcome | undefined = undefined;
  private queuedAt = 0;
  /** In the pool's queue. */
  queued = false;
  /** Tries so far (each server picked counts one). */
  tries = 0;
  /** ms spent in the pool's queue (0 when it did not wait). */
  queueMs = 0;
  /** The server of the current try, and its runtime while acquired. */
  server: Server | undefined = undefined;
  runtime: ServerRuntime | undefined = undefined;

  constructor(owner: AttemptOwner) {
    this.owner = owner;
  }

  get pool(): AttemptPool | undefined {
    return this.handle;
  }

  /** A new request: forget the last one's servers, pin, key and tries. */
  begin(handle: AttemptPool, hashKey: string | undefined, path: string | undefined, priority: QueuePriority = 'normal'): void {
    this.handle = handle;
    this.pinned = undefined;
    this.priority = priority;
    this.ctx.hashKey = hashKey;
    this.ctx.path = path;
    this.ctx.avoid = undefined;
    this.last = undefined;
    this.queued = false;
    this.tries = 0;
    this.queueMs = 0;
    this.server = undefined;
    this.runtime = undefined;
  }

  /** Persistence pinned the request to `server` (undefined: not pinned, or the pin is unknown). */
  pin(server: Server | undefined): void {
    this.pinned = server;
  }

  get pinnedServer(): Server | undefined {
    return this.pinned;
  }

  /** Pick a server and hand it to the owner; or queue; or fail. */
  run(): void {
    const h = this.handle!;
    const s = this.pick(h.pool);
    if (s !== undefined) return this.connect(h.pool, s);
    if (this.tries > 0) return this.owner.attemptFailed(this.last ?? Outcome.of('upstream-failed'));
    const saturated = h.pool.current.set.available.length > 0;
    if (saturated && h.pool.enqueue(this, this.priority)) {
      // Every available server is at maxConnections: wait for a slot (pool.release resumes us).
      this.queued = true;
      this.queuedAt = performance.now();
      return this.owner.attemptQueued();
    }
    this.owner.attemptFailed(Outcome.of(saturated ? 'queue-full' : 'no-server'));
  }

  private pick(pool: Pool): Server | undefined {
    const pin = this.pinned;
    const avoid = this.ctx.avoid;
    if (pin !== undefined && (avoid === undefined || !avoid.has(pin.id)) && pool.acceptsPinned(pin.id)) {
      // A pinned server at its maxConnections: the balancer places the request (and persistence re-pins).
      const rt = pool.runtime(pin.id);
      if (rt !== undefined && (pin.maxConnections === 0 || rt.active < pin.maxConnections)) return pin;
    }
    return pool.pick(this.ctx);
  }

  private connect(pool: Pool, s: Server): void {
    this.tries++;
    this.server = s;
    if (this.owner.attemptPicked?.(s) === true) return;
    this.runtime = pool.acquire(s);
    this.owner.attemptConnect(s);
  }

  /** The pool has a free slot: pick again. False when none could be had (we stay first in line). */
  resumeFromQueue(): boolean {
    if (!this.queued) return true;
    const pool = this.handle!.pool;
    const s = this.pick(pool);
    if (s === undefined) return false;
    this.leftQueue();
    this.connect(pool, s);
    return true;
  }

  /** No server is available any more. */
  rejectFromQueue(): void {
    if (!this.queued) return;
    this.leftQueue();
    this.owner.attemptFailed(Outcome.of('no-server'));
  }

  /** The owner's queue deadline passed: leave the queue and fail with `queue-timeout`. False when not queued. */
  expireQueue(): boolean {
    if (!this.queued) return false;
    this.handle!.pool.leaveQueue(this);
    this.leftQueue();
    this.owner.attemptFailed(Outcome.of('queue-timeout'));
    return true;
  }

  private leftQueue(): void {
    this.queued = false;
    this.queueMs = performance.now() - this.queuedAt;
  }

  /**
   * The current try failed with `o`: release its server as failed (`o` says how passive health
   * counts it), then try another server when SPEC §4 allows it (`retryAllowed`: `repeatable` says
   * whether the request may be sent again) and tries are left. True when a new try started (the
   * owner hears `attemptConnect`, `attemptQueued` never: a retry does not queue, or
   * `attemptFailed`); false when the owner must answer with `o` itself.
   */
  retry(o: Outcome, repeatable: boolean, stats: ReleaseStats): boolean {
    this.last = o;
    const s = this.server;
    this.release(false, o, stats);
    if (s === undefined || !retryAllowed(o, repeatable) || this.tries > this.handle!.retries) return false;
    (this.ctx.avoid ??= new Set()).add(s.id);
    this.run();
    return true;
  }

  /**
   * The current try failed with `o` on a kept-alive connection the server had already closed: not
   * the server's failure, so the try is not counted and the server not avoided; the request goes
   * again (to whichever server the pick gives, on a new connection the owner opens) when the
   * retry policy and the tries left allow it. True when a new try started, as for `retry`.
   */
  again(o: Outcome, repeatable: boolean, stats: ReleaseStats): boolean {
    this.last = o;
    this.release(false, undefined, stats);
    if (!retryAllowed(o, repeatable) || this.tries > this.handle!.retries) return false;
    this.tries--;
    this.run();
    return true;
  }

  /**
   * The owner answers for the picked server without contacting it (from `attemptPicked`): the
   * server is counted as given the request (its request counter: the clients sent to it) but is
   * never acquired, so its balancer hears neither onAcquire nor onRelease and passive health no
   * outcome. An answer Portico makes itself in no time says nothing of the server's response
   * time, traffic or health, and must not pull a least-time (EWMA) or least-traffic balancer
   * toward it.
   */
  placed(): void {
    const s = this.server;
    if (s !== undefined) this.handle!.pool.placed(s);
  }

  /** Leave the queue, if in it (the client went away). */
  abandon(): void {
    if (!this.queued) return;
    this.queued = false;
    this.handle!.pool.leaveQueue(this);
  }

  /**
   * Give the server back. `ok`: the request ran its course on the server (the balancer's view);
   * `failure`: the outcome when it failed (passive health counts it as its code says), undefined
   * when the server answered. Nothing happens when no server is held.
   */
  release(ok: boolean, failure: Outcome | undefined, stats: ReleaseStats): void {
    const rt = this.runtime;
    if (rt === undefined) return;
    this.runtime = undefined;
    const kind: ServerFailure = failure === undefined ? '' : failure.spec.server;
    if (kind !== '') rt.failures++;
    else if (stats.status >= 500) rt.serverErrors++;
    rt.bytesIn += stats.bytesIn;
    rt.bytesOut += stats.bytesOut;
    const h = this.handle!;
    h.pool.release(rt, { ok, latencyMs: stats.latencyMs, bytes: stats.bytesIn + stats.bytesOut });
    h.onOutcome?.(rt, kind, stats.status);
  }
}

/** What a release reports of the request (the owner itself usually has these fields). */
export interface ReleaseStats {
  /** The server's status (0 when it gave none). */
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Time to the server's first byte (http) or to the connection (tcp), when known. */
  readonly latencyMs: number | undefined;
}
