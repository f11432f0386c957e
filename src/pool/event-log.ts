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

/** What the process log says of a pool event: its level (a server going down is a warning, as HAProxy logs it), the line and its fields. */
export function poolEventLine(ev: {
  readonly pool: string;
  readonly server: string;
  readonly kind: string;
  readonly from: string;
  readonly to: string;
  readonly cause: string;
  readonly detail?: string | undefined;
}): { level: 'warn' | 'info'; msg: string; fields: Record<string, string> } {
  const what = ev.kind === 'added' ? `added (${ev.to})` : ev.kind === 'removed' ? `removed (was ${ev.from})` : `${ev.kind} ${ev.from} -> ${ev.to}`;
  const fields: Record<string, string> = { cause: ev.cause };
  if (ev.detail !== undefined && ev.detail !== '') fields.detail = ev.detail;
  return { level: ev.kind === 'op' && ev.to === 'down' ? 'warn' : 'info', msg: `server ${ev.pool}/${ev.server} ${what}`, fields };
}
