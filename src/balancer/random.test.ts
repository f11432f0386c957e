import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServerId } from '../core/server.js';
import { weightedRandom } from './random.js';
import { makeDeps, makeServers, makeSet } from './testing.js';

test('picks in proportion to weight', () => {
  const w = [1, 2, 3, 4];
  const servers = makeServers(4, (i) => w[i]!);
  const b = weightedRandom.build(makeSet(servers), undefined, makeDeps({ seed: 11 }));
  const counts = [0, 0, 0, 0];
  const N = 100_000;
  for (let k = 0; k < N; k++) counts[servers.indexOf(b.pick({})!)]!++;
  counts.forEach((c, i) => assert.ok(Math.abs(c / N - w[i]! / 10) < 0.01, `server ${i}: ${c / N}`));
});

test('avoid-set honoured even when the heaviest server is avoided', () => {
  const servers = makeServers(3, (i) => (i === 0 ? 100 : 1));
  const b = weightedRandom.build(makeSet(servers), undefined, makeDeps({ seed: 2 }));
  const avoid = new Set<ServerId>([servers[0]!.id]);
  for (let k = 0; k < 1000; k++) assert.notEqual(b.pick({ avoid }), servers[0]);
});
