/**
 * Fixtures for balancer tests and the pick benchmark: servers, sets, live counts and deps.
 * Pure (no `node:` import), like the rest of src/balancer.
 */
import { ManualClock } from '../core/clock.js';
import { SeededRng, type Rng } from '../core/rng.js';
import { ServerSet, type ServerStatus } from '../core/server-set.js';
import { serverId, type Server, type ServerId } from '../core/server.js';
import type { ActiveCounts, BalancerDeps } from './balancer.js';

export function makeServer(name: string, weight = 1, extra: { backup?: boolean; pool?: string } = {}): Server {
  return Object.freeze({
    id: serverId(extra.pool ?? 'p', name),
    name,
    host: '127.0.0.1',
    port: 9000,
    weight,
    backup: extra.backup ?? false,
    maxConnections: 0,
    meta: Object.freeze({}),
  });
}

/** Servers s0..s(n-1) with the given weights (default 1). */
export function makeServers(n: number, weight: (i: number) => number = () => 1): Server[] {
  return Array.from({ length: n }, (_, i) => makeServer(`s${i}`, weight(i)));
}

export function makeSet(servers: readonly Server[], status: ReadonlyMap<ServerId, ServerStatus> = new Map()): ServerSet {
  return ServerSet.build(servers, status, 1);
}

/**
 * In-flight counts held in a Map, as a pool would keep them. With `withTotal` it also offers the
 * optional `total()` (a running sum), as a pool may.
 */
export class MapCounts implements ActiveCounts {
  readonly map = new Map<ServerId, number>();
  private running = 0;
  readonly total?: () => number;
  constructor(opts: { withTotal?: boolean } = {}) {
    if (opts.withTotal === true) this.total = () => this.running;
  }
  active(id: ServerId): number {
    return this.map.get(id) ?? 0;
  }
  set(id: ServerId, n: number): void {
    this.running += n - this.active(id);
    this.map.set(id, n);
  }
  inc(id: ServerId): void {
    this.set(id, this.active(id) + 1);
  }
  dec(id: ServerId): void {
    this.set(id, Math.max(0, this.active(id) - 1));
  }
  sum(): number {
    let t = 0;
    for (const v of this.map.values()) t += v;
    return t;
  }
}

export interface TestDeps extends BalancerDeps {
  readonly counts: MapCounts;
  readonly clock: ManualClock;
}

export function makeDeps(
  opts: { rng?: Rng; seed?: number; weightOf?: (s: Server) => number; carry?: Map<string, unknown>; withTotal?: boolean } = {},
): TestDeps {
  return {
    rng: opts.rng ?? new SeededRng(opts.seed ?? 1),
    clock: new ManualClock(1_000),
    counts: new MapCounts({ withTotal: opts.withTotal ?? false }),
    carry: opts.carry ?? new Map(),
    weightOf: opts.weightOf,
  };
}

/** Fisher–Yates with an injected Rng: a shuffled copy. */
export function shuffled<T>(xs: readonly T[], rng: Rng): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
