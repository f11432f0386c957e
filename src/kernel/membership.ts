import type { StateStore } from '../store/state-store.js';

/**
 * Who is alive among the nodes of a `distributed` listener (SPEC §10), through the cluster's
 * shared store: each node that is willing to take flows (running, and its own server healthy)
 * writes its heartbeat key every `heartbeatMs` with a time to live of `deadAfterMs`, and reads
 * every node's key; the live set is the nodes whose key exists. A node that stops or whose server
 * fails deletes its key and publishes on the listener's channel, so the others read again at once;
 * a node that is killed is gone when its key expires. No coordinator: every node computes the same
 * bucket table from the same live set (src/kernel/buckets.ts).
 *
 * This node's lease: it may hold its buckets only while its own heartbeat is surely still in the
 * store, that is until `deadAfterMs` minus one heartbeat after it sent the last heartbeat the store
 * acknowledged (`heldUntil`, given to `onLive` each round). A node whose heartbeats stop landing
 * (its process starved, the store slow for it alone) so gives its buckets up before the others see
 * its key expire and take them: never two nodes answering one flow.
 *
 * When the store answers nothing for `deadAfterMs` on end, it is taken as lost (for every node
 * alike, as far as this node can tell): the last live set read is kept (or, before any read, every
 * configured node: each takes its own share, none takes all), and the lease is extended round by
 * round, so that a dead store does not stop the service for longer than that. A node cut off from
 * the store alone then takes its buckets again while the others hold them: docs/kernel-l4.md says so.
 *
 * A killed node is seen gone as soon as its key can have expired: each round looks at when the
 * others wrote their heartbeats (the value of their keys) and reads again right after the earliest
 * could expire, rather than at the next heartbeat (a clock that differs between nodes only moves
 * that extra read).
 */
export interface MembershipOptions {
  readonly store: StateStore;
  readonly listener: string;
  /** This node's name (cluster.nodeName). */
  readonly node: string;
  /** Every node of the listener (`kernel.distributed.nodes`). */
  readonly nodes: readonly string[];
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  /**
   * After each round (and at once on a change): the live nodes, sorted, whether they changed, and
   * until when (ms since the epoch) this node may hold its buckets (0: it holds none).
   */
  readonly onLive: (live: readonly string[], changed: boolean, heldUntil: number) => void;
  readonly onStoreError?: ((err: unknown) => void) | undefined;
}

export const heartbeatKey = (listener: string, node: string): string => `kernel:nlb:${listener}:node:${node}`;
export const membershipChannel = (listener: string): string => `kernel:nlb:${listener}`;

export class Membership {
  private readonly o: MembershipOptions;
  private willing = true;
  private liveSet: readonly string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Whether a round has read the store yet. */
  private known = false;
  /** Until when this node may hold its buckets (see above). */
  private heldUntil = 0;
  /** When the store began failing every round (undefined while it answers). */
  private failingSince: number | undefined;
  /** The extra read at the earliest time another node's key can expire. */
  private expiryTimer: NodeJS.Timeout | undefined;
  /** When the regular rounds are due next. */
  private nextRoundAt = 0;
  /** Each node's heartbeat value at the last round that read them. */
  private lastWritten: readonly (string | undefined)[] = [];

  constructor(o: MembershipOptions) {
    if (!o.nodes.includes(o.node)) throw new Error(`this node '${o.node}' is not one of kernel.distributed.nodes (${o.nodes.join(', ')})`);
    this.o = o;
  }

  /** The live nodes of the last round, sorted. */
  live(): readonly string[] {
    return this.liveSet;
  }

  /** Subscribe, run the first round, then one every heartbeat. */
  async start(): Promise<void> {
    await this.o.store
      .subscribe(membershipChannel(this.o.listener), () => void this.round(), this.abort.signal)
      .catch((err: unknown) => this.o.onStoreError?.(err));
    await this.round();
    this.nextRoundAt = Date.now() + this.o.heartbeatMs;
    this.timer = setInterval(() => {
      this.nextRoundAt = Date.now() + this.o.heartbeatMs;
      void this.round();
    }, this.o.heartbeatMs);
    this.timer.unref();
  }

  /**
   * Whether this node takes flows (its own server is healthy). Giving up deletes the heartbeat
   * and tells the others at once; coming back writes it at once.
   */
  async setWilling(willing: boolean): Promise<void> {
    if (willing === this.willing || this.stopped) return;
    this.willing = willing;
    if (!willing) await this.leave();
    await this.round();
  }

  /**
   * Stop the rounds, run `beforeLeave` (the owner gives its buckets up in its kernel first, so
   * that no flow is answered by two nodes), then leave the set (delete the key, publish).
   */
  async stop(beforeLeave?: () => Promise<void>): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    await this.running;
    await beforeLeave?.();
    await this.leave();
    this.abort.abort();
  }

  private async leave(): Promise<void> {
    try {
      await this.o.store.delete(heartbeatKey(this.o.listener, this.o.node));
      await this.o.store.publish(membershipChannel(this.o.listener), `leave ${this.o.node}`);
    } catch (err) {
      this.o.onStoreError?.(err);
    }
  }

  /** One round at a time; a round asked for while one runs runs right after it. */
  private round(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.once();
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async once(): Promise<void> {
    const { store, listener, node, nodes, heartbeatMs, deadAfterMs } = this.o;
    let next: string[];
    let written: (string | undefined)[] = [];
    const sentAt = Date.now();
    try {
      const wasLive = this.liveSet.includes(node);
      // The write and the reads at once (one round trip): on one connection the store answers
      // them in order, so this node's own read sees its write.
      const [, ...values] = await Promise.all([
        this.willing ? store.set(heartbeatKey(listener, node), String(sentAt), deadAfterMs) : undefined,
        ...nodes.map((n) => store.get(heartbeatKey(listener, n))),
      ]);
      written = values;
      next = nodes.filter((_, i) => written[i] !== undefined).sort();
      this.known = true;
      this.failingSince = undefined;
      // The store holds this heartbeat for deadAfter from when it took it (after sentAt); one
      // heartbeat less leaves room for applying the lease and for the timers' slack.
      this.heldUntil = this.willing ? sentAt + deadAfterMs - heartbeatMs : 0;
      // A node that (re)joins says so, so that the others read again now rather than at their next round.
      if (this.willing && !wasLive) await store.publish(membershipChannel(listener), `join ${node}`);
    } catch (err) {
      this.o.onStoreError?.(err);
      const now = Date.now();
      this.failingSince ??= now;
      // Never read yet: every node, as every node assumes alike (each takes its share, none all).
      next = (this.known ? this.liveSet : nodes).filter((n) => n !== node || this.willing);
      if (this.willing && !next.includes(node)) next = [...next, node].sort();
      // The store lost (no answer for deadAfter on end): the lease goes on from round to round.
      // Until then it stays what the last heartbeat written allows.
      if (!this.willing) this.heldUntil = 0;
      else if (now - this.failingSince >= deadAfterMs) this.heldUntil = now + deadAfterMs - heartbeatMs;
    }
    if (this.stopped) return;
    this.watchExpiry(written);
    const changed = next.length !== this.liveSet.length || next.some((n, i) => n !== this.liveSet[i]);
    this.liveSet = next;
    this.o.onLive(next, changed, this.heldUntil);
  }

  /**
   * Read again right after the earliest time another live node's key can expire, when that comes
   * before the next regular round: its value is when it was written (by that node's clock).
   */
  private watchExpiry(written: readonly (string | undefined)[]): void {
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const now = Date.now();
    const before = this.lastWritten;
    this.lastWritten = written;
    let at = Infinity;
    this.o.nodes.forEach((n, i) => {
      const v = Number(written[i]);
      if (n === this.o.node || !Number.isFinite(v)) return;
      // 25 ms after it can expire (the store started its time to live when it took the write).
      const expires = v + this.o.deadAfterMs + 25;
      let when = expires;
      if (expires <= now) {
        // Past, and the key still there: the write reached the store late, or that node's clock
        // is behind. Once more soon only for a heartbeat not renewed since the last read.
        if (before[i] !== written[i]) return;
        when = now + 50;
      }
      if (when < at) at = when;
    });
    if (at >= this.nextRoundAt || this.stopped) return;
    this.expiryTimer = setTimeout(() => void this.round(), at - now);
    this.expiryTimer.unref();
  }
}
