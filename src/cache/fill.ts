/**
 * Request coalescing: one fetch from the server per key at a time (a Fill), which the requests that
 * miss meanwhile join. A joiner receives the head and every chunk received so far, then each new
 * chunk as it arrives: answered as the response streams, not after it ends. A fill whose body grows
 * past the object limit stops keeping chunks; it can no longer be joined, and those already joined
 * go on receiving it live. A key found uncacheable is remembered for a short time (hit-for-miss),
 * so that its requests go to the server side by side instead of queueing behind one another.
 */
import type { ResponseHead } from './policy.js';

export interface FillWatcher {
  fillHead(head: ResponseHead): void;
  fillData(chunk: Buffer): void;
  fillEnd(): void;
  /** The fetch failed or was cut before its end: nothing more comes. */
  fillAbort(): void;
}

export class Fill {
  head: ResponseHead | undefined;
  readonly chunks: Buffer[] = [];
  length = 0;
  /** Chunks are kept (for joiners and the store) while the body stays within the limit. */
  keeping = true;
  ended = false;
  aborted = false;
  /** The variant key (of the fetching request, for the response's Vary) that joiners must share. */
  variant = '';
  private watchers: FillWatcher[] = [];

  constructor(
    readonly key: string,
    private readonly maxLength: number,
  ) {}

  /** Whether a request can still join: not aborted, and everything so far kept for it. */
  get joinable(): boolean {
    return !this.aborted && this.keeping;
  }

  /** Join: replays what arrived so far, then follows. False when the fill can't be joined. */
  join(w: FillWatcher): boolean {
    if (!this.joinable) return false;
    if (this.head !== undefined) {
      w.fillHead(this.head);
      for (const c of this.chunks) w.fillData(c);
      if (this.ended) {
        w.fillEnd();
        return true;
      }
    }
    this.watchers.push(w);
    return true;
  }

  leave(w: FillWatcher): void {
    const i = this.watchers.indexOf(w);
    if (i >= 0) this.watchers.splice(i, 1);
  }

  get watching(): number {
    return this.watchers.length;
  }

  setHead(head: ResponseHead): void {
    this.head = head;
    for (const w of this.watchers) w.fillHead(head);
  }

  push(chunk: Buffer): void {
    this.length += chunk.length;
    if (this.keeping) {
      if (this.length > this.maxLength) {
        this.keeping = false;
        this.chunks.length = 0;
      } else this.chunks.push(chunk);
    }
    for (const w of this.watchers) w.fillData(chunk);
  }

  end(): void {
    this.ended = true;
    const ws = this.watchers;
    this.watchers = [];
    for (const w of ws) w.fillEnd();
  }

  abort(): void {
    if (this.ended || this.aborted) return;
    this.aborted = true;
    this.chunks.length = 0;
    const ws = this.watchers;
    this.watchers = [];
    for (const w of ws) w.fillAbort();
  }
}

export class FillTable {
  private readonly fills = new Map<string, Fill>();
  /** key → monotonic time until which requests for it go straight to the server. */
  private readonly hitForMiss = new Map<string, number>();

  constructor(private readonly maxHitForMiss = 10_000) {}

  get(key: string): Fill | undefined {
    return this.fills.get(key);
  }

  /** Start the one fetch for `key` (the caller found no fill to join). */
  begin(key: string, maxLength: number): Fill {
    const f = new Fill(key, maxLength);
    this.fills.set(key, f);
    return f;
  }

  /** The fill is over (stored, not stored, or aborted): later misses start their own. */
  finish(f: Fill): void {
    if (this.fills.get(f.key) === f) this.fills.delete(f.key);
  }

  get inFlight(): number {
    return this.fills.size;
  }

  markUncacheable(key: string, until: number): void {
    this.hitForMiss.delete(key);
    this.hitForMiss.set(key, until);
    if (this.hitForMiss.size > this.maxHitForMiss) {
      const oldest = this.hitForMiss.keys().next();
      if (!oldest.done) this.hitForMiss.delete(oldest.value);
    }
  }

  isUncacheable(key: string, now: number): boolean {
    const until = this.hitForMiss.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.hitForMiss.delete(key);
    return false;
  }

  forgetUncacheable(key: string): void {
    this.hitForMiss.delete(key);
  }
}
