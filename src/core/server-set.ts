import type { AdminState, OpState, Server, ServerId } from './server.js';
import { acceptsPinned, isAvailable } from './server.js';

export interface ServerStatus {
  readonly admin: AdminState;
  readonly op: OpState;
}

/**
 * An immutable snapshot of a pool's servers, built once per change of membership,
 * health or admin state. Balancers are built from it and read only what it holds.
 */
export class ServerSet {
  /** Every server, in configuration order. */
  readonly all: readonly Server[];
  /**
   * The servers that new traffic may go to: available primaries, or, when no primary
   * is available, the available backups.
   */
  readonly available: readonly Server[];
  /** Servers that traffic pinned by persistence may still reach (includes drain). */
  readonly pinnable: ReadonlySet<ServerId>;
  readonly byId: ReadonlyMap<ServerId, Server>;
  readonly status: ReadonlyMap<ServerId, ServerStatus>;
  /** Increases with every rebuild of the pool; balancers may use it to detect staleness. */
  readonly version: number;
  /** True when `available` holds backup servers because no primary is available. */
  readonly usingBackups: boolean;

  private constructor(
    all: readonly Server[],
    available: readonly Server[],
    pinnable: ReadonlySet<ServerId>,
    status: ReadonlyMap<ServerId, ServerStatus>,
    version: number,
    usingBackups: boolean,
  ) {
    this.all = all;
    this.available = available;
    this.pinnable = pinnable;
    this.status = status;
    this.version = version;
    this.usingBackups = usingBackups;
    const byId = new Map<ServerId, Server>();
    for (const s of all) byId.set(s.id, s);
    this.byId = byId;
  }

  static build(
    servers: readonly Server[],
    status: ReadonlyMap<ServerId, ServerStatus>,
    version: number,
    options: { panicThresholdPct?: number } = {},
  ): ServerSet {
    const all = Object.freeze([...servers]);
    const st = (s: Server): ServerStatus => status.get(s.id) ?? DEFAULT_STATUS;
    const primaries: Server[] = [];
    const backups: Server[] = [];
    const pinnable = new Set<ServerId>();
    for (const s of all) {
      const x = st(s);
      if (acceptsPinned(x.admin, x.op)) pinnable.add(s.id);
      if (!isAvailable(x.admin, x.op) || s.weight <= 0) continue;
      (s.backup ? backups : primaries).push(s);
    }
    let available: Server[] = primaries;
    let usingBackups = false;
    if (primaries.length === 0 && backups.length > 0) {
      available = backups;
      usingBackups = true;
    }
    const panic = options.panicThresholdPct ?? 0;
    if (panic > 0) {
      const nPrimary = all.filter((s) => !s.backup).length;
      if (nPrimary > 0 && (primaries.length * 100) / nPrimary < panic) {
        // Panic mode: too few are available; spread over every primary not in maint.
        available = all.filter((s) => !s.backup && st(s).admin !== 'maint' && s.weight > 0);
        usingBackups = false;
      }
    }
    return new ServerSet(all, Object.freeze(available), pinnable, new Map(status), version, usingBackups);
  }

  /** An empty set, for a pool with no servers. */
  static empty(): ServerSet {
    return ServerSet.build([], new Map(), 0);
  }
}

const DEFAULT_STATUS: ServerStatus = Object.freeze({ admin: 'ready', op: 'up' });
