import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bucketOwners, bucketsOf } from './buckets.js';

const nodeName = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const nodeSet = fc.uniqueArray(nodeName, { minLength: 1, maxLength: 7 });
const bucketCount = fc.integer({ min: 1, max: 600 });

describe('distributed bucket ownership (rendezvous over node names)', () => {
  it('the same live set gives the same table on every node, whatever order each node lists it in', () => {
    fc.assert(
      fc.property(nodeSet, bucketCount, fc.func(fc.integer()), (nodes, b, key) => {
        const shuffled = [...nodes].sort((x, y) => key(x) - key(y) || (x < y ? -1 : 1));
        assert.deepEqual(bucketOwners(shuffled, b), bucketOwners(nodes, b));
        assert.deepEqual(bucketOwners([...nodes, ...nodes], b), bucketOwners(nodes, b));
      }),
    );
  });

  it('every bucket has exactly one owner among the live nodes', () => {
    fc.assert(
      fc.property(nodeSet, bucketCount, (nodes, b) => {
        const per = nodes.map((n) => bucketsOf(n, nodes, b));
        const all = per.flat().sort((x, y) => x - y);
        assert.deepEqual(all, Array.from({ length: b }, (_, i) => i));
      }),
    );
  });

  it('a node leaving moves only its own buckets; one joining takes only buckets, never reshuffles the rest', () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeName, { minLength: 2, maxLength: 7 }), bucketCount, fc.nat(), (nodes, b, k) => {
        const gone = nodes[k % nodes.length]!;
        const before = bucketOwners(nodes, b);
        const after = bucketOwners(
          nodes.filter((n) => n !== gone),
          b,
        );
        for (let i = 0; i < b; i++) {
          if (before[i] === gone) assert.notEqual(after[i], gone);
          else assert.equal(after[i], before[i], `bucket ${i} moved from ${before[i]} to ${after[i]} though ${gone} left`);
        }
        // and back: the node rejoining takes exactly what it had
        assert.deepEqual(bucketOwners([...nodes.filter((n) => n !== gone), gone], b), before);
      }),
    );
  });

  it('spreads the buckets evenly (1024 buckets, 3 nodes: each within 10% of a third)', () => {
    const nodes = ['lb1', 'lb2', 'lb3'];
    for (const n of nodes) {
      const share = bucketsOf(n, nodes, 1024).length;
      assert.ok(Math.abs(share - 1024 / 3) < 1024 / 30, `${n} owns ${share} of 1024`);
    }
  });

  it('is pinned: a change of hash or scheme remaps every cluster, so its output is fixed here', () => {
    const pinned = ['lb2', 'lb1', 'lb1', 'lb2', 'lb2', 'lb3', 'lb1', 'lb3', 'lb1', 'lb1', 'lb2', 'lb1'];
    assert.deepEqual(bucketOwners(['lb1', 'lb2', 'lb3'], 12), pinned);
    assert.deepEqual(bucketOwners(['lb3', 'lb1', 'lb2'], 12), pinned);
    assert.deepEqual(bucketsOf('x', ['a', 'b'], 8), []);
    assert.throws(() => bucketOwners(['a'], 0), /positive integer/);
  });
});
