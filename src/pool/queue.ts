/** Order in the queue: `high` leaves first, then `normal`, then `low`; FIFO within each. */
export type QueuePriority = 'high' | 'normal' | 'low';

/** A request parked in a pool's queue (an HTTP session). */
export interface QueueWaiter {
  /**
   * A slot may be free: pick a server again. Returns false when none could be had; the waiter is
   * then put back first in line.
   */
  resumeFromQueue(): boolean;
  /** No server is available any more: answer at once (503). */
  rejectFromQueue(): void;
}

const LANE: Readonly<Record<QueuePriority, number>> = { high: 0, normal: 1, low: 2 };

/**
 * The bounded queue of a pool whose servers are all at maxConnections. Removal of any waiter is
 * O(1) (a client that leaves, a wait that expires); the pool serves it as slots free up.
 */
export class RequestQueue<W = QueueWaiter> {
  readonly max: number;
  private readonly lanes: [Set<W>, Set<W>, Set<W>] = [new Set(), new Set(), new Set()];
  /** A waiter that was served but got no server: it goes first next time. */
  private front: W | undefined = undefined;
  private n = 0;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.n;
  }

  /** Park a waiter; false when the queue is full. */
  enqueue(w: W, priority: QueuePriority = 'normal'): boolean {
    if (this.n >= this.max) return false;
    this.lanes[LANE[priority]]!.add(w);
    this.n++;
    return true;
  }

  /** Take a waiter out (it left or its wait expired); false when it was not queued. */
  remove(w: W): boolean {
    if (this.front === w) {
      this.front = undefined;
      this.n--;
      return true;
    }
    for (const lane of this.lanes) {
      if (lane.delete(w)) {
        this.n--;
        return true;
      }
    }
    return false;
  }

  has(w: W): boolean {
    return this.front === w || this.lanes.some((l) => l.has(w));
  }

  /** The next waiter to serve, taken out of the queue. */
  shift(): W | undefined {
    if (this.n === 0) return undefined;
    const f = this.front;
    if (f !== undefined) {
      this.front = undefined;
      this.n--;
      return f;
    }
    for (const lane of this.lanes) {
      if (lane.size === 0) continue;
      const w = lane.values().next().value as W;
      lane.delete(w);
      this.n--;
      return w;
    }
    return undefined;
  }

  /** Put back the waiter just shifted, first in line (it could not get a server). */
  unshift(w: W): void {
    if (this.front !== undefined) this.lanes[0].add(this.front); // never happens: one is served at a time
    else this.n++;
    this.front = w;
  }
}
