import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leastTraffic, TrafficMeter } from './least-traffic.js';
import { makeDeps, makeServers, makeSet } from './testing.js';

test('the decayed meter gives bytes per second', () => {
  const m = new TrafficMeter(0);
  // 1000 bytes every 10 ms for 100 s with tau = 10 s: about 100 kB/s
  for (let t = 10; t <= 100_000; t += 10) m.add(1000, t, 10_000);
  assert.ok(Math.abs(m.bytesPerSec(100_000, 10_000) - 100_000) < 1000, `${m.bytesPerSec(100_000, 10_000)}`);
  // 10 s later with no traffic: decayed by e
  assert.ok(Math.abs(m.bytesPerSec(110_000, 10_000) - 100_000 / Math.E) < 1000);
});

test('picks the server with the fewest bytes/s per unit of weight', () => {
  const servers = makeServers(3, (i) => [1, 1, 4][i]!);
  const deps = makeDeps();
  const b = leastTraffic.build(makeSet(servers), leastTraffic.parseOptions(undefined), deps);
  b.onRelease!(servers[0]!, { ok: true, bytes: 1000 });
  b.onRelease!(servers[1]!, { ok: true, bytes: 2000 });
  b.onRelease!(servers[2]!, { ok: true, bytes: 3000 }); // 750 per weight
  assert.equal(b.pick({}), servers[2]);
  b.onRelease!(servers[2]!, { ok: true, bytes: 2000 }); // 1250 per weight
  assert.equal(b.pick({}), servers[0]);
  assert.equal(b.pick({ avoid: new Set([servers[0]!.id]) }), servers[2]);
});

test('idle servers take turns; rates decay with the clock; state survives rebuilds', () => {
  const servers = makeServers(2);
  const deps = makeDeps();
  const opts = leastTraffic.parseOptions({ decay: '1s' });
  const b = leastTraffic.build(makeSet(servers), opts, deps);
  assert.deepEqual([b.pick({})!.name, b.pick({})!.name, b.pick({})!.name], ['s0', 's1', 's0']);
  b.onRelease!(servers[0]!, { ok: true, bytes: 1_000_000 });
  deps.clock.advance(5000);
  b.onRelease!(servers[1]!, { ok: true, bytes: 100_000 });
  const rebuilt = leastTraffic.build(makeSet(servers), opts, deps);
  // s0: 1e6·e^-5 ≈ 6738 < s1: 1e5
  assert.equal(rebuilt.pick({}), servers[0]);
});
