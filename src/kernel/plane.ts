/**
 * The owner of the nftables table `ip portico` in this process: every kernel listener registers
 * its part, the whole table is written at each change of the set of listeners (start, reload,
 * stop: one idempotent transaction), and a listener's maps at run time. Writes are serialised
 * (one nft at a time, in order).
 */
import { nftApply, readCounters } from './nft.js';
import { renderDelete, renderTable, type CounterValues, type KernelListenerSpec, type KernelSnapshot } from './render.js';

export interface PlanePart {
  readonly name: string;
  spec(): KernelListenerSpec;
  snapshot(): KernelSnapshot;
  /** Leave the table in place when Portico exits. */
  keepOnExit(): boolean;
  /** The table was written from `spec` and `snap` (what the kernel holds now for this part). */
  written(spec: KernelListenerSpec, snap: KernelSnapshot): void;
}

export class KernelPlane {
  private readonly parts = new Map<string, PlanePart>();
  private chain: Promise<unknown> = Promise.resolve();
  /** The last whole table written (tests, the admin API). */
  lastTable = '';
  private countersRead: Promise<CounterValues> | undefined;
  private countersAt = 0;

  /** Run `fn` after every write queued before it; its failure is the caller's, not the next one's. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Whether this process writes the table. Under `cluster.workers` every worker runs its kernel
   * listeners (their pools, admin views, counters) and one, chosen by the primary, writes: its
   * commands run in the primary (src/cluster/workers-kernel.ts). The others follow: their writes
   * are not made, and the one that takes over writes the whole table from its own state.
   */
  get leading(): boolean {
    return this.lead;
  }
  private lead = true;

  /** This process does not write (a worker that the primary has not chosen, or one that is stopping). */
  follow(): void {
    this.lead = false;
  }

  /** This process writes from now on: the whole table from its listeners' state (when it runs any). */
  takeOver(): Promise<void> {
    return this.serial(async () => {
      this.lead = true;
      if (this.parts.size > 0) await this.writeTable();
    });
  }

  /** Awaited before the first install (a worker asks the primary whether it writes: src/cluster/workers-kernel.ts). */
  private gate: (() => Promise<void>) | undefined;

  /** Set the step awaited before each install (once it has resolved, it resolves at once). */
  gateInstalls(fn: () => Promise<void>): void {
    this.gate = fn;
  }

  /** Add (or replace) a listener's part and write the whole table. A failure leaves the previous table and the set as it was. */
  async install(part: PlanePart): Promise<void> {
    await this.gate?.();
    return this.serial(async () => {
      const was = this.parts.get(part.name);
      this.parts.set(part.name, part);
      if (!this.lead) return part.written(part.spec(), part.snapshot());
      try {
        await this.writeTable();
      } catch (err) {
        if (was === undefined) this.parts.delete(part.name);
        else this.parts.set(part.name, was);
        throw err;
      }
    });
  }

  /** Remove a listener's part: the table is rewritten without it, or deleted when it was the last (unless it keeps its rules). */
  uninstall(part: PlanePart): Promise<void> {
    return this.serial(async () => {
      if (this.parts.get(part.name) !== part) return;
      this.parts.delete(part.name);
      if (!this.lead) return;
      if (this.parts.size > 0) return this.writeTable();
      if (part.keepOnExit()) return;
      this.lastTable = '';
      return nftApply(renderDelete());
    });
  }

  /** Apply a run-time change (maps only) of a registered part. */
  apply(part: PlanePart, script: string): Promise<void> {
    return this.serial(async () => {
      if (this.parts.get(part.name) !== part) return; // replaced or gone: its table write covers it
      if (!this.lead) return;
      await nftApply(script);
    });
  }

  /**
   * The named counters of every listener, read at most once per `maxAgeMs` however many listeners
   * ask (each read runs nft, a process: every listener reading its own each second cost the
   * event loop a fork per listener and table).
   */
  counters(maxAgeMs: number): Promise<CounterValues> {
    const now = Date.now();
    if (this.countersRead !== undefined && now - this.countersAt < maxAgeMs) return this.countersRead;
    const netdev = [...this.parts.values()].some((p) => p.spec().forwarding !== 'nat');
    const read = readCounters({ netdev });
    this.countersRead = read;
    this.countersAt = now;
    read.catch(() => {
      if (this.countersRead === read) this.countersRead = undefined; // the next caller tries again
    });
    return read;
  }

  /** Anything else that must not interleave with a write (reading and deleting sticky entries). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial(fn);
  }

  private async writeTable(): Promise<void> {
    const parts = [...this.parts.values()].map((p) => ({ part: p, spec: p.spec(), snap: p.snapshot() }));
    // The counters of the table being replaced go on in the new one (none when there is no table yet).
    const carry = await readCounters().catch(() => new Map<string, { packets: number; bytes: number }>());
    const text = renderTable(parts, carry);
    await nftApply(text);
    this.countersRead = undefined; // read before the write: not what the new table holds
    this.lastTable = text;
    // Each part learns what was written, not what its pool holds by now (it may have changed meanwhile).
    for (const p of parts) p.part.written(p.spec, p.snap);
  }
}

/** The process's plane (one table per process). */
export const plane = new KernelPlane();
