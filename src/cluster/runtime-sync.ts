import { randomBytes } from 'node:crypto';
import { parseJournal, type RuntimeChange } from '../admin/journal.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../store/state-store.js';
import { applyDelta, diffChanges, parseDelta, type ChangeDelta } from './runtime-delta.js';
import { parseJsonObject } from '../core/guards.js';

/**
 * The store keys of the cluster's runtime changes: the list as of one sequence number
 * (RUNTIME_KEY), the sequence counter, one key per change, and the channel that announces them.
 */
export const RUNTIME_KEY = 'runtime-changes';
export const RUNTIME_SEQ_KEY = 'runtime-changes:seq';
export const RUNTIME_CHANNEL = 'runtime-changes';
export const runtimeOpKey = (seq: number): string => `runtime-changes:op:${seq}`;
/** A change's key lives this long: a node away longer starts again from the list. */
const OP_TTL_MS = 7 * 24 * 3600 * 1000;

/** What RuntimeSync needs of the running configuration (src/app/config-runtime.ts). */
export interface RuntimeTarget {
  /** Told of the changes in force after each change made through this node's admin API, and of those before it. */
  onChange: ((changes: readonly RuntimeChange[], before: readonly RuntimeChange[]) => void) | undefined;
  /**
   * Put a list in force: given whole, or computed from the list in force when it is applied
   * (serialised with the node's own changes). Resolves false when nothing changed.
   */
  adopt(changes: readonly RuntimeChange[] | ((current: readonly RuntimeChange[]) => readonly RuntimeChange[])): Promise<boolean>;
  readonly journal: { readonly current: readonly RuntimeChange[] };
}

export interface RuntimeSyncOptions {
  readonly store: StateStore;
  readonly runtime: RuntimeTarget;
  readonly node: string;
  readonly log: Logger;
  /** Longest wait for the store when reading the changes at start or on a resync (default 1 s). */
  readonly timeoutMs?: number | undefined;
  /** How long a missing change (its number taken, its key not written) is waited for before it is passed over (default 2 s). */
  readonly gapMs?: number | undefined;
}

/** One change, under runtimeOpKey(seq). */
interface Op {
  readonly from: string;
  readonly node: string;
  readonly at: string;
  readonly delta: ChangeDelta;
}

/** The list in force as of `seq` (every change up to it applied), under RUNTIME_KEY. */
interface Snapshot {
  readonly seq: number;
  readonly node: string;
  readonly at: string;
  readonly changes: readonly RuntimeChange[];
}

/**
 * Runtime changes made through the admin API, shared by every node of a cluster through the
 * StateStore, without a lost update. Each change made on a node is a delta (the entries and
 * fields it changed: src/cluster/runtime-delta.ts); the node takes the next number of the
 * cluster's sequence (`incr`, atomic in every store), writes the delta under its own key and
 * announces the number. Every node applies the deltas in sequence order to the list in force:
 * two nodes changing at the same instant both get their change in, and every node ends with the
 * same list (for one field of one server changed twice, the later number wins everywhere).
 * After applying its own change, a node writes the whole list with its number (RUNTIME_KEY),
 * which a starting node reads before the changes that follow it.
 *
 * A change made while the store is unreachable is kept and sent (in order) when the store is
 * back; a number taken but never written (its node died) is passed over after `gapMs`.
 */
export class RuntimeSync {
  readonly name = 'runtime-sync';
  /** Distinguishes this process's own changes (two nodes may share a name in tests). */
  private readonly id = randomBytes(8).toString('hex');
  private readonly o: RuntimeSyncOptions;
  private ac: AbortController | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** The last number applied here (0: none yet; undefined: the store not read yet). */
  private applied: number | undefined;
  /** The highest number known to be taken. */
  private latest = 0;
  /** This node's changes not yet written to the store, in order. */
  private readonly outbox: ChangeDelta[] = [];
  private sending: Promise<void> | undefined;
  private catching: Promise<void> | undefined;
  private again = false;
  /** Since when the next number has been missing. */
  private gapSince: number | undefined;
  private gapTimer: NodeJS.Timeout | undefined;
  /** This node's own changes whose number it has taken and not applied yet. */
  private readonly mine = new Set<number>();
  /** The store's text of change number `applied`, when this node read it: a store that lost it (restarted empty) holds another, or none. */
  private appliedText: string | undefined;

  constructor(o: RuntimeSyncOptions) {
    this.o = o;
  }

  /** The last number of the cluster's sequence applied on this node (tests, status). */
  get sequence(): number | undefined {
    return this.applied;
  }

  async start(): Promise<void> {
    const ac = new AbortController();
    this.ac = ac;
    this.o.runtime.onChange = (changes, before) => this.local(changes, before);
    try {
      await this.o.store.subscribe(RUNTIME_CHANNEL, this.onMessage, ac.signal);
    } catch (err) {
      this.o.log.warn('runtime changes: cannot subscribe to the store; changes made on other nodes will not be seen until it answers', { error: msg(err) });
    }
    await this.pull(true);
  }

  async stop(): Promise<void> {
    this.ac?.abort();
    this.ac = undefined;
    if (this.resyncTimer !== undefined) clearTimeout(this.resyncTimer);
    if (this.gapTimer !== undefined) clearTimeout(this.gapTimer);
    this.o.runtime.onChange = undefined;
  }

  /**
   * The store is back after an outage: resynchronise after a random delay of up to `spreadMs`,
   * so that the nodes of a cluster do not all read (or write) at the same instant. Changes made
   * here meanwhile are sent; those of the others are applied.
   */
  resync(spreadMs = 1000): void {
    if (this.ac === undefined) return;
    if (this.resyncTimer !== undefined) clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      if (this.ac === undefined) return;
      void this.pull(false).then(() => this.send());
    }, Math.floor(Math.random() * spreadMs));
    this.resyncTimer.unref();
  }

  /** A change made through this node's admin API (already in force here): queue its delta and send it. */
  private local(changes: readonly RuntimeChange[], before: readonly RuntimeChange[]): void {
    const delta = diffChanges(before, changes);
    if (delta.length === 0) return;
    this.outbox.push(delta);
    void this.send();
  }

  /** Send the queued changes in order: a number each, the delta under its key, the announcement. Stops at the first failure. */
  private send(): Promise<void> {
    if (this.sending !== undefined) return this.sending;
    const run = (async () => {
      const store = this.o.store;
      while (this.outbox.length > 0 && this.ac !== undefined) {
        const delta = this.outbox[0]!;
        try {
          const seq = await store.incr(RUNTIME_SEQ_KEY, 1);
          this.mine.add(seq);
          const op: Op = { from: this.id, node: this.o.node, at: new Date().toISOString(), delta };
          await store.set(runtimeOpKey(seq), JSON.stringify(op), OP_TTL_MS);
          this.outbox.shift();
          this.latest = Math.max(this.latest, seq);
          await store.publish(RUNTIME_CHANNEL, JSON.stringify({ seq }));
        } catch (err) {
          this.o.log.warn('runtime change not shared with the other nodes (store unreachable); it is shared when the store is back', { error: msg(err) });
          return;
        }
        await this.catchUp();
      }
    })();
    this.sending = run.finally(() => (this.sending = undefined));
    return this.sending;
  }

  private readonly onMessage = (text: string): void => {
    let seq: unknown;
    try {
      seq = (JSON.parse(text) as { seq?: unknown }).seq;
    } catch {
      seq = undefined;
    }
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
      this.o.log.warn('runtime changes: an unreadable message on the channel was ignored');
      return;
    }
    this.latest = Math.max(this.latest, seq);
    void this.catchUp();
  };

  /**
   * Read the store's list and the changes after it, and put them in force (the store's list
   * wins over this node's journal). At start, with nothing in the store, this node's journal is
   * sent as its first change.
   */
  private async pull(atStart: boolean): Promise<void> {
    let snapText: string | undefined;
    let seqText: string | undefined;
    try {
      [snapText, seqText] = await withTimeout(Promise.all([this.o.store.get(RUNTIME_KEY), this.o.store.get(RUNTIME_SEQ_KEY)]), this.o.timeoutMs ?? 1000);
    } catch (err) {
      this.o.log.warn('runtime changes: the store did not answer; this node runs its local journal until it does', { error: msg(err) });
      return;
    }
    const stored = seqText === undefined ? 0 : Number(seqText);
    let seed = atStart;
    if (Number.isSafeInteger(stored)) {
      let lost = this.applied !== undefined && stored < this.applied;
      if (!lost && this.applied !== undefined && this.applied > 0 && this.appliedText !== undefined) {
        // The sequence may have caught up again since: the change under the number applied last tells.
        try {
          lost = (await withTimeout(this.o.store.get(runtimeOpKey(this.applied)), this.o.timeoutMs ?? 1000)) !== this.appliedText;
        } catch {
          lost = false;
        }
      }
      if (lost) {
        // The store lost what it held (a Redis restarted empty): start again, as a node that starts.
        this.o.log.warn('runtime changes: the store lost the changes it held (restarted empty?); this node gives its list to it again, or takes the list another node gave');
        this.applied = undefined;
        this.latest = stored;
        this.gapSince = undefined;
        this.mine.clear();
        this.appliedText = undefined;
        seed = true;
      } else this.latest = Math.max(this.latest, stored);
    }
    const snap = snapText === undefined ? undefined : parseSnapshot(snapText);
    if (snapText !== undefined && snap === undefined) this.o.log.warn(`runtime changes: the store's ${RUNTIME_KEY} cannot be read; ignored`);
    if (this.applied === undefined) {
      if (snap === undefined && this.latest === 0) {
        // Nothing in the store: this node's journal is the cluster's first change (the changes waiting to be sent are in it).
        this.applied = 0;
        if (seed && this.o.runtime.journal.current.length > 0) {
          this.outbox.length = 0;
          this.local(this.o.runtime.journal.current, []);
        }
        return;
      }
      this.applied = snap?.seq ?? 0;
      this.appliedText = undefined;
      const base = snap?.changes ?? [];
      await this.put(() => base, snap?.node ?? 'the store');
    } else if (snap !== undefined && snap.seq > this.applied && !(await this.opExists(this.applied + 1))) {
      // The changes this node missed are gone from the store: start again from its list.
      this.applied = snap.seq;
      this.appliedText = undefined;
      await this.put(() => snap.changes, snap.node);
    }
    await this.catchUp();
  }

  /** Apply, in order, every change after the last applied one that the store holds. One at a time. */
  private catchUp(): Promise<void> {
    if (this.catching !== undefined) {
      this.again = true;
      return this.catching;
    }
    const run = (async () => {
      do {
        this.again = false;
        await this.catchUpOnce();
      } while (this.again && this.ac !== undefined);
    })();
    this.catching = run.finally(() => (this.catching = undefined));
    return this.catching;
  }

  private async catchUpOnce(): Promise<void> {
    if (this.applied === undefined) return;
    // Bounded: at most the numbers known to be taken now.
    const until = this.latest;
    const ops: { seq: number; op: Op; text: string }[] = [];
    let next = this.applied + 1;
    for (; next <= until; next++) {
      let text: string | undefined;
      try {
        text = await this.o.store.get(runtimeOpKey(next));
      } catch (err) {
        this.o.log.warn('runtime changes: the store did not answer; the changes of other nodes wait until it does', { error: msg(err) });
        break;
      }
      const op = text === undefined ? undefined : parseOp(text);
      if (op === undefined) {
        if (text !== undefined) {
          this.o.log.warn(`runtime changes: change ${next} in the store cannot be read; passed over`);
          continue;
        }
        // Taken, not written yet (or its node died before writing it): wait a while, then pass over it.
        const now = Date.now();
        this.gapSince ??= now;
        if (now - this.gapSince < (this.o.gapMs ?? 2000)) {
          this.retryLater();
          break;
        }
        this.o.log.warn(`runtime changes: change ${next} was never written; passed over`);
        this.gapSince = undefined;
        continue;
      }
      this.gapSince = undefined;
      ops.push({ seq: next, op, text: text! });
    }
    const last = next - 1;
    if (last <= this.applied) return;
    const from = [...new Set(ops.filter((x) => x.op.from !== this.id).map((x) => x.op.node))].join(', ');
    this.applied = last;
    this.appliedText = ops.at(-1)?.seq === last ? ops.at(-1)!.text : undefined;
    await this.put((current) => ops.reduce((list, x) => applyDelta(list, x.op.delta), current), from === '' ? undefined : `node ${from}`);
    const list = this.o.runtime.journal.current;
    // The node that made a change writes the list as of it, for the nodes that start later.
    let wrote = false;
    for (const x of ops) if (this.mine.delete(x.seq)) wrote = true;
    if (wrote && this.mine.size === 0 && this.outbox.length === 0) await this.writeSnapshot(last, list);
  }

  private retryLater(): void {
    if (this.gapTimer !== undefined) return;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      if (this.ac !== undefined) void this.catchUp();
    }, 250);
    this.gapTimer.unref();
  }

  private async writeSnapshot(seq: number, changes: readonly RuntimeChange[]): Promise<void> {
    try {
      const prev = parseSnapshot((await this.o.store.get(RUNTIME_KEY)) ?? '');
      if (prev !== undefined && prev.seq >= seq) return;
      const snap: Snapshot = { seq, node: this.o.node, at: new Date().toISOString(), changes };
      await this.o.store.set(RUNTIME_KEY, JSON.stringify(snap));
    } catch (err) {
      this.o.log.warn('runtime changes: the list could not be written to the store (the changes themselves are there)', { error: msg(err) });
    }
  }

  private async opExists(seq: number): Promise<boolean> {
    try {
      return (await this.o.store.get(runtimeOpKey(seq))) !== undefined;
    } catch {
      return true;
    }
  }

  /** Put in force the list `next` computes from the list in force. */
  private async put(next: (current: readonly RuntimeChange[]) => readonly RuntimeChange[], from: string | undefined): Promise<void> {
    try {
      if ((await this.o.runtime.adopt(next)) && from !== undefined) {
        this.o.log.info(`runtime changes from ${from} applied (${this.o.runtime.journal.current.length} in force)`);
      }
    } catch (err) {
      this.o.log.error(`runtime changes from ${from ?? 'the store'} could not be applied; this node keeps its own`, { error: msg(err) });
    }
  }
}

function parseOp(text: string): Op | undefined {
  const r = parseJsonObject(text);
  if (r === undefined) return undefined;
  if (typeof r.from !== 'string' || typeof r.node !== 'string' || typeof r.at !== 'string') return undefined;
  const delta = parseDelta(r.delta);
  return delta === undefined ? undefined : { from: r.from, node: r.node, at: r.at, delta };
}

function parseSnapshot(text: string): Snapshot | undefined {
  const r = parseJsonObject(text);
  if (r === undefined) return undefined;
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 0 || typeof r.node !== 'string' || typeof r.at !== 'string') return undefined;
  const changes = parseJournal(JSON.stringify({ version: 1, changes: r.changes }));
  if (typeof changes === 'string') return undefined;
  return { seq: r.seq, node: r.node, at: r.at, changes };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
