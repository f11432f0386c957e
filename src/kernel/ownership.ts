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
  readonly onChange?: ((live: readonly string[], mine: readonly number[]) => void) | undefined;
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
      onLive: (live, changed) => void this.renew(live, changed),
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
    this.mineNow = [];
    await this.o.apply(renderOwnership(this.o.spec, [])).catch((err: unknown) => this.o.onError?.(err));
  }

  private async renew(live: readonly string[], changed: boolean): Promise<void> {
    const mine = bucketsOf(this.o.node, live, this.o.spec.buckets);
    this.liveNow = live;
    this.mineNow = mine;
    try {
      await this.o.apply(renderOwnership(this.o.spec, mine));
    } catch (err) {
      this.o.onError?.(err);
    }
    if (changed) this.o.onChange?.(live, mine);
  }
}
