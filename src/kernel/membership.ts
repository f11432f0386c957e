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
 * When the store does not answer, the last live set read is kept (the nodes usually lose the store
 * together, and dropping everything would stop the service), or, before any read, every configured
 * node (each takes its own share, none takes all); `onLive` is still called each round, so the
 * kernel's ownership is renewed. A node cut off from the store alone keeps its buckets while the
 * others take them: docs/kernel-l4.md says so.
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
  /** After each round (and at once on a change): the live nodes, sorted, and whether they changed. */
  readonly onLive: (live: readonly string[], changed: boolean) => void;
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
    this.timer = setInterval(() => void this.round(), this.o.heartbeatMs);
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

  /** Leave the set (delete the key, publish) and stop the rounds. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
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
    const { store, listener, node, nodes } = this.o;
    let next: string[];
    try {
      const wasLive = this.liveSet.includes(node);
      if (this.willing) await store.set(heartbeatKey(listener, node), String(Date.now()), this.o.deadAfterMs);
      const values = await Promise.all(nodes.map((n) => store.get(heartbeatKey(listener, n))));
      next = nodes.filter((_, i) => values[i] !== undefined).sort();
      this.known = true;
      // A node that (re)joins says so, so that the others read again now rather than at their next round.
      if (this.willing && !wasLive) await store.publish(membershipChannel(listener), `join ${node}`);
    } catch (err) {
      this.o.onStoreError?.(err);
      // Never read yet: every node, as every node assumes alike (each takes its share, none all).
      next = (this.known ? this.liveSet : nodes).filter((n) => n !== node || this.willing);
      if (this.willing && !next.includes(node)) next = [...next, node].sort();
    }
    if (this.stopped) return;
    const changed = next.length !== this.liveSet.length || next.some((n, i) => n !== this.liveSet[i]);
    this.liveSet = next;
    this.o.onLive(next, changed);
  }
}
