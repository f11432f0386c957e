/**
 * The stream behind `GET /api/v1/events`: state changes, health results and the
 * per-second statistics, published by whoever observes them and fanned out to every
 * subscriber. Recent events of each kind are kept so that a new subscriber (a dashboard
 * being opened) starts with some history.
 */

/** One published event. `id` increases by one per event over the node's life. */
export interface LiveEvent {
  readonly id: number;
  readonly type: string;
  /** Wall-clock time of publication, ms since the epoch. */
  readonly time: number;
  readonly data: unknown;
}

export type EventSubscriber = (ev: LiveEvent) => void;

export interface EventHubOptions {
  /** How many events of each type are kept for new subscribers (default 200). */
  readonly keepPerType?: number;
  /** Types that are kept with a larger history (e.g. `stats`: one a second). */
  readonly keep?: Readonly<Record<string, number>>;
  readonly now?: () => number;
}

export class EventHub {
  private seq = 0;
  private readonly subscribers = new Set<EventSubscriber>();
  private readonly recent = new Map<string, LiveEvent[]>();
  private readonly keepPerType: number;
  private readonly keep: Readonly<Record<string, number>>;
  private readonly now: () => number;

  constructor(options: EventHubOptions = {}) {
    this.keepPerType = options.keepPerType ?? 200;
    this.keep = options.keep ?? {};
    this.now = options.now ?? Date.now;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  publish(type: string, data: unknown): LiveEvent {
    const ev: LiveEvent = { id: ++this.seq, type, time: this.now(), data };
    let list = this.recent.get(type);
    if (list === undefined) {
      list = [];
      this.recent.set(type, list);
    }
    list.push(ev);
    const max = this.keep[type] ?? this.keepPerType;
    if (list.length > max) list.splice(0, list.length - max);
    for (const fn of this.subscribers) {
      try {
        fn(ev);
      } catch {
        // one subscriber's fault never stops the others
      }
    }
    return ev;
  }

  /** Receive every event published from now on; returns the unsubscribe function. */
  subscribe(fn: EventSubscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** Kept events of the given types (all types when omitted), oldest first. */
  history(types?: readonly string[], afterId = 0): LiveEvent[] {
    const out: LiveEvent[] = [];
    for (const [type, list] of this.recent) {
      if (types !== undefined && !types.includes(type)) continue;
      for (const ev of list) if (ev.id > afterId) out.push(ev);
    }
    return out.sort((a, b) => a.id - b.id);
  }
}
