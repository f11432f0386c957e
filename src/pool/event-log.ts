/** A bounded ring of recent events, oldest first; what the admin API and the dashboard read. */
export class EventLog<E> {
  private readonly ring: (E | undefined)[];
  private next = 0;
  private count = 0;
  readonly capacity: number;

  constructor(capacity = 1000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`event log capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.ring = new Array<E | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(ev: E): void {
    this.ring[this.next] = ev;
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
    if (this.count < this.capacity) this.count++;
  }

  /** The kept events, oldest first (the last `limit` of them when given). */
  list(limit = this.count): E[] {
    const n = Math.max(0, Math.min(limit, this.count));
    const out: E[] = [];
    for (let i = this.count - n; i < this.count; i++) {
      out.push(this.ring[(this.next - this.count + i + this.capacity) % this.capacity]!);
    }
    return out;
  }
}
