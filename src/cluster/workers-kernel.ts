import type { Config } from '../config/types.js';
import { KERNEL_COMMANDS, nftApply, runHere, useRunner, type RunResult } from '../kernel/nft.js';
import { plane } from '../kernel/plane.js';
import { renderDelete } from '../kernel/render.js';
import type { Logger } from '../observability/logger.js';
import { Channel, type IpcPort } from './ipc.js';

/**
 * Kernel listeners (`dataPlane: kernel`) under `cluster.workers`: only the primary programs the
 * kernel (SPEC §10). Every worker runs its kernel listeners as it runs the others (their pools
 * with the probes' states and the admin API's changes, their admin views, their counters), but
 * runs no nft or conntrack itself: it sends each command to the primary, which runs it. Of the
 * workers, one writes (the primary chooses it: the first to join, then the next when it stops or
 * exits; it then writes the whole table from its own state); the others' writes are not made, and
 * their reads (counters, flows) are answered by the primary like the writer's. When the group
 * stops, the workers leave the table as it is and the primary deletes it once they have exited
 * (unless every kernel listener says `keepOnExit`), so an upgrade (new workers, then the old
 * ones drained) keeps the rules throughout.
 */

/** What a worker asks the primary. */
export type KernelUp = {
  calls: {
    /** Run a kernel command (nft, conntrack) in the primary. */
    run: { req: { cmd: string; args: string[]; input: string; timeoutMs: number }; res: RunResult };
    /** This worker runs kernel listeners: it may be chosen to write. Answers whether it writes now. */
    join: { req: Record<string, never>; res: { lead: boolean } };
  };
  /** This worker is stopping: another writes from now on. */
  notes: { leave: Record<string, never> };
};

/** What the primary tells a worker: it writes from now on. */
export type KernelDown = {
  calls: Record<never, never>;
  notes: { lead: Record<string, never> };
};

const KERNEL = 'kernel';

/** How long a worker waits for a command the primary runs (nft's own timeout, plus the IPC). */
const IPC_MARGIN_MS = 5000;

/** The primary's side: runs the workers' kernel commands, chooses the writer, deletes the table at the end. */
export class KernelHub {
  private readonly joined = new Map<number, Channel<KernelDown, KernelUp>>();
  private readonly leaving = new Set<number>();
  private writer: number | undefined;
  private stopping = false;

  constructor(
    private readonly log: Logger,
    private readonly config: () => Config,
  ) {}

  /** Serve worker `id` over `port` until the returned function is called (it exited). */
  serve(id: number, port: IpcPort): () => void {
    const ch = new Channel<KernelDown, KernelUp>(port, KERNEL);
    ch.handle('run', ({ cmd, args, input, timeoutMs }) => {
      if (!KERNEL_COMMANDS.has(cmd)) throw new TypeError(`the primary runs no '${cmd}' for a worker (only ${[...KERNEL_COMMANDS].join(', ')})`);
      return runHere(cmd, args, input, timeoutMs);
    })
      .handle('join', () => {
        this.joined.set(id, ch);
        if (this.writer === undefined && !this.stopping) {
          this.writer = id;
          this.log.info(`kernel: worker ${id} writes the kernel's rules (run by the primary)`);
        }
        return { lead: this.writer === id };
      })
      .on('leave', () => {
        this.leaving.add(id);
        if (this.writer === id) this.handOver(id);
      });
    return () => {
      ch.close('the worker exited');
      this.joined.delete(id);
      this.leaving.delete(id);
      if (this.writer === id) this.handOver(id);
    };
  }

  /** The writer `was` stops: the next worker that joined and is not stopping writes, from its own state. */
  private handOver(was: number): void {
    this.writer = undefined;
    if (this.stopping) return;
    for (const [id, ch] of this.joined) {
      if (id === was || this.leaving.has(id) || ch.closed) continue;
      this.writer = id;
      this.log.info(`kernel: worker ${was} stopped writing the kernel's rules; worker ${id} takes over`);
      ch.notify('lead', {});
      return;
    }
  }

  /**
   * The group has stopped (every worker exited): the table is deleted unless every kernel listener
   * keeps it (`kernel.keepOnExit`). Nothing to do when no worker ever ran a kernel listener.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const kernel = this.config().listeners.filter((l) => 'dataPlane' in l && l.dataPlane === 'kernel');
    if (kernel.length === 0 || kernel.every((l) => (l as { kernel: { keepOnExit: boolean } }).kernel.keepOnExit)) return;
    try {
      await nftApply(renderDelete());
    } catch (err) {
      this.log.warn('kernel: the table could not be deleted', { error: String(err) });
    }
  }
}

/**
 * A worker's side: nft and conntrack run in the primary; this worker writes only once the
 * primary chooses it. Call before the listeners start; `leave()` when the worker stops.
 */
export class KernelLink {
  private readonly ch: Channel<KernelUp, KernelDown>;
  private joinedOnce: Promise<void> | undefined;

  constructor(port: IpcPort) {
    this.ch = new Channel<KernelUp, KernelDown>(port, KERNEL);
    plane.follow();
    useRunner((cmd, args, input, timeoutMs) => this.ch.call('run', { cmd, args: [...args], input, timeoutMs }, timeoutMs + IPC_MARGIN_MS));
    this.ch.on('lead', () => void plane.takeOver());
    plane.gateInstalls(() => this.join());
  }

  /** Offer to write (the first worker to join does); once, before the first kernel listener starts. */
  join(): Promise<void> {
    this.joinedOnce ??= this.ch.call('join', {}, 10_000).then(async ({ lead }) => {
      if (lead) await plane.takeOver();
    });
    return this.joinedOnce;
  }

  /** This worker stops: it writes no more (the rules stay as they are), and the primary chooses another. */
  leave(): void {
    if (this.ch.closed) return;
    const was = plane.leading;
    plane.follow();
    if (was || this.joinedOnce !== undefined) this.ch.notify('leave', {});
  }
}
