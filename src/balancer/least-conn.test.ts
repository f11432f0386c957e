import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ServerId } from '../core/server.js';
import { leastConn } from './least-conn.js';
import { makeDeps, makeServers, makeSet } from './testing.js';

test('prefers the lowest weighted load (active / weight), avoid-set excluded', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ w: fc.integer({ min: 1, max: 10 }), a: fc.integer({ min: 0, max: 50 }), avoid: fc.boolean() }), { minLength: 1, maxLength: 12 }),
      (specs) => {
        const servers = makeServers(specs.length, (i) => specs[i]!.w);
        const deps = makeDeps();
        servers.forEach((s, i) => deps.counts.set(s.id, specs[i]!.a));
        const avoid = new Set<ServerId>(servers.filter((_, i) => specs[i]!.avoid).map((s) => s.id));
        const got = leastConn.build(makeSet(servers), undefined, deps).pick({ avoid });
        const open = specs.map((s, i) => ({ ...s, i })).filter((s) => !s.avoid);
        if (open.length === 0) return got === undefined;
        const g = specs[servers.indexOf(got!)]!;
        assert.ok(!g.avoid);
        for (const o of open) assert.ok(g.a * o.w <= o.a * g.w, `picked ${g.a}/${g.w} over ${o.a}/${o.w}`);
        return true;
      },
    ),
  );
});

test('equal loads take turns (round-robin among equals)', () => {
  const servers = makeServers(3);
  const b = leastConn.build(makeSet(servers), undefined, makeDeps());
  assert.deepEqual(Array.from({ length: 6 }, () => b.pick({})!.name), ['s0', 's1', 's2', 's0', 's1', 's2']);
});

test('a server of weight 2 takes twice the connections of weight 1 under load', () => {
  const servers = makeServers(2, (i) => (i === 0 ? 2 : 1));
  const deps = makeDeps();
  const b = leastConn.build(makeSet(servers), undefined, deps);
  for (let k = 0; k < 300; k++) deps.counts.inc(b.pick({})!.id);
  assert.deepEqual([deps.counts.active(servers[0]!.id), deps.counts.active(servers[1]!.id)], [200, 100]);
});
