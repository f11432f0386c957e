import type { StateStore } from '../store/state-store.js';
import { Channel, IpcTimeoutError, type IpcPort } from './ipc.js';

/**
 * One StateStore for the worker processes of one machine (`cluster.workers`): the primary holds
 * it (a MemoryStore) and serves it over the IPC channel; each worker's WorkerStore forwards every
 * operation there. Stick tables, rate-limit counters, TLS sessions and runtime changes made through
 * the admin API are then one view for every worker, as they are for several nodes through Redis.
 */

/** What a worker's WorkerStore asks the primary: one request per StateStore operation. */
export type StoreUp = {
  calls: {
    get: { req: { key: string }; res: string | undefined };
    set: { req: { key: string; value: string; ttlMs: number | undefined }; res: void };
    delete: { req: { key: string }; res: void };
    incr: { req: { key: string; by: number; ttlMs: number | undefined }; res: number };
    publish: { req: { channel: string; msg: string }; res: void };
    /** `sub` names the subscription in the `msg` notes and in unsubscribe. */
    subscribe: { req: { channel: string; sub: number }; res: void };
    unsubscribe: { req: { sub: number }; res: void };
  };
  notes: Record<never, never>;
};

/** What the primary sends a worker's store: the messages of its subscriptions. */
export type StoreDown = {
  calls: Record<never, never>;
  notes: { msg: { sub: number; msg: string } };
};

/** The channel's name on a worker's IPC port. */
const STORE = 'store';

/**
 * Serve `store` to one worker over `port`, until the returned function is called (the worker
 * exited): its subscriptions end then. Errors of the store reach the worker as rejections with
 * the same name and message.
 */
export function serveStore(store: StateStore, port: IpcPort): () => void {
  const subs = new Map<number, AbortController>();
  const ch = new Channel<StoreDown, StoreUp>(port, STORE);
  ch.handle('get', ({ key }) => store.get(key))
    .handle('set', ({ key, value, ttlMs }) => store.set(key, value, ttlMs))
    .handle('delete', ({ key }) => store.delete(key))
    .handle('incr', ({ key, by, ttlMs }) => store.incr(key, by, ttlMs))
    .handle('publish', ({ channel, msg }) => store.publish(channel, msg))
    .handle('subscribe', ({ channel, sub }) => {
      const ac = new AbortController();
      subs.set(sub, ac);
      return store.subscribe(channel, (msg) => void ch.notify('msg', { sub, msg }), ac.signal);
    })
    .handle('unsubscribe', ({ sub }) => {
      subs.get(sub)?.abort();
      subs.delete(sub);
    });
  return () => {
    ch.close();
    for (const ac of subs.values()) ac.abort();
    subs.clear();
  };
}

/** A worker's view of the primary's store. Operations reject after `timeoutMs` without an answer. */
export class WorkerStore implements StateStore {
  private nextSub = 1;
  private readonly handlers = new Map<number, (msg: string) => void>();
  private readonly ch: Channel<StoreUp, StoreDown>;

  constructor(
    port: IpcPort,
    private readonly timeoutMs = 2000,
  ) {
    this.ch = new Channel<StoreUp, StoreDown>(port, STORE);
    this.ch.on('msg', ({ sub, msg }) => this.handlers.get(sub)?.(msg));
  }

  get(key: string): Promise<string | undefined> {
    return this.call('get', { key });
  }

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    return this.call('set', { key, value, ttlMs });
  }

  delete(key: string): Promise<void> {
    return this.call('delete', { key });
  }

  incr(key: string, by: number, ttlMs?: number): Promise<number> {
    return this.call('incr', { key, by, ttlMs });
  }

  publish(channel: string, msg: string): Promise<void> {
    return this.call('publish', { channel, msg });
  }

  async subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const sub = this.nextSub++;
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
        if (!this.ch.closed) this.call('unsubscribe', { sub }).catch(() => undefined);
      },
      { once: true },
    );
    try {
      await this.call('subscribe', { channel, sub });
    } catch (err) {
      this.handlers.delete(sub);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.ch.close('store closed');
    this.handlers.clear();
  }

  /** One operation; a timeout says which, in the store's words. */
  private async call<K extends keyof StoreUp['calls'] & string>(op: K, req: StoreUp['calls'][K]['req']): Promise<StoreUp['calls'][K]['res']> {
    try {
      return await this.ch.call(op, req, this.timeoutMs);
    } catch (err) {
      if (err instanceof IpcTimeoutError) throw new Error(`the primary's store did not answer ${op} within ${this.timeoutMs} ms`);
      throw err;
    }
  }
}
