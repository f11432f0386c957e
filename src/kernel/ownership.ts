import type { StateStore } from '../store/state-store.js';
import { bucketsOf } from './buckets.js';
import { Membership } from './membership.js';
import { renderOwnership, type DistributedSpec } from './render-l2.js';

/**
 * This node's share of a `distributed` listener's buckets, kept in the kernel: each heartbeat
 * round of the membership yields the live nodes, this node's buckets are computed from them
 * (the same table on every node) and written as one renewal transaction, which also restarts the
 * elements' timeout.
 *
 * The timeout is this node's lease (src/kernel/membership.ts): it ends one heartbeat before the
 * heartbeat this node last wrote can expire in the store, so a node whose Portico is killed, or
 * whose heartbeats stop reaching the store, stops taking flows by itself before the others take
 * its buckets. A node that leaves (stops, or its pool has no server left) empties its set first and
 * leaves the store's live set after, for the same reason.
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
  /** This node's lease ran out (true: its buckets are given up in its kernel) or came back (false). */
  readonly onFenced?: ((fenced: boolean) => void) | undefined;
  readonly onError?: ((err: unknown) => void) | undefined;
}

/** The kernel timeout of owned buckets for a heartbeat and its time to live. */
export function ownershipTimeout(heartbeatMs: number, deadAfterMs: number): number {
  return Math.max(heartbeatMs, deadAfterMs - heartbeatMs);
}

/** A lease shorter than this is not written (the buckets are given up): nft and the timers need some room. */
export const MIN_LEASE_MS = 20;

export class Ownership {
  private readonly o: OwnershipOptions;
  private readonly membership: Membership;
  /** The buckets the kernel was last given. */
  private appliedMine: readonly number[] = [];
  private liveNow: readonly string[] = [];
  private heldUntil = 0;
  private willing = true;
  private fenced = false;
  private applying = false;
  private again = false;
  private changedSince = false;
  private loop: Promise<void> = Promise.resolve();
  private stopped = false;
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
      onLive: (live, changed, heldUntil) => this.renew(live, changed, heldUntil),
    });
  }

  /** The buckets this node's kernel holds now, and the live nodes they were computed from. */
  state(): { live: readonly string[]; mine: readonly number[] } {
    return { live: this.liveNow, mine: this.appliedMine };
  }

  start(): Promise<void> {
    return this.membership.start();
  }

  /**
   * Whether this node takes flows (its pool has a server to send them to). Giving up empties the
   * kernel's set first, then leaves the live set (the others take the buckets once this node no
   * longer does); coming back joins, and the buckets follow with the next round.
   */
  async setWilling(willing: boolean): Promise<void> {
    if (willing === this.willing) return;
    this.willing = willing;
    if (!willing) {
      this.changedSince = true;
      this.noticedAt = Date.now();
      this.kick();
      await this.loop;
    }
    await this.membership.setWilling(willing);
  }

  /** Leave: this node's set is emptied, then the others take the buckets. */
  async stop(): Promise<void> {
    await this.membership.stop(async () => {
      this.stopped = true;
      await this.loop;
      this.appliedMine = [];
      await this.o.apply(renderOwnership(this.o.spec, [])).catch((err: unknown) => this.o.onError?.(err));
    });
    this.stopped = true;
  }

  private renew(live: readonly string[], changed: boolean, heldUntil: number): void {
    if (this.stopped) return;
    this.liveNow = live;
    this.heldUntil = heldUntil;
    if (changed && !this.changedSince) {
      this.changedSince = true;
      this.noticedAt = Date.now();
    }
    // Every round renews (each is an nft run): the lease is deadAfter minus the round's own time,
    // and a renewal that comes a round late must still find the buckets there.
    this.kick();
  }

  private leaseLeft(): number {
    return Math.min(this.heldUntil - Date.now(), this.o.spec.ownershipMs);
  }

  /**
   * Write the kernel's set now. One transaction at a time: rounds that come while one is being
   * applied are folded into the next (the latest set wins), so a slow nft never builds a queue of
   * stale renewals.
   */
  private kick(): void {
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
        const live = this.liveNow;
        // The lease is computed as late as possible: it starts when nft takes it.
        const lease = this.leaseLeft();
        const fenced = lease < MIN_LEASE_MS;
        const mine = this.willing && !fenced ? this.bucketsOf(live) : [];
        const began = Date.now();
        try {
          await this.o.apply(renderOwnership(this.o.spec, mine, mine.length > 0 ? lease : undefined));
          this.appliedMine = mine;
          // (No lease at all is not a lapse: this node has not written a heartbeat yet.)
          if (this.willing && this.heldUntil > 0 && fenced !== this.fenced) {
            this.fenced = fenced;
            this.o.onFenced?.(fenced);
          }
        } catch (err) {
          this.o.onError?.(err);
        }
        if (report) this.o.onChange?.(live, mine, noticedAt, Date.now() - began);
      } while (this.again && !this.stopped);
      this.applying = false;
    })();
  }

  private cached: { key: string; mine: readonly number[] } | undefined;

  /** This node's buckets among `live` (computed again only when the live set changed). */
  private bucketsOf(live: readonly string[]): readonly number[] {
    const key = live.join('\n');
    if (this.cached?.key !== key) this.cached = { key, mine: bucketsOf(this.o.node, live, this.o.spec.buckets) };
    return this.cached.mine;
  }
}
