import { deepEqual } from '../core/deep-equal.js';
import type { Logger } from '../observability/logger.js';
import { DEFAULT_BACKOFF, repeatWithBackoff } from './backoff.js';
import type { Discovery, ServerSpec } from './discovery.js';

export interface WatcherOptions {
  /** Called with each new list: deduplicated, sorted by name, different from the last one. */
  readonly onServers: (servers: readonly ServerSpec[]) => void;
  readonly log: Logger;
  /** Back-off after a failure: doubles from minMs up to maxMs (default 1 s to 30 s). */
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
  /** start() waits at most this long for the first list or the first failure (default 5 s). */
  readonly firstWaitMs?: number;
  /** Milliseconds since the epoch (default Date.now), for the times of the state. */
  readonly now?: () => number;
}

/** What a watcher has seen, for the admin API and tests. */
export interface WatcherState {
  /** The last list handed on (undefined before the first). */
  readonly servers: readonly ServerSpec[] | undefined;
  readonly updates: number;
  readonly failures: number;
  /** The message of the last failure (kept after the source recovers; see `failing`). */
  readonly lastError: string | undefined;
  /** Empty lists that came after a non-empty one and were ignored. */
  readonly ignoredEmpty: number;
  /** When the last list was handed on (ms since the epoch; undefined before the first). */
  readonly lastUpdateAt: number | undefined;
  /** When the last failure happened (ms since the epoch; undefined before the first). */
  readonly lastErrorAt: number | undefined;
  /** The last attempt failed: the source has not given a list since its last failure. */
  readonly failing: boolean;
}

/**
 * Runs one Discovery: keeps the last known good list, hands on only lists that differ from
 * it, deduplicated (by name, then by address: the first entry wins), and ignores with a
 * warning an empty list that follows a non-empty one. A failure is logged and the last good
 * list stays; the provider is watched again after a back-off. Never throws.
 */
export class DiscoveryWatcher {
  readonly name: string;
  private readonly provider: Discovery;
  private readonly opts: WatcherOptions;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private last: readonly ServerSpec[] | undefined;
  private updates = 0;
  private failures = 0;
  private ignoredEmpty = 0;
  private lastError: string | undefined;
  private lastUpdateAt: number | undefined;
  private lastErrorAt: number | undefined;
  private failing = false;
  private readonly now: () => number;
  private firstOutcome: (() => void) | undefined;

  constructor(provider: Discovery, opts: WatcherOptions) {
    this.provider = provider;
    this.name = `discovery ${provider.name}`;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  get state(): WatcherState {
    return {
      servers: this.last,
      updates: this.updates,
      failures: this.failures,
      lastError: this.lastError,
      ignoredEmpty: this.ignoredEmpty,
      lastUpdateAt: this.lastUpdateAt,
      lastErrorAt: this.lastErrorAt,
      failing: this.failing,
    };
  }

  /** Start watching; resolves once the first list or failure is in (or after firstWaitMs). */
  async start(): Promise<void> {
    if (this.loop !== undefined) return;
    const ac = new AbortController();
    this.abort = ac;
    const first = new Promise<void>((resolve) => (this.firstOutcome = resolve));
    this.loop = this.run(ac.signal);
    const waitMs = this.opts.firstWaitMs ?? 5000;
    const timer = setTimeout(() => this.firstOutcome?.(), waitMs);
    await first;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    this.firstOutcome?.();
    await this.loop;
    this.loop = undefined;
  }

  private run(signal: AbortSignal): Promise<void> {
    return repeatWithBackoff(
      signal,
      this.opts.backoff ?? DEFAULT_BACKOFF,
      async (healthy) => {
        for await (const list of this.provider.watch(signal)) {
          if (signal.aborted) return;
          healthy();
          this.take(list);
        }
        if (!signal.aborted) throw new Error('the watch ended');
      },
      (err) => this.fail(err),
    );
  }

  /** Dedupe and hand on a list (exported behaviour, also used by tests through a provider). */
  private take(raw: readonly ServerSpec[]): void {
    const list = dedupe(raw, (msg) => this.opts.log.warn(`${this.name}: ${msg}`));
    this.failing = false;
    this.settleFirst();
    if (list.length === 0 && this.last !== undefined && this.last.length > 0) {
      this.ignoredEmpty++;
      this.opts.log.warn(`${this.name}: an empty server list after ${this.last.length} server(s) is ignored; the last list stays`);
      return;
    }
    if (this.last !== undefined && deepEqual(this.last, list)) return;
    this.last = list;
    this.updates++;
    this.lastUpdateAt = this.now();
    try {
      this.opts.onServers(list);
    } catch (err) {
      this.opts.log.error(`${this.name}: applying the list failed`, { error: String(err) });
    }
  }

  private fail(err: unknown): void {
    this.failures++;
    this.failing = true;
    this.lastErrorAt = this.now();
    this.lastError = err instanceof Error ? err.message : String(err);
    const kept = this.last === undefined ? 'no list yet' : `keeping the last list (${this.last.length} server(s))`;
    this.opts.log.warn(`${this.name} failed: ${this.lastError}; ${kept}`);
    this.settleFirst();
  }

  private settleFirst(): void {
    const f = this.firstOutcome;
    this.firstOutcome = undefined;
    f?.();
  }
}

/** One entry per name and per address (the first wins), sorted by name. */
export function dedupe(list: readonly ServerSpec[], warn: (msg: string) => void = () => {}): ServerSpec[] {
  const byName = new Map<string, ServerSpec>();
  const addresses = new Set<string>();
  for (const s of list) {
    const addr = `${s.address.host}|${s.address.port}`;
    if (byName.has(s.name)) {
      warn(`server ${s.name} listed twice; the first entry is kept`);
      continue;
    }
    if (addresses.has(addr)) continue; // the same server under two names (several SRV records ...): one is enough
    byName.set(s.name, s);
    addresses.add(addr);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
