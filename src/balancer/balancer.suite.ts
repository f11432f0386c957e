/**
 * Conformance suite: the contract every BalancerFactory keeps, as property tests (fast-check).
 * It returns named cases; balancer.test.ts runs them under node:test for every registered factory.
 * (No `node:` import here: the suite is pure like the rest of src/balancer.)
 *
 *  - a pick is always one of `set.available`, never a server of effective weight 0;
 *  - the avoid-set is honoured whenever a server outside it is available, and a pick is made then;
 *  - with nothing available (empty set, or every server avoided) the pick is `undefined`.
 */
import fc from 'fast-check';
import type { AdminState, OpState, ServerId } from '../core/server.js';
import type { ServerStatus } from '../core/server-set.js';
import type { BalancerFactory, PickContext } from './balancer.js';
import { makeDeps, makeServer, makeSet } from './testing.js';

export interface ConformanceCase {
  readonly name: string;
  run(): void;
}

/** Option variants to run the suite with, per algorithm; others run with parseOptions(undefined). */
export const SUITE_OPTIONS: Readonly<Record<string, readonly unknown[]>> = {
  hash: [
    { key: 'source-ip', method: 'maglev', tableSize: 251 },
    { key: 'uri', method: 'ring', vnodes: 16 },
    { key: 'header:x-user', method: 'jump' },
    { key: 'source-ip', method: 'maglev', tableSize: 251, boundedLoad: 1.25 },
    { key: 'source-ip', method: 'ring', vnodes: 8, boundedLoad: 1.5 },
    { key: 'source-ip', method: 'jump', boundedLoad: 1.1 },
  ],
  fastest: [undefined, { choices: 0 }, { choices: 3 }],
  lard: [{ low: 2, high: 4 }, { low: 2, high: 4, replicate: true, shrinkAfter: 5 }, { maxTargets: 3 }],
};

function fail(msg: string): never {
  throw new Error(msg);
}

const serverSpec = fc.record({
  weight: fc.integer({ min: 0, max: 5 }),
  zeroEffective: fc.boolean(), // weightOf gives 0
  backup: fc.boolean(),
  admin: fc.constantFrom<AdminState>('ready', 'ready', 'ready', 'drain', 'maint'),
  op: fc.constantFrom<OpState>('up', 'up', 'up', 'down', 'starting'),
  active: fc.integer({ min: 0, max: 8 }),
});

const pickSpec = fc.record({
  key: fc.option(fc.constantFrom('a', 'b', '10.0.0.1', '10.0.0.2', '/img/x.png', '/', 'ü', ''), { nil: undefined }),
  avoidMask: fc.integer({ min: 0, max: 0xffff }),
  avoidAll: fc.boolean(),
  release: fc.option(fc.record({ latencyMs: fc.integer({ min: 0, max: 3000 }), bytes: fc.integer({ min: 0, max: 1e6 }), ok: fc.boolean() }), { nil: undefined }),
  advanceMs: fc.integer({ min: 0, max: 5000 }),
});

const world = fc.record({
  servers: fc.array(serverSpec, { minLength: 0, maxLength: 12 }),
  picks: fc.array(pickSpec, { minLength: 1, maxLength: 30 }),
  seed: fc.integer(),
});

export function conformanceCases(factory: BalancerFactory<unknown>, rawOptions: unknown): ConformanceCase[] {
  const options = factory.parseOptions(rawOptions);
  return [
    {
      name: 'returns undefined for an empty set',
      run() {
        const b = factory.build(makeSet([]), options, makeDeps());
        for (const ctx of [{}, { hashKey: 'k', path: '/p' }, { avoid: new Set<ServerId>() }] as PickContext[]) {
          if (b.pick(ctx) !== undefined) fail('picked from an empty set');
        }
      },
    },
    {
      name: 'picks stay in set.available, honour avoid, never weight 0',
      run() {
        fc.assert(
          fc.property(world, ({ servers: specs, picks, seed }) => {
            const servers = specs.map((s, i) => makeServer(`n${i}`, s.weight, { backup: s.backup }));
            const status = new Map<ServerId, ServerStatus>();
            specs.forEach((s, i) => status.set(servers[i]!.id, { admin: s.admin, op: s.op }));
            const zero = new Set(servers.filter((_, i) => specs[i]!.zeroEffective).map((s) => s.id));
            const set = makeSet(servers, status);
            const deps = makeDeps({ seed, weightOf: (s) => (zero.has(s.id) ? 0 : s.weight) });
            specs.forEach((s, i) => deps.counts.set(servers[i]!.id, s.active));
            const b = factory.build(set, options, deps);
            const eligible = set.available.filter((s) => s.weight > 0 && !zero.has(s.id));
            for (const p of picks) {
              const avoid = new Set<ServerId>();
              servers.forEach((s, i) => {
                if (p.avoidAll || (p.avoidMask >> i) & 1) avoid.add(s.id);
              });
              const ctx: PickContext = { hashKey: p.key, path: p.key, avoid };
              const got = b.pick(ctx);
              const open = eligible.filter((s) => !avoid.has(s.id));
              if (open.length === 0) {
                if (got !== undefined) fail(`picked ${got.name} with every available server avoided`);
                continue;
              }
              if (got === undefined) fail(`no pick although ${open.map((s) => s.name).join(',')} are available and not avoided`);
              if (!set.available.includes(got)) fail(`picked ${got.name}, not in set.available`);
              if (zero.has(got.id) || got.weight <= 0) fail(`picked ${got.name} of weight 0`);
              if (avoid.has(got.id)) fail(`picked avoided ${got.name}`);
              deps.counts.inc(got.id);
              b.onAcquire?.(got);
              deps.clock.advance(p.advanceMs);
              if (p.release !== undefined) {
                deps.counts.dec(got.id);
                b.onRelease?.(got, p.release);
              }
            }
            // with no avoid-set at all, a pick is always made when something is eligible
            const free = b.pick({ hashKey: 'x', path: '/x' });
            if ((free === undefined) !== (eligible.length === 0)) fail('pick without avoid-set disagrees with availability');
            return true;
          }),
          { numRuns: 300 },
        );
      },
    },
    {
      name: 'survives rebuilds sharing carry (state kept across snapshots)',
      run() {
        fc.assert(
          fc.property(fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 8 }), fc.integer(), (weights, seed) => {
            const deps = makeDeps({ seed });
            const servers = weights.map((w, i) => makeServer(`r${i}`, w));
            for (let round = 0; round < 3; round++) {
              const subset = servers.filter((_, i) => (i + round) % 3 !== 0 || servers.length === 1);
              const set = makeSet(subset);
              const b = factory.build(set, options, deps);
              for (let k = 0; k < 10; k++) {
                const got = b.pick({ hashKey: `k${k}`, path: `/p${k % 3}` });
                const any = set.available.length > 0;
                if (any !== (got !== undefined)) fail('pick after rebuild disagrees with availability');
                if (got !== undefined) {
                  if (!set.available.includes(got)) fail(`picked ${got.name} outside the rebuilt set`);
                  b.onRelease?.(got, { ok: true, latencyMs: 5 + k, bytes: 100 * k });
                }
                deps.clock.advance(100);
              }
            }
            return true;
          }),
          { numRuns: 100 },
        );
      },
    },
  ];
}

