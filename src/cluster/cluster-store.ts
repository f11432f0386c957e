import type { Logger } from '../observability/logger.js';
import { CollectedMetric } from '../observability/metrics.js';
import { RedisStore, STORE_OPS, type StoreOp } from '../store/redis-store.js';

export interface ClusterStoreOptions {
  /** `cluster.store`: a redis:// or rediss:// URL. */
  readonly url: string;
  readonly log: Logger;
  /** How long start() waits for the first connection before Portico goes on without it (default 2 s). */
  readonly connectWaitMs?: number | undefined;
}

/**
 * The shared store of a cluster (`cluster.store: redis://...`) as a service: connected at
 * start (Portico starts even when Redis does not answer; it then runs on local state and
 * connects when Redis is back), closed at stop. Store failures are logged at most every 10 s
 * and counted (`portico_store_errors_total{op}`); the connection state is `portico_store_up`.
 * `onReconnect` hooks run when the store is back after an outage (resynchronisation).
 */
export class ClusterStore {
  readonly name = 'store';
  readonly store: RedisStore;
  private readonly o: ClusterStoreOptions;
  private readonly reconnectHooks: (() => void)[] = [];
  private wasDown = false;
  private lastErrorLog = 0;
  private suppressed = 0;

  constructor(o: ClusterStoreOptions) {
    this.o = o;
    this.store = new RedisStore({ url: o.url, onError: this.onError, onState: this.onState });
  }

  /** Run `fn` each time the store comes back after being unreachable. */
  onReconnect(fn: () => void): void {
    this.reconnectHooks.push(fn);
  }

  async start(): Promise<void> {
    const wait = this.o.connectWaitMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.store.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no connection within ${wait} ms`)), wait);
        }),
      ]);
      this.o.log.info(`state store ${this.store.displayUrl} connected`, { prefix: this.store.prefix });
    } catch (err) {
      this.wasDown = true;
      this.o.log.warn(`state store ${this.store.displayUrl} unreachable; running on local state until it answers`, { error: msg(err) });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    await this.store.close();
  }

  /** For the admin status: where the store is, whether it is connected, its failures by operation. */
  status(): { kind: 'redis'; url: string; prefix: string; up: boolean; errors: Record<string, number> } {
    const errors: Record<string, number> = {};
    for (const [op, n] of this.store.errors()) errors[op] = n;
    return { kind: 'redis', url: this.store.displayUrl, prefix: this.store.prefix, up: this.store.isUp, errors };
  }

  /** `portico_store_errors_total{op}` and `portico_store_up`. */
  metrics(): CollectedMetric[] {
    const store = this.store;
    return [
      new CollectedMetric(
        'portico_store_errors_total',
        'Operations on the shared state store (cluster.store) that failed or timed out, by operation; the request path went on without the store',
        'counter',
        function* () {
          const errors = store.errors();
          for (const op of STORE_OPS) yield { labels: { op }, value: errors.get(op) ?? 0 };
        },
      ),
      new CollectedMetric('portico_store_up', 'Whether the shared state store (cluster.store) is connected (1) or not (0)', 'gauge', function* () {
        yield { labels: {}, value: store.isUp ? 1 : 0 };
      }, 'min'),
    ];
  }

  private readonly onError = (op: StoreOp, err: unknown): void => {
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) {
      this.suppressed++;
      return;
    }
    this.lastErrorLog = now;
    const more = this.suppressed;
    this.suppressed = 0;
    this.o.log.warn(`state store ${op} failed; requests go on with local state (not pinned, local limits)`, {
      error: msg(err),
      ...(more > 0 ? { alsoFailedSinceLastLog: more } : {}),
    });
  };

  private readonly onState = (up: boolean): void => {
    if (!up) {
      this.wasDown = true;
      this.o.log.warn(`state store ${this.store.displayUrl} connection lost; running on local state`);
      return;
    }
    if (!this.wasDown) return;
    this.wasDown = false;
    this.o.log.info(`state store ${this.store.displayUrl} reconnected; resynchronising`);
    for (const fn of this.reconnectHooks) {
      try {
        fn();
      } catch (err) {
        this.o.log.warn('state store resynchronisation failed', { error: msg(err) });
      }
    }
  };
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
