import type { StateStore } from '../store/state-store.js';
import { isObject } from '../core/guards.js';

/**
 * One StateStore for the worker processes of one machine (`cluster.workers`): the primary holds
 * it (a MemoryStore) and serves it over the IPC channel; each worker's WorkerStore forwards every
 * operation there. Stick tables, rate-limit counters, TLS sessions and runtime changes made through
 * the admin API are then one view for every worker, as they are for several nodes through Redis.
 */

/** The IPC channel of one worker as each side sees it (process.send / process.on('message'), or cluster's Worker). */
export interface IpcPort {
  send(msg: unknown): void;
  onMessage(fn: (msg: unknown) => void): () => void;
}

type Op = 'get' | 'set' | 'delete' | 'incr' | 'publish' | 'subscribe' | 'unsubscribe';

interface StoreRequest {
  readonly t: 'store';
  readonly id: number;
  readonly op: Op;
  readonly args: readonly unknown[];
}
interface StoreReply {
  readonly t: 'store-reply';
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: { readonly name: string; readonly message: string };
}
interface StoreMessage {
  readonly t: 'store-msg';
  readonly sub: number;
  readonly msg: string;
}


/**
 * Serve `store` to one worker over `port`, until the returned function is called (the worker
 * exited): its subscriptions end then. Errors of the store reach the worker as rejections with
 * the same name and message.
 */
export function serveStore(store: StateStore, port: IpcPort): () => void {
  const subs = new Map<number, AbortController>();
  const reply = (r: StoreReply): void => {
    try {
      port.send(r);
    } catch {
      // the worker is gone; its exit ends this service
    }
  };
  const off = port.onMessage((raw) => {
    if (!isObject(raw) || raw['t'] !== 'store' || typeof raw['id'] !== 'number' || !Array.isArray(raw['args'])) return;
    const req = raw as unknown as StoreRequest;
    const a = req.args;
    let p: Promise<unknown>;
    try {
      switch (req.op) {
        case 'get':
          p = store.get(String(a[0]));
          break;
        case 'set':
          p = store.set(String(a[0]), String(a[1]), a[2] as number | undefined);
          break;
        case 'delete':
          p = store.delete(String(a[0]));
          break;
        case 'incr':
          p = store.incr(String(a[0]), a[1] as number, a[2] as number | undefined);
          break;
        case 'publish':
          p = store.publish(String(a[0]), String(a[1]));
          break;
        case 'subscribe': {
          const sub = a[1] as number;
          const ac = new AbortController();
          subs.set(sub, ac);
          p = store.subscribe(String(a[0]), (msg) => reply({ t: 'store-msg', sub, msg } as unknown as StoreReply), ac.signal);
          break;
        }
        case 'unsubscribe':
          subs.get(a[0] as number)?.abort();
          subs.delete(a[0] as number);
          p = Promise.resolve();
          break;
        default:
          p = Promise.reject(new Error(`unknown store operation ${String(req.op)}`));
      }
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (value) => reply({ t: 'store-reply', id: req.id, ok: true, value }),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        reply({ t: 'store-reply', id: req.id, ok: false, error: { name: e.name, message: e.message } });
      },
    );
  });
  return () => {
    off();
    for (const ac of subs.values()) ac.abort();
    subs.clear();
  };
}

/** A worker's view of the primary's store. Operations reject after `timeoutMs` without an answer. */
export class WorkerStore implements StateStore {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readonly handlers = new Map<number, (msg: string) => void>();
  private readonly off: () => void;
  private closed = false;

  constructor(
    private readonly port: IpcPort,
    private readonly timeoutMs = 2000,
  ) {
    this.off = port.onMessage((raw) => this.receive(raw));
  }

  get(key: string): Promise<string | undefined> {
    return this.call('get', [key]) as Promise<string | undefined>;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.call('set', [key, value, ttlMs]);
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', [key]);
  }

  incr(key: string, by: number, ttlMs?: number): Promise<number> {
    return this.call('incr', [key, by, ttlMs]) as Promise<number>;
  }

  async publish(channel: string, msg: string): Promise<void> {
    await this.call('publish', [channel, msg]);
  }

  async subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const sub = this.nextId++;
    this.handlers.set(sub, (msg) => {
      try {
        onMessage(msg);
      } catch {
        // a subscriber's fault never stops delivery to the others
      }
    });
    signal.addEventListener(
      'abort',
      () => {
        this.handlers.delete(sub);
        if (!this.closed) this.call('unsubscribe', [sub]).catch(() => undefined);
      },
      { once: true },
    );
    try {
      await this.call('subscribe', [channel, sub]);
    } catch (err) {
      this.handlers.delete(sub);
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.off();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('store closed'));
      this.pending.delete(id);
    }
    this.handlers.clear();
  }

  private call(op: Op, args: readonly unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('store closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the primary's store did not answer ${op} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.port.send({ t: 'store', id, op, args } satisfies StoreRequest);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private receive(raw: unknown): void {
    if (!isObject(raw)) return;
    if (raw['t'] === 'store-msg') {
      const m = raw as unknown as StoreMessage;
      this.handlers.get(m.sub)?.(m.msg);
      return;
    }
    if (raw['t'] !== 'store-reply') return;
    const r = raw as unknown as StoreReply;
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.value);
    else {
      const e = r.error?.name === 'RangeError' ? new RangeError(r.error.message) : r.error?.name === 'TypeError' ? new TypeError(r.error.message) : new Error(r.error?.message ?? 'store error');
      p.reject(e);
    }
  }
}
