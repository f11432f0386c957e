import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Balancer } from './balancer.js';
import { fastest } from './fastest.js';
import { makeDeps, makeServers, makeSet, type TestDeps } from './testing.js';

/** One request: pick, hold it for `latency(server)` ms of the manual clock, release with that latency. */
function serve(b: Balancer, deps: TestDeps, latency: (name: string) => number): string {
  const s = b.pick({})!;
  deps.counts.inc(s.id);
  const ms = latency(s.name);
  deps.clock.advance(ms);
  deps.counts.dec(s.id);
  b.onRelease!(s, { ok: true, latencyMs: ms });
  return s.name;
}

test('prefers the server with the lower latency, weighted by in-flight', () => {
  const servers = makeServers(2);
  const deps = makeDeps();
  const b = fastest.build(makeSet(servers), fastest.parseOptions({ choices: 0 }), deps);
  const lat = (n: string) => (n === 's0' ? 50 : 10);
  const names = Array.from({ length: 200 }, () => serve(b, deps, lat));
  assert.ok(names.slice(10).filter((n) => n === 's1').length > 180, 'mostly the fast server');
  // with requests in flight on the fast server, the slow one is worth it again: 10 × (4+1) > 50 × 1
  deps.counts.set(servers[1]!.id, 4);
  assert.equal(b.pick({}), servers[0]);
});

for (const choices of [2, 0]) test(`a server once slow is tried again within a bounded number of picks (never starved), choices ${choices}`, () => {
  const tauMs = 1000;
  const servers = makeServers(2);
  const deps = makeDeps();
  const b = fastest.build(makeSet(servers), fastest.parseOptions({ decay: `${tauMs}ms`, choices }), deps);
  let slow = true;
  const lat = (n: string) => (n === 's0' ? (slow ? 2000 : 10) : 20);
  for (let k = 0; k < 10; k++) serve(b, deps, lat); // s0 answered once in 2 s
  slow = false; // s0 recovers
  // s0's cost decays from 2000 toward 0 with tau; s1 costs about 20; each pick takes s1's 20 ms.
  // s0 is back once 2000·e^(−t/tau) < 20, t = tau·ln(100) ≈ 4.6 s ≈ 231 picks: allow 300.
  const bound = Math.ceil((tauMs * Math.log(2000 / 20)) / 20) + 70;
  let picksUntilRetry = -1;
  for (let k = 0; k < bound; k++) {
    if (serve(b, deps, lat) === 's0') {
      picksUntilRetry = k;
      break;
    }
  }
  assert.ok(picksUntilRetry >= 0, `s0 not retried within ${bound} picks`);
  // once it answered fast it takes traffic again
  const after = Array.from({ length: 100 }, () => serve(b, deps, lat));
  assert.ok(after.filter((n) => n === 's0').length > 50);
});

test('scores survive a rebuild through deps.carry', () => {
  const servers = makeServers(2);
  const deps = makeDeps();
  const b1 = fastest.build(makeSet(servers), fastest.parseOptions(undefined), deps);
  b1.onRelease!(servers[0]!, { ok: true, latencyMs: 500 });
  b1.onRelease!(servers[1]!, { ok: true, latencyMs: 5 });
  const b2 = fastest.build(makeSet(servers), fastest.parseOptions(undefined), deps);
  assert.equal(b2.pick({}), servers[1]);
});

test('weights scale the score', () => {
  const servers = makeServers(2, (i) => (i === 0 ? 10 : 1));
  const deps = makeDeps();
  const b = fastest.build(makeSet(servers), fastest.parseOptions(undefined), deps);
  b.onRelease!(servers[0]!, { ok: true, latencyMs: 50 }); // 50 / 10 = 5 per weight
  b.onRelease!(servers[1]!, { ok: true, latencyMs: 10 }); // 10 / 1
  assert.equal(b.pick({}), servers[0]);
});

test('P2C over many servers: a recovered server comes back, a slow one gets little', () => {
  const servers = makeServers(6);
  const deps = makeDeps({ seed: 9 });
  const b = fastest.build(makeSet(servers), fastest.parseOptions({ decay: '1s' }), deps);
  let slow = true;
  const lat = (n: string) => (n === 's3' && slow ? 1000 : 10);
  const first = Array.from({ length: 2000 }, () => serve(b, deps, lat));
  assert.ok(first.filter((n) => n === 's3').length < 40, 'the slow server gets little traffic');
  slow = false;
  const later = Array.from({ length: 3000 }, () => serve(b, deps, lat));
  // its cost decays below the others' within tau·ln(100) ≈ 4.6 s = 460 picks of 10 ms, then it takes its share
  assert.ok(later.slice(1000).filter((n) => n === 's3').length > 2000 / 6 / 2, 'recovered server back in rotation');
});

test('fastest options: clear errors', () => {
  assert.throws(() => fastest.parseOptions({ choices: 1.5 }), /choices: must be an integer/);
  assert.throws(() => fastest.parseOptions({ decay: -1 }), /decay: must be between/);
});
