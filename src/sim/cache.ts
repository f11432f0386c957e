/**
 * A back-end's main-memory file cache in the simulator: whole files, identified by dense integer ids
 * (0..files-1), holding at most `capacityBytes`. A file larger than the cache is never cached.
 */
export interface FileCache {
  readonly capacityBytes: number;
  /** Bytes held now. */
  readonly usedBytes: number;
  /** Files held now. */
  readonly count: number;
  /** True on a hit; a hit refreshes the file's standing (recency, or GreedyDual-Size value). */
  lookup(file: number): boolean;
  /** Add `file` (after it was read from disk), evicting as the policy says; a file already held is refreshed. */
  insert(file: number, size: number): void;
  has(file: number): boolean;
}

export type CachePolicy = 'lru' | 'gds';

export function createCache(policy: CachePolicy, capacityBytes: number, files: number): FileCache {
  return policy === 'lru' ? new LruCache(capacityBytes, files) : new GreedyDualSizeCache(capacityBytes, files);
}

const NONE = -1;

/** Least recently used: an intrusive doubly linked list over typed arrays indexed by file id. */
export class LruCache implements FileCache {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly sizes: Float64Array;
  private readonly present: Uint8Array;
  private head = NONE; // most recently used
  private tail = NONE; // least recently used
  usedBytes = 0;
  count = 0;

  constructor(
    readonly capacityBytes: number,
    files: number,
  ) {
    this.prev = new Int32Array(files);
    this.next = new Int32Array(files);
    this.sizes = new Float64Array(files);
    this.present = new Uint8Array(files);
  }

  has(file: number): boolean {
    return this.present[file] === 1;
  }

  lookup(file: number): boolean {
    if (this.present[file] !== 1) return false;
    if (file !== this.head) {
      this.unlink(file);
      this.pushFront(file);
    }
    return true;
  }

  insert(file: number, size: number): void {
    if (this.lookup(file)) return;
    if (size > this.capacityBytes) return;
    while (this.usedBytes + size > this.capacityBytes && this.tail !== NONE) {
      const victim = this.tail;
      this.unlink(victim);
      this.present[victim] = 0;
      this.usedBytes -= this.sizes[victim]!;
      this.count--;
    }
    this.present[file] = 1;
    this.sizes[file] = size;
    this.usedBytes += size;
    this.count++;
    this.pushFront(file);
  }

  /** Files from most to least recently used (for tests). */
  order(): number[] {
    const out: number[] = [];
    for (let f = this.head; f !== NONE; f = this.next[f]!) out.push(f);
    return out;
  }

  private unlink(f: number): void {
    const p = this.prev[f]!;
    const nx = this.next[f]!;
    if (p !== NONE) this.next[p] = nx;
    else this.head = nx;
    if (nx !== NONE) this.prev[nx] = p;
    else this.tail = p;
  }

  private pushFront(f: number): void {
    this.prev[f] = NONE;
    this.next[f] = this.head;
    if (this.head !== NONE) this.prev[this.head] = f;
    this.head = f;
    if (this.tail === NONE) this.tail = f;
  }
}

/**
 * GreedyDual-Size (Cao & Irani, 1997) with cost 1 per file, the policy of the LARD paper's
 * simulations: each file holds H = L + 1/size; the file of least H is evicted and L rises to its H;
 * a hit restores H = L + 1/size. Small files are kept longer, which maximises the hit ratio.
 * A min-heap on H with each file's heap position, so every operation is O(log files held).
 */
export class GreedyDualSizeCache implements FileCache {
  private readonly heap: Int32Array; // file ids
  private readonly h: Float64Array; // H per file id
  private readonly pos: Int32Array; // heap index per file id, -1 when absent
  private readonly sizes: Float64Array;
  private readonly stamp: Float64Array; // insertion order breaks ties in H (older goes first)
  private ticks = 0;
  private inflation = 0; // L
  usedBytes = 0;
  count = 0;

  constructor(
    readonly capacityBytes: number,
    files: number,
  ) {
    this.heap = new Int32Array(files);
    this.h = new Float64Array(files);
    this.pos = new Int32Array(files).fill(NONE);
    this.sizes = new Float64Array(files);
    this.stamp = new Float64Array(files);
  }

  /** The current inflation value L (for tests). */
  get L(): number {
    return this.inflation;
  }

  has(file: number): boolean {
    return this.pos[file] !== NONE;
  }

  /** H of a file held (for tests). */
  priority(file: number): number | undefined {
    return this.pos[file] === NONE ? undefined : this.h[file];
  }

  lookup(file: number): boolean {
    const i = this.pos[file]!;
    if (i === NONE) return false;
    this.h[file] = this.inflation + 1 / Math.max(1, this.sizes[file]!);
    this.stamp[file] = this.ticks++;
    this.siftDown(i); // H only grows (L never falls)
    return true;
  }

  insert(file: number, size: number): void {
    if (this.lookup(file)) return;
    if (size > this.capacityBytes) return;
    while (this.usedBytes + size > this.capacityBytes && this.count > 0) {
      const victim = this.heap[0]!;
      this.inflation = this.h[victim]!;
      this.removeRoot();
      this.usedBytes -= this.sizes[victim]!;
    }
    this.sizes[file] = size;
    this.h[file] = this.inflation + 1 / Math.max(1, size);
    this.stamp[file] = this.ticks++;
    const i = this.count++;
    this.heap[i] = file;
    this.pos[file] = i;
    this.siftUp(i);
    this.usedBytes += size;
  }

  private less(a: number, b: number): boolean {
    const ha = this.h[a]!;
    const hb = this.h[b]!;
    return ha < hb || (ha === hb && this.stamp[a]! < this.stamp[b]!);
  }

  private removeRoot(): void {
    const root = this.heap[0]!;
    this.pos[root] = NONE;
    const last = --this.count;
    if (last === 0) return;
    const f = this.heap[last]!;
    this.heap[0] = f;
    this.pos[f] = 0;
    this.siftDown(0);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const f = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pf = heap[p]!;
      if (!this.less(f, pf)) break;
      heap[i] = pf;
      this.pos[pf] = i;
      i = p;
    }
    heap[i] = f;
    this.pos[f] = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = this.count;
    const f = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(heap[c + 1]!, heap[c]!)) c++;
      const cf = heap[c]!;
      if (!this.less(cf, f)) break;
      heap[i] = cf;
      this.pos[cf] = i;
      i = c;
    }
    heap[i] = f;
    this.pos[f] = i;
  }
}
