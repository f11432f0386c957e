import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SeededRng } from '../core/rng.js';
import type { ServerStatus } from '../core/server-set.js';
import type { Server, ServerId } from '../core/server.js';
import type { Balancer } from './balancer.js';
import { boundedLoadCap, hash, type HashMethod } from './hash.js';
import { buildMaglevTable, populateMaglev } from './maglev.js';
import { BalancerOptionsError } from './options.js';
import { makeDeps, makeServer, makeServers, makeSet, shuffled } from './testing.js';

const METHODS: HashMethod[] = ['maglev', 'ring', 'jump'];
const keys = (n: number, prefix = 'key'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const build = (servers: readonly Server[], raw: object, status?: Map<ServerId, ServerStatus>, deps = makeDeps()): Balancer =>
  hash.build(makeSet(servers, status), hash.parseOptions({ key: 'uri', ...raw }), deps);

test('maglev reproduces the paper Table 1 (golden vector, offsets and skips given)', () => {
  // M = 7; B1 (3,4), B2 (0,2), B3 (3,1)
  assert.deepEqual(Array.from(populateMaglev([3, 0, 3], [4, 2, 1], 7)), [1, 0, 1, 0, 2, 2, 0]);
  // B2 removed: only B2's entries and index 6 (B1 → B3) change
  assert.deepEqual(Array.from(populateMaglev([3, 3], [4, 1], 7)), [0, 0, 0, 0, 1, 1, 1]);
});

test('weighted maglev: A = 1, B = 2 at M = 65537 give 21846 and 43691 entries (Envoy)', () => {
  const table = buildMaglevTable(['A', 'B'], [1, 2], 65537);
  const counts = [0, 0];
  for (const e of table) counts[e]!++;
  assert.deepEqual(counts, [21846, 43691]);
});

test('maglev balance: M = 65537, N = 100: each server ⌊M/N⌋ or ⌈M/N⌉ entries, max/avg within 1%', () => {
  const names = Array.from({ length: 100 }, (_, i) => `server-${i}`);
  const table = buildMaglevTable(names, new Float64Array(100).fill(1), 65537);
  const counts = new Array<number>(100).fill(0);
  for (const e of table) counts[e]!++;
  assert.ok(Math.min(...counts) >= 655 && Math.max(...counts) <= 656, `${Math.min(...counts)}..${Math.max(...counts)}`);
  assert.ok(Math.max(...counts) / (65537 / 100) <= 1.01);
});

for (const method of METHODS) {
  test(`${method}: one of N servers leaving moves about 1/N of the keys`, () => {
    const N = 20;
    const K = 20_000;
    const servers = makeServers(N);
    const before = build(servers, { method });
    const gone = servers[7]!;
    const after = build(servers, { method }, new Map([[gone.id, { admin: 'ready', op: 'down' }]]));
    let moved = 0;
    let ownedByGone = 0;
    let othersMoved = 0;
    for (const key of keys(K)) {
      const a = before.pick({ hashKey: key })!;
      const b = after.pick({ hashKey: key })!;
      if (a !== b) moved++;
      if (a === gone) ownedByGone++;
      else if (a !== b) othersMoved++;
    }
    assert.ok(ownedByGone / K > 0.5 / N && ownedByGone / K < 1.5 / N, `share of the leaving server ${ownedByGone / K}`);
    // ring and jump move only the leaving server's keys; Maglev a little more (balance first)
    if (method === 'maglev') assert.ok(othersMoved / K < 0.25 / N, `others moved ${othersMoved / K}`);
    else assert.equal(othersMoved, 0);
    assert.ok(moved / K < 1.5 / N, `moved ${moved / K}`);
  });

  test(`${method}: same keys give same servers on independently built balancers (shuffled input)`, () => {
    const rng = new SeededRng(5);
    const weights = [1, 3, 2, 1, 5, 1, 1, 2];
    const mk = () => shuffled(weights.map((w, i) => makeServer(`web-${i}`, w)), rng);
    const a = build(mk(), { method });
    const b = build(mk(), { method });
    const avoidName = 'web-4';
    for (const key of keys(5000)) {
      assert.equal(a.pick({ hashKey: key })!.name, b.pick({ hashKey: key })!.name);
      // the walk past an avoided server is the same on every node too
      const avA = new Set<ServerId>([`p/${avoidName}` as ServerId]);
      const avB = new Set<ServerId>([`p/${avoidName}` as ServerId]);
      assert.equal(a.pick({ hashKey: key, avoid: avA })!.name, b.pick({ hashKey: key, avoid: avB })!.name);
    }
  });

  test(`${method}: weights shift the share of keys`, () => {
    const servers = [makeServer('a', 1), makeServer('b', 3)];
    const bal = build(servers, { method });
    let onB = 0;
    for (const key of keys(20_000)) if (bal.pick({ hashKey: key }) === servers[1]) onB++;
    assert.ok(Math.abs(onB / 20_000 - 0.75) < 0.03, `share of b ${onB / 20_000}`);
  });

  test(`${method}: bounded load never lets a server exceed its cap`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 8 }),
        fc.constantFrom(1.1, 1.25, 2),
        fc.boolean(), // counts.total() offered by the pool, or summed by the balancer
        fc.array(fc.record({ key: fc.constantFrom('hot', 'hot', 'hot', 'a', 'b', 'c'), release: fc.nat(5) }), { minLength: 1, maxLength: 200 }),
        (weights, c, withTotal, steps) => {
          const servers = makeServers(weights.length, (i) => weights[i]!);
          const deps = makeDeps({ withTotal });
          const bal = build(servers, { method, boundedLoad: c }, undefined, deps);
          const W = weights.reduce((x, y) => x + y, 0);
          const inFlight: Server[] = [];
          for (const step of steps) {
            const m = deps.counts.sum();
            const got = bal.pick({ hashKey: step.key })!;
            const w = weights[servers.indexOf(got)]!;
            deps.counts.inc(got.id);
            assert.ok(deps.counts.active(got.id) <= boundedLoadCap(c, m, w, W), `${got.name} over its cap`);
            inFlight.push(got);
            for (let r = 0; r < step.release && inFlight.length > 0; r++) deps.counts.dec(inFlight.shift()!.id);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test(`${method}: avoided server passes the key to another; all avoided gives undefined`, () => {
    const servers = makeServers(5);
    const bal = build(servers, { method });
    for (const key of keys(200)) {
      const first = bal.pick({ hashKey: key })!;
      const second = bal.pick({ hashKey: key, avoid: new Set([first.id]) })!;
      assert.notEqual(second, first);
      assert.equal(bal.pick({ hashKey: key, avoid: new Set(servers.map((s) => s.id)) }), undefined);
    }
  });

  test(`${method}: a missing key falls back to round-robin`, () => {
    const servers = makeServers(3);
    const bal = build(servers, { method });
    assert.deepEqual(Array.from({ length: 6 }, () => bal.pick({})!.name), ['s0', 's1', 's2', 's0', 's1', 's2']);
  });
}

test('jump: a server added last (by name) takes about 1/(N+1) of the keys, from every other', () => {
  const servers = makeServers(9); // s0..s8
  const a = build(servers, { method: 'jump' });
  const b = build([...servers, makeServer('s9')], { method: 'jump' });
  let moved = 0;
  for (const key of keys(20_000)) {
    const x = a.pick({ hashKey: key })!;
    const y = b.pick({ hashKey: key })!;
    if (x !== y) {
      moved++;
      assert.equal(y.name, 's9');
    }
  }
  assert.ok(Math.abs(moved / 20_000 - 0.1) < 0.01, `moved ${moved / 20_000}`);
});

test('hash options: defaults, and clear errors', () => {
  const o = hash.parseOptions({ key: 'header:X-User' });
  assert.equal(o.method, 'maglev');
  assert.equal(o.tableSize, 65537);
  assert.deepEqual(o.keySpec, { kind: 'header', name: 'x-user' });
  assert.equal(o.boundedLoad, undefined);
  const bad: [unknown, RegExp][] = [
    [{}, /key: is required/],
    [{ key: 'ip' }, /key: must be source-ip, uri/],
    [{ key: 'uri', method: 'rendezvous' }, /method: must be one of maglev, ring, jump/],
    [{ key: 'uri', tableSize: 65536 }, /tableSize: must be a prime/],
    [{ key: 'uri', method: 'ring', tableSize: 7 }, /tableSize: applies only to method maglev/],
    [{ key: 'uri', boundedLoad: 1 }, /boundedLoad: must be greater than 1/],
    [{ key: 'uri', bounded: 1.2 }, /bounded: unknown option/],
    ['maglev', /options must be an object/],
  ];
  for (const [raw, re] of bad) {
    assert.throws(() => hash.parseOptions(raw), (e: unknown) => e instanceof BalancerOptionsError && re.test(e.message));
  }
});
