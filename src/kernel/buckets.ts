import { murmur3, SEED_KEY } from '../balancer/hash-fn.js';

/**
 * Bucket ownership of the `distributed` forwarding mode (SPEC §10): the flows are hashed by the
 * kernel into `buckets` buckets, and each bucket belongs to exactly one live node. Every node
 * computes the same table from the same live set, with no coordinator, by rendezvous (highest
 * random weight) hashing of the bucket number with each node's name through Portico's MurmurHash3:
 * the owner of bucket b is the node whose murmur3("b/node") is highest (ties, which need equal
 * 32-bit hashes, go to the smaller name). So a node that leaves gives up exactly its own buckets,
 * each to whichever survivor ranks next for it, and a node that joins takes only buckets from the
 * others; the buckets of nodes not involved never move.
 *
 * Pure; the order and repetitions of `live` do not matter.
 */
export function bucketOwners(live: readonly string[], buckets: number): (string | undefined)[] {
  if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError(`buckets must be a positive integer, got ${buckets}`);
  const nodes = [...new Set(live)].sort();
  const owners = new Array<string | undefined>(buckets);
  for (let b = 0; b < buckets; b++) {
    let best: string | undefined;
    let bestScore = -1;
    for (const n of nodes) {
      const score = murmur3(`${b}/${n}`, SEED_KEY);
      // nodes are sorted, so on equal scores the first (smaller) name stays
      if (score > bestScore) {
        best = n;
        bestScore = score;
      }
    }
    owners[b] = best;
  }
  return owners;
}

/** The buckets `node` owns among `live` (ascending); empty when it is not live. */
export function bucketsOf(node: string, live: readonly string[], buckets: number): number[] {
  if (!live.includes(node)) return [];
  const out: number[] = [];
  const owners = bucketOwners(live, buckets);
  for (let b = 0; b < owners.length; b++) if (owners[b] === node) out.push(b);
  return out;
}
