import type { Worker } from 'node:cluster';
import { AdminError } from '../admin/admin-error.js';
import type { AdminRouter } from '../admin/router.js';
import type { Logger } from '../observability/logger.js';
import { Channel, IpcTimeoutError, type IpcPort } from './ipc.js';
import type { ReloadReply } from './workers-config.js';

/**
 * Upgrading Portico without dropping a connection (SIGUSR2 to the primary, `portico upgrade`,
 * `POST /api/v1/upgrade`), with `cluster.workers`: the primary holds the listening sockets
 * (node:cluster hands each accepted connection to a worker), so it can start a new set of
 * workers, which load the code now on disk (each is a fresh `node` process), and, once every
 * one of them accepts, drain the old ones: they stop accepting (the primary hands them no more
 * connections), finish their in-flight requests (a keep-alive connection is closed after its
 * current answer, an idle one at once) for up to `shutdownGrace`, and exit. The configuration
 * is read and validated first, as a reload does; an invalid file refuses the upgrade.
 *
 * A new worker that cannot start, or that is not ready within `cluster.upgradeTimeout`, ends
 * the upgrade: the new workers are stopped and the running ones go on, untouched.
 *
 * The primary itself is not replaced: its code (the health checks, discovery, the shared
 * store, this module) stays what it loaded at start; docs/deployment.md says what to do.
 */

/** What an upgrade did: the workers started and the ones told to drain, by PID; or why nothing was replaced. */
export type UpgradeReply =
  | { readonly ok: true; readonly started: readonly number[]; readonly draining: readonly number[] }
  | { readonly ok: false; readonly error: string };

/** What a worker asks the primary on the upgrade channel. */
type UpgradeUp = { calls: { upgrade: { req: { why: string }; res: UpgradeReply } }; notes: Record<never, never> };
type UpgradeDown = { calls: Record<never, never>; notes: Record<never, never> };

/** The channel's name on a worker's IPC port. */
const UPGRADE_CHANNEL = 'upgrade';

/** Why a single process cannot be upgraded in place (SIGUSR2 and the admin API say it). */
export const SINGLE_PROCESS_UPGRADE =
  'an upgrade replaces the workers of cluster.workers (2 or more), whose listening sockets the primary keeps; a single process (cluster.workers: 1) holds its own sockets and cannot hand them over: restart it (systemctl restart portico), which refuses connections until it listens again';

/** What the primary gives the upgrade: its group of workers. */
export interface UpgradeGroup {
  /** How many workers the group runs. */
  readonly size: number;
  /** The running workers (not those an upgrade is starting). */
  running(): readonly Worker[];
  /** Start one worker (told to the upgrade through ready() and failed()). */
  fork(): Worker;
  /** Read and validate the configuration and apply it to every worker (a reload). */
  reload(why: string): Promise<ReloadReply>;
  /** Ask a worker to drain and exit (SIGTERM). */
  drain(w: Worker): void;
  /** True once the group is stopping. */
  stopping(): boolean;
  /** The bound on the new workers' start, in ms (cluster.upgradeTimeout). */
  timeoutMs(): number;
}

/** The primary's side: one upgrade at a time. */
export class Upgrader {
  /** The workers this upgrade started that are not ready yet. */
  private readonly fresh = new Set<Worker>();
  /** Workers told to drain (an upgrade's old ones, or the new ones of a failed upgrade): their exit is expected. */
  private readonly retiring = new Set<Worker>();
  private pending: { ready(w: Worker): void; failed(why: string): void } | undefined;
  private busy = false;

  constructor(
    private readonly group: UpgradeGroup,
    private readonly log: Logger,
  ) {}

  /** Answer the `upgrade` requests of one worker (its admin API) until the returned function is called. */
  serve(port: IpcPort): () => void {
    const ch = new Channel<UpgradeDown, UpgradeUp>(port, UPGRADE_CHANNEL);
    ch.handle('upgrade', ({ why }) => this.upgrade(why));
    return () => ch.close('the worker exited');
  }

  /** True for a worker an upgrade started and that is not ready yet. */
  isStarting(w: Worker): boolean {
    return this.fresh.has(w);
  }

  /** A worker is ready (its listeners accept). */
  ready(w: Worker): void {
    if (this.fresh.delete(w)) this.pending?.ready(w);
  }

  /**
   * A worker could not start, or exited. True when the upgrade takes it (a new worker: the
   * upgrade fails; one told to drain: expected); false when the group handles it as usual.
   */
  gone(w: Worker, why: string): boolean {
    if (this.retiring.delete(w)) return true;
    if (!this.fresh.delete(w)) return false;
    // One that could not start exits next: that exit is expected too.
    if (!w.isDead()) this.retiring.add(w);
    this.pending?.failed(`new worker ${w.process.pid} ${why}`);
    return true;
  }

  /** Replace every worker: new ones first, then the old ones drain. One at a time; resolves with what was done. */
  async upgrade(why: string): Promise<UpgradeReply> {
    if (this.group.stopping()) return { ok: false, error: 'Portico is stopping' };
    if (this.busy) return { ok: false, error: 'an upgrade is already in progress' };
    this.busy = true;
    try {
      return await this.replace(why);
    } finally {
      this.busy = false;
    }
  }

  private async replace(why: string): Promise<UpgradeReply> {
    const g = this.group;
    this.log.info(`${why}: upgrade: reading the configuration, then starting ${g.size} workers from the code on disk`);
    const r = await g.reload(`${why} (upgrade)`);
    if (!r.ok) {
      const detail = r.issues !== undefined ? r.issues.map((i) => `${i.path}: ${i.message}`).join('; ') : (r.error ?? 'refused');
      const error = `the configuration is refused (${detail}); no worker was replaced`;
      this.log.error(`upgrade refused: ${error}`);
      return { ok: false, error };
    }
    const old = [...g.running()];
    const started: Worker[] = [];
    const timeoutMs = g.timeoutMs();
    const failure = await new Promise<string | undefined>((resolve) => {
      let left = g.size;
      const end = (v: string | undefined): void => {
        clearTimeout(timer);
        this.pending = undefined;
        resolve(v);
      };
      const timer = setTimeout(() => end(`the new workers were not all ready within ${timeoutMs} ms (cluster.upgradeTimeout)`), timeoutMs);
      this.pending = {
        ready: () => {
          if (--left === 0) end(undefined);
        },
        failed: (reason) => end(reason),
      };
      for (let i = 0; i < g.size && this.pending !== undefined; i++) {
        const w = g.fork();
        this.fresh.add(w);
        started.push(w);
      }
    });
    if (g.stopping()) return { ok: false, error: 'Portico is stopping' };
    if (failure !== undefined) {
      // The new workers go; the running ones were never touched.
      for (const w of started) {
        this.fresh.delete(w);
        if (w.isDead()) continue;
        this.retiring.add(w);
        g.drain(w);
      }
      const error = `${failure}; the new workers were stopped and the ${old.length} running workers go on`;
      this.log.error(`upgrade failed: ${error}`);
      return { ok: false, error };
    }
    const draining: number[] = [];
    for (const w of old) {
      if (w.isDead()) continue;
      this.retiring.add(w);
      g.drain(w);
      draining.push(w.process.pid!);
    }
    const reply = { ok: true as const, started: started.map((w) => w.process.pid!), draining };
    this.log.info(`upgrade: workers ${reply.started.join(', ')} accept; workers ${draining.join(', ')} drain (in-flight requests finish, then they exit)`);
    return reply;
  }
}

/**
 * In a worker: `POST /api/v1/upgrade` on its admin API asks the primary to upgrade and answers
 * with what was done (this worker is among those that drain, after it has answered).
 */
export function mountWorkerUpgrade(router: AdminRouter, port: IpcPort, timeoutMs: () => number): void {
  const ch = new Channel<UpgradeUp, UpgradeDown>(port, UPGRADE_CHANNEL);
  router.route('POST', '/api/v1/upgrade', async () => {
    // The reload, the new workers' start (cluster.upgradeTimeout) and some margin.
    const bound = timeoutMs() + 30_000;
    let r: UpgradeReply;
    try {
      r = await ch.call('upgrade', { why: `POST /api/v1/upgrade through worker ${process.pid}` }, bound);
    } catch (err) {
      throw new AdminError(500, 'LB_ADMIN_INTERNAL', err instanceof IpcTimeoutError ? `the primary did not answer within ${bound} ms` : String(err));
    }
    if (!r.ok) throw new AdminError(409, 'LB_ADMIN_CONFLICT', `upgrade not done: ${r.error}`);
    return r;
  });
}

/** In a single process: `POST /api/v1/upgrade` says why there is nothing to upgrade in place. */
export function mountSingleProcessUpgrade(router: AdminRouter): void {
  router.route('POST', '/api/v1/upgrade', () => {
    throw new AdminError(409, 'LB_ADMIN_CONFLICT', `upgrade not done: ${SINGLE_PROCESS_UPGRADE}`);
  });
}
