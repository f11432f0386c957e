/**
 * The simulator's future-event list: a binary min-heap of (time, kind, arg) ordered by time, then by
 * insertion order, so two events at the same instant run in the order they were scheduled and a run
 * is fully determined by its inputs and seed. Parallel typed arrays, no object per event.
 */
export class EventQueue {
  private time: Float64Array;
  private seq: Float64Array;
  private kinds: Uint8Array;
  private args: Int32Array;
  private n = 0;
  private counter = 0;

  /** The last popped event: its time, kind and argument. */
  t = 0;
  kind = 0;
  arg = 0;

  constructor(capacity = 64) {
    const c = Math.max(4, capacity);
    this.time = new Float64Array(c);
    this.seq = new Float64Array(c);
    this.kinds = new Uint8Array(c);
    this.args = new Int32Array(c);
  }

  get size(): number {
    return this.n;
  }

  /** Schedule `kind` (0..255) with `arg` (a 32-bit integer) at `time`. */
  push(time: number, kind: number, arg: number): void {
    if (!(time === time)) throw new RangeError('event time is NaN');
    if (this.n === this.time.length) this.grow();
    const seq = this.counter++;
    const T = this.time;
    const S = this.seq;
    let i = this.n++;
    // sift the hole up
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = T[p]!;
      if (pt < time || (pt === time && S[p]! < seq)) break;
      T[i] = pt;
      S[i] = S[p]!;
      this.kinds[i] = this.kinds[p]!;
      this.args[i] = this.args[p]!;
      i = p;
    }
    T[i] = time;
    S[i] = seq;
    this.kinds[i] = kind;
    this.args[i] = arg;
  }

  /** Remove the earliest event into `t`, `kind`, `arg`; false when the queue is empty. */
  pop(): boolean {
    if (this.n === 0) return false;
    const T = this.time;
    const S = this.seq;
    const K = this.kinds;
    const A = this.args;
    this.t = T[0]!;
    this.kind = K[0]!;
    this.arg = A[0]!;
    const last = --this.n;
    if (last === 0) return true;
    const lt = T[last]!;
    const ls = S[last]!;
    const lk = K[last]!;
    const la = A[last]!;
    let i = 0;
    const half = last >> 1;
    // sift the hole down
    while (i < half) {
      let c = 2 * i + 1;
      const r = c + 1;
      if (r < last && (T[r]! < T[c]! || (T[r] === T[c] && S[r]! < S[c]!))) c = r;
      const ct = T[c]!;
      if (lt < ct || (lt === ct && ls < S[c]!)) break;
      T[i] = ct;
      S[i] = S[c]!;
      K[i] = K[c]!;
      A[i] = A[c]!;
      i = c;
    }
    T[i] = lt;
    S[i] = ls;
    K[i] = lk;
    A[i] = la;
    return true;
  }

  private grow(): void {
    const c = this.time.length * 2;
    const t = new Float64Array(c);
    t.set(this.time);
    const s = new Float64Array(c);
    s.set(this.seq);
    const k = new Uint8Array(c);
    k.set(this.kinds);
    const a = new Int32Array(c);
    a.set(this.args);
    this.time = t;
    this.seq = s;
    this.kinds = k;
    this.args = a;
  }
}
