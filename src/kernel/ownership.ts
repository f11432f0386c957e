import type { StateStore } from '../store/state-store.js';
import { bucketsOf } from './buckets.js';
import { Membership } from './membership.js';
import { renderOwnership, type DistributedSpec } from './render-l2.js';

/**
 * This node's share of a `distributed` listener's buckets, kept in the kernel: each heartbeat
 * round of the membership yields the live nodes, this node's buckets are computed from them
 * (the same table on every node) and written as one renewal transaction, which also restarts the
 * elements' timeout. The timeout (`ownershipMs`, shorter than the heartbeat's time to live by one
 * heartbeat) is what makes a node whose Portico is killed stop taking flows by itself before the
 * others take its buckets.
 */
export interface OwnershipOptions {
  readonly spec: DistributedSpec;
  readonly store: StateStore;
  readonly listener: string;
  readonly node: string;
  readonly nodes: readonly string[];
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  /** Applies an nft transaction (the plane's serialised writer). */
  readonly apply: (script: string) => Promise<void>;
  /** After a change of the live set reached the kernel: when it was noticed (ms since the epoch) and how long the kernel took. */
  readonly onChange?: ((live: readonly string[], mine: readonly number[], noticedAt: number, applyMs: number) => void) | undefined;
  readonly onError?: ((err: unknown) => void) | undefined;
}

/** The kernel timeout of owned buckets for a heartbeat and its time to live. */
export function ownershipTimeout(heartbeatMs: number, deadAfterMs: number): number {
  return Math.max(heartbeatMs, deadAfterMs - heartbeatMs);
}

export class Ownership {
  private readonly o: OwnershipOptions;
  private readonly membership: Membership;
  private mineNow: readonly number[] = [];
  private liveNow: readonly string[] = [];
  private applying = false;
  private again = false;
  private changedSince = false;
  private loop: Promise<void> = Promise.resolve();
  private stopped = false;
  private renewedAt = 0;
  private noticedAt = 0;

  constructor(o: OwnershipOptions) {
    this.o = o;
    this.membership = new Membership({
      store: o.store,
      listener: o.listener,
      node: o.node,
      nodes: o.nodes,
      heartbeatMs: o.heartbeatMs,
      deadAfterMs: o.deadAfterMs,
      onStoreError: o.onError,
      onLive: (live, changed) => this.renew(live, changed),
    });
  }

  /** The buckets this node holds now, and the live nodes they were computed from. */
  state(): { live: readonly string[]; mine: readonly number[] } {
    return { live: this.liveNow, mine: this.mineNow };
  }

  start(): Promise<void> {
    return this.membership.start();
  }

  /** Whether this node takes flows (its pool has a server to send them to). */
  setWilling(willing: boolean): Promise<void> {
    return this.membership.setWilling(willing);
  }

  /** Leave: the others take the buckets now; this node's set is emptied. */
  async stop(): Promise<void> {
    await this.membership.stop();
    this.stopped = true;
    await this.loop;
    this.mineNow = [];
    await this.o.apply(renderOwnership(this.o.spec, [])).catch((err: unknown) => this.o.onError?.(err));
  }

  /**
   * Renew (and change) the kernel's ownership. One transaction at a time: rounds that come while
   * one is being applied are folded into the next (the latest set wins), so a slow nft never
   * builds a queue of stale renewals.
   */
  private renew(live: readonly string[], changed: boolean): void {
    if (this.stopped) return;
    const mine = bucketsOf(this.o.node, live, this.o.spec.buckets);
    this.liveNow = live;
    this.mineNow = mine;
    if (changed && !this.changedSince) {
      this.changedSince = true;
      this.noticedAt = Date.now();
    }
    // Unchanged: renew only once a third of the timeout has passed (each renewal is an nft run).
    if (!this.changedSince && Date.now() - this.renewedAt < this.o.spec.ownershipMs / 3) return;
    if (this.applying) {
      this.again = true;
      return;
    }
    this.applying = true;
    this.loop = (async () => {
      do {
        this.again = false;
        const report = this.changedSince;
        const noticedAt = this.noticedAt;
        this.changedSince = false;
        let began = 0;
        const at = { live: this.liveNow, mine: this.mineNow };
        try {
          this.renewedAt = began = Date.now();
          await this.o.apply(renderOwnership(this.o.spec, at.mine));
        } catch (err) {
          this.o.onError?.(err);
        }
        if (report) this.o.onChange?.(at.live, at.mine, noticedAt, Date.now() - began);
      } while (this.again);
      this.applying = false;
    })();
  }
}
