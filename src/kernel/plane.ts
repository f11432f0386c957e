/**
 * The owner of the nftables table `ip portico` in this process: every kernel listener registers
 * its part, the table is brought to the whole set of listeners at each change of it (start,
 * reload, stop), and a listener's maps at run time. Writes are serialised (one nft at a time, in
 * order). A table that exists is changed in place (src/kernel/staged.ts: the flows of the
 * listeners that stay keep their rules throughout); one that does not is written whole.
 */
import { nftApply, readCounters, run } from './nft.js';
import { NETDEV_FAMILY, NETDEV_TABLE } from './render-l2.js';
import { FAMILY, renderBodies, renderDelete, renderTable, TABLE, type CounterValues, type KernelListenerSpec, type KernelSnapshot } from './render.js';
import { parseDeclarations, stagedScripts, type Decls } from './staged.js';

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
  /** The last table write's scripts (tests). */
  lastTable = '';
  /** How the last table write was made: in place (`staged`), or the tables deleted and written again (`whole`). */
  lastWrite: 'staged' | 'whole' | undefined;
  /** What the kernel holds after this process's last write, by table (undefined: a table absent); unknown until read. */
  private held: { ip: Decls | undefined; netdev: Decls | undefined } | undefined;
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
    this.held = undefined; // another process writes from now on
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
      this.held = undefined;
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
    const bodies = renderBodies(parts);
    const next = {
      ip: parseDeclarations(`table ${FAMILY} ${TABLE} {\n${bodies.ip}}\n`, FAMILY, TABLE),
      netdev: bodies.netdev === undefined ? undefined : parseDeclarations(`table ${NETDEV_FAMILY} ${NETDEV_TABLE} {\n${bodies.netdev}}\n`, NETDEV_FAMILY, NETDEV_TABLE),
    };
    try {
      // What this process wrote last; else what the kernel holds (a start, a worker taking over).
      const own = this.held !== undefined;
      const prev = this.held ?? (await readHeld());
      const ip = change(FAMILY, TABLE, prev.ip, next.ip, bodies.ip, own);
      const netdev = change(NETDEV_FAMILY, NETDEV_TABLE, prev.netdev, next.netdev, bodies.netdev ?? '', own);
      const stage = ip.stage + netdev.stage;
      const commit = ip.commit + netdev.commit;
      this.held = undefined;
      if (stage !== '') await nftApply(stage);
      if (commit !== '') await nftApply(commit);
      this.lastTable = stage + commit;
      this.lastWrite = 'staged';
    } catch {
      // The kernel did not hold what was read or written last (changed by hand?): both tables
      // deleted and written again in one transaction, the counters carried.
      const carry = await readCounters().catch(() => new Map<string, { packets: number; bytes: number }>());
      const text = renderTable(parts, carry);
      await nftApply(text);
      this.lastTable = text;
      this.lastWrite = 'whole';
    }
    this.held = { ip: next.ip, netdev: next.netdev };
    this.countersRead = undefined; // read before the write: not what the new table holds
    // Each part learns what was written, not what its pool holds by now (it may have changed meanwhile).
    for (const p of parts) p.part.written(p.spec, p.snap);
  }
}

/** One table's change: in place when it exists, written whole when it does not, deleted when nothing needs it. */
function change(family: string, table: string, prev: Decls | undefined, next: Decls | undefined, body: string, keepDynamic: boolean): { stage: string; commit: string } {
  const t = `${family} ${table}`;
  if (next === undefined || next.size === 0) return { stage: '', commit: prev === undefined ? '' : `delete table ${t}\n` };
  if (prev === undefined) return { stage: '', commit: `table ${t} {}\ndelete table ${t}\ntable ${t} {\n${body}}\n` };
  return stagedScripts(family, table, prev, next, { keepDynamic });
}

/** What the kernel holds now in Portico's two tables (undefined: the table does not exist). */
async function readHeld(): Promise<{ ip: Decls | undefined; netdev: Decls | undefined }> {
  const read = async (family: string, table: string): Promise<Decls | undefined> => {
    const r = await run('nft', ['list', 'table', family, table]);
    if (r.code !== 0) {
      if (/No such file or directory/i.test(r.stderr)) return undefined;
      throw new Error(`nft list table ${family} ${table} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    return parseDeclarations(r.stdout, family, table);
  };
  return { ip: await read(FAMILY, TABLE), netdev: await read(NETDEV_FAMILY, NETDEV_TABLE) };
}

/** The process's plane (one table per process). */
export const plane = new KernelPlane();
