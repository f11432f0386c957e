import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MemoryStore } from '../store/memory-store.js';
import { waitFor } from '../test-helpers/origins.js';
import { bucketsOf } from './buckets.js';
import { heartbeatKey } from './membership.js';
import { Ownership, ownershipTimeout } from './ownership.js';
import type { DistributedSpec } from './render-l2.js';

const SPEC: DistributedSpec = { prefix: 'vip', protocol: 'tcp', vip: '192.0.2.200', port: 80, device: 'eth0', clusterMac: '01:00:5e:7f:00:c8', buckets: 16, ownershipMs: ownershipTimeout(60_000, 180_000) };

/** What the kernel was given, and whether this node's heartbeat was in the store at that moment. */
interface Applied {
  readonly buckets: number[];
  readonly timeouts: number[];
  readonly keyThere: boolean;
}

function node(store: MemoryStore, name: string, nodes: readonly string[]) {
  const applied: Applied[] = [];
  const o = new Ownership({
    spec: SPEC,
    store,
    listener: 'vip',
    node: name,
    nodes,
    heartbeatMs: 60_000,
    deadAfterMs: 180_000,
    apply: async (script) => {
      const elems = /add element netdev portico vip_mine \{ (.*) \}/.exec(script)?.[1] ?? '';
      const parts = elems === '' ? [] : elems.split(', ');
      assert.match(script, /^flush set netdev portico vip_mine\n/);
      applied.push({
        buckets: parts.map((p) => Number(p.split(' ')[0])),
        timeouts: parts.map((p) => {
          const m = /timeout (\d+)(ms|s)\b/.exec(p);
          return m === null ? NaN : Number(m[1]) * (m[2] === 's' ? 1000 : 1);
        }),
        keyThere: (await store.get(heartbeatKey('vip', name))) !== undefined,
      });
    },
  });
  return { o, applied };
}

describe("a distributed node's buckets in its kernel", () => {
  it('written with the lease of its heartbeat as each element\'s timeout', async () => {
    const store = new MemoryStore();
    const { o, applied } = node(store, 'lb1', ['lb1', 'lb2']);
    try {
      const t0 = Date.now();
      await o.start();
      await waitFor(() => applied.length > 0, 5000, 'the first write');
      const a = applied.at(-1)!;
      assert.deepEqual(a.buckets, bucketsOf('lb1', ['lb1'], 16), 'alone, every bucket');
      // deadAfter minus a heartbeat, minus the time since the heartbeat was sent
      for (const t of a.timeouts) assert.ok(t <= 120_000 && t >= 120_000 - (Date.now() - t0) - 1, `timeout ${t}`);
      assert.deepEqual(o.state().mine, a.buckets);
    } finally {
      await o.stop();
    }
  });

  it('a node that gives up (its server failed) or stops empties its kernel set before it leaves the live set', async () => {
    const store = new MemoryStore();
    const { o, applied } = node(store, 'lb1', ['lb1', 'lb2']);
    const other = node(store, 'lb2', ['lb1', 'lb2']);
    try {
      await Promise.all([o.start(), other.o.start()]);
      await waitFor(() => applied.at(-1)?.buckets.length === bucketsOf('lb1', ['lb1', 'lb2'], 16).length, 5000, 'lb1 holding its share of two');
      let n = applied.length;
      await o.setWilling(false);
      assert.deepEqual(applied[n]!.buckets, [], 'the set emptied first');
      assert.equal(applied[n]!.keyThere, true, 'while the others still count this node');
      assert.equal(await store.get(heartbeatKey('vip', 'lb1')), undefined, 'then it left');
      await waitFor(() => other.applied.at(-1)?.buckets.length === 16, 5000, 'lb2 taking every bucket');
      await o.setWilling(true);
      await waitFor(() => applied.at(-1)!.buckets.length > 0 && other.applied.at(-1)!.buckets.length < 16, 5000, 'the two sharing again');
      n = applied.length;
      await o.stop();
      assert.deepEqual(applied.slice(n).map((a) => [a.buckets.length, a.keyThere]), [[0, true]], 'stop: the set emptied, then the key deleted');
      assert.equal(await store.get(heartbeatKey('vip', 'lb1')), undefined);
      assert.deepEqual(o.state().mine, []);
    } finally {
      await o.stop();
      await other.o.stop();
    }
  });
});
