import { randomBytes } from 'node:crypto';
import { parseJournal, type RuntimeChange } from '../admin/journal.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../store/state-store.js';

/** The store key that holds the cluster's runtime changes, and the channel that announces them. */
export const RUNTIME_KEY = 'runtime-changes';
export const RUNTIME_CHANNEL = 'runtime-changes';

/** What RuntimeSync needs of the running configuration (src/app/config-runtime.ts). */
export interface RuntimeTarget {
  onChange: ((changes: readonly RuntimeChange[]) => void) | undefined;
  adopt(changes: readonly RuntimeChange[]): Promise<boolean>;
  readonly journal: { readonly current: readonly RuntimeChange[] };
}

export interface RuntimeSyncOptions {
  readonly store: StateStore;
  readonly runtime: RuntimeTarget;
  readonly node: string;
  readonly log: Logger;
  /** Longest wait for the store when reading the changes at start or on a resync (default 1 s). */
  readonly timeoutMs?: number | undefined;
}

/** The message on the channel, and the value of the key. */
interface Shared {
  readonly from: string;
  readonly node: string;
  readonly at: string;
  readonly changes: readonly RuntimeChange[];
}

/**
 * Runtime changes made through the admin API, shared by every node of a cluster through the
 * StateStore. A change made on one node is written to the store (the whole list of changes in
 * force, under RUNTIME_KEY) and announced on RUNTIME_CHANNEL; every other node lays that list
 * over its file as its own (and keeps it in its local journal, for a start without the store).
 * At start, and when the store comes back after an outage, a node reads the list from the
 * store; a node that made changes while the store was unreachable writes its list instead.
 */
export class RuntimeSync {
  readonly name = 'runtime-sync';
  /** Distinguishes this process's own messages (two nodes may share a name in tests). */
  private readonly id = randomBytes(8).toString('hex');
  private readonly o: RuntimeSyncOptions;
  private ac: AbortController | undefined;
  /** A local change could not be written to the store: it is written when the store is back. */
  private unsynced = false;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(o: RuntimeSyncOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    const ac = new AbortController();
    this.ac = ac;
    this.o.runtime.onChange = (changes) => this.share(changes);
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
    this.o.runtime.onChange = undefined;
  }

  /**
   * The store is back after an outage: resynchronise after a random delay of up to `spreadMs`,
   * so that the nodes of a cluster do not all read (or write) at the same instant.
   */
  resync(spreadMs = 1000): void {
    if (this.ac === undefined) return;
    if (this.resyncTimer !== undefined) clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      if (this.ac === undefined) return;
      if (this.unsynced) this.share(this.o.runtime.journal.current);
      else void this.pull(false);
    }, Math.floor(Math.random() * spreadMs));
    this.resyncTimer.unref();
  }

  /** Write this node's changes to the store and announce them. */
  private share(changes: readonly RuntimeChange[]): void {
    const text = JSON.stringify({ from: this.id, node: this.o.node, at: new Date().toISOString(), changes } satisfies Shared);
    const store = this.o.store;
    this.unsynced = true;
    store
      .set(RUNTIME_KEY, text)
      .then(() => store.publish(RUNTIME_CHANNEL, text))
      .then(
        () => {
          this.unsynced = false;
        },
        (err: unknown) => this.o.log.warn('runtime change not shared with the other nodes (store unreachable); it is shared when the store is back', { error: msg(err) }),
      );
  }

  private readonly onMessage = (text: string): void => {
    const shared = parseShared(text);
    if (shared === undefined) {
      this.o.log.warn('runtime changes: an unreadable message on the channel was ignored');
      return;
    }
    if (shared.from === this.id) return;
    this.apply(shared);
  };

  /** Read the store's changes and put them in force; at start, with none in the store, write ours there. */
  private async pull(atStart: boolean): Promise<void> {
    let text: string | undefined;
    try {
      text = await withTimeout(this.o.store.get(RUNTIME_KEY), this.o.timeoutMs ?? 1000);
    } catch (err) {
      this.o.log.warn('runtime changes: the store did not answer; this node runs its local journal until it does', { error: msg(err) });
      return;
    }
    if (text === undefined) {
      if (atStart && this.o.runtime.journal.current.length > 0) this.share(this.o.runtime.journal.current);
      return;
    }
    const shared = parseShared(text);
    if (shared === undefined) {
      this.o.log.warn(`runtime changes: the store's ${RUNTIME_KEY} cannot be read; ignored`);
      return;
    }
    await this.apply(shared);
  }

  private async apply(shared: Shared): Promise<void> {
    try {
      if (await this.o.runtime.adopt(shared.changes)) {
        this.o.log.info(`runtime changes from node ${shared.node} applied (${shared.changes.length} in force)`);
      }
    } catch (err) {
      this.o.log.error(`runtime changes from node ${shared.node} could not be applied; this node keeps its own`, { error: msg(err) });
    }
  }
}

function parseShared(text: string): Shared | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.from !== 'string' || typeof r.node !== 'string' || typeof r.at !== 'string') return undefined;
  const changes = parseJournal(JSON.stringify({ version: 1, changes: r.changes }));
  if (typeof changes === 'string') return undefined;
  return { from: r.from, node: r.node, at: r.at, changes };
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
