import type { Clock } from '../../core/clock.js';
import type { PoolConfig, TcpListenerConfig } from '../../config/types.js';
import { StickTable } from '../../persistence/stick-table.js';
import type { StateStore } from '../../store/state-store.js';
import { hostMatcher } from '../../tls/host-match.js';
import { UpstreamTls } from '../../tls/upstream-tls.js';
import type { UpstreamPool } from '../upstream-pool.js';
import { AccessList } from '../../net/access.js';
import { TcpListener, type TcpListenerSettings } from './tcp-listener.js';
import type { TcpObserver } from '../../observability/records.js';
import type { SessionIdTable, TcpRoute } from './tcp-runtime.js';

export interface TcpBuildDeps {
  readonly handles: ReadonlyMap<string, UpstreamPool>;
  readonly observer?: TcpObserver | undefined;
  /** Per-pool L4 state shared by every tcp listener of one Portico. */
  readonly shared: TcpShared;
}

interface PoolL4 {
  readonly config: PoolConfig;
  /** The pool's algorithm hashes a key of each request (`hash`): a connection gives it the client address. */
  readonly hashes: boolean;
  /** `tls` and `persistence` as built, to keep the built state across reloads while unchanged. */
  readonly spec: string;
  sessions: SessionIdTable | undefined;
  tls: UpstreamTls | undefined;
}

/** Where the session-id tables keep their entries besides this process. */
export interface TcpSharedStore {
  readonly store: StateStore;
  /** The store is shared with other nodes or workers: a local miss asks it (up to its timeout). */
  readonly shared: boolean;
  readonly onStoreError?: ((err: unknown) => void) | undefined;
}

/**
 * What the tcp listeners of one Portico share per pool: the pool's configuration (as last
 * defined: a reload defines every pool again before it builds listeners), one session-id
 * table and one TLS session cache toward its servers. Both survive a reload while the pool's
 * `persistence` and `tls` sections are unchanged. With a shared store (`cluster.store`, or the
 * primary's store under `cluster.workers`) the session-id table is written through to it, and
 * an id this process has not seen is looked up there: a session made through one node is
 * resumed through another.
 */
export class TcpShared {
  private readonly pools = new Map<string, PoolL4>();
  constructor(
    private readonly clock: Clock,
    private readonly store?: TcpSharedStore | undefined,
  ) {}

  /**
   * Record a pool's configuration (called whenever its handle is built); `hashes`: its algorithm
   * hashes a request key (BalancerFactory.requestKey).
   */
  define(pc: PoolConfig, hashes = false): void {
    const spec = JSON.stringify([pc.tls, pc.persistence]);
    const was = this.pools.get(pc.name);
    if (was !== undefined && was.spec === spec) {
      this.pools.set(pc.name, { ...was, config: pc, hashes });
      return;
    }
    this.pools.set(pc.name, { config: pc, hashes, spec, sessions: undefined, tls: undefined });
  }

  private of(name: string): PoolL4 {
    const p = this.pools.get(name);
    if (p === undefined) throw new Error(`pool ${name} is not defined`);
    return p;
  }

  /** Whether the pool's algorithm hashes a request key: a connection gives it the client address. */
  hashes(name: string): boolean {
    return this.of(name).hashes;
  }

  config(name: string): PoolConfig {
    return this.of(name).config;
  }

  sessionTable(name: string): SessionIdTable | undefined {
    const p = this.of(name);
    const ps = p.config.persistence;
    if (ps === false || ps.type !== 'tls-session') return undefined;
    p.sessions ??= new StickTable({
      namespace: `stick:${name}:tls-session:`,
      ttlMs: ps.ttl,
      size: ps.size,
      clock: this.clock,
      store: this.store?.store,
      readThrough: this.store?.shared === true,
      onStoreError: this.store?.onStoreError,
    });
    return p.sessions;
  }

  upstreamTls(name: string): UpstreamTls | undefined {
    const p = this.of(name);
    if (p.config.tls === false) return undefined;
    p.tls ??= UpstreamTls.fromConfig(name, p.config.tls);
    return p.tls;
  }
}

export function tcpListenerSettings(lc: TcpListenerConfig, deps: TcpBuildDeps): TcpListenerSettings {
  const route = (name: string, pool: string, sni: readonly string[] | undefined): TcpRoute => {
    const handle = deps.handles.get(pool);
    if (handle === undefined) throw new Error(`listener ${lc.name}: pool ${pool} does not exist`);
    return {
      name,
      sni: sni === undefined ? undefined : hostMatcher(sni),
      pool: handle,
      tls: deps.shared.upstreamTls(pool),
      sessions: lc.inspect === 'tls' ? deps.shared.sessionTable(pool) : undefined,
      hashBySource: deps.shared.hashes(pool),
    };
  };
  const routes =
    lc.routes === undefined
      ? [route(lc.name, lc.pool!, undefined)]
      : lc.routes.map((r, i) => route(r.name ?? `${lc.name}#${i}`, r.pool, r.match?.sni));
  return {
    name: lc.name,
    host: lc.listen.host,
    port: lc.listen.port,
    routes,
    inspectTls: lc.inspect === 'tls',
    inspectTimeoutMs: lc.inspectTimeout,
    inspectMaxBytes: lc.inspectMaxBytes,
    sendProxy: lc.sendProxy,
    acceptProxy: lc.acceptProxy,
    maxConnections: lc.maxConnections,
    relayBuffer: lc.relayBuffer,
    access: AccessList.of(lc.access),
  };
}

export function buildTcpListener(lc: TcpListenerConfig, deps: TcpBuildDeps): TcpListener {
  return new TcpListener(tcpListenerSettings(lc, deps), deps.observer);
}

/** Give a running tcp listener new settings (reload). */
export function updateTcpListener(l: TcpListener, lc: TcpListenerConfig, deps: TcpBuildDeps): void {
  l.update(tcpListenerSettings(lc, deps));
}
