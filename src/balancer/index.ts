/**
 * Every balancing algorithm, registered by the name used in configuration (`balance:`).
 * Import this module (not the registry alone) to have them all available.
 */
import { fastest } from './fastest.js';
import { hash } from './hash.js';
import { lard } from './lard.js';
import { leastConn } from './least-conn.js';
import { leastTraffic } from './least-traffic.js';
import { powerOfTwoChoices } from './p2c.js';
import { weightedRandom } from './random.js';
import { registerBalancer } from './registry.js';
import { roundRobin } from './round-robin.js';

export const balancers = [roundRobin, leastConn, leastTraffic, fastest, powerOfTwoChoices, weightedRandom, hash, lard] as const;
for (const f of balancers) registerBalancer(f);

export { balancerNames, getBalancer, registerBalancer } from './registry.js';
export type { ActiveCounts, Balancer, BalancerDeps, BalancerFactory, PickContext, ReleaseOutcome } from './balancer.js';
export { BalancerOptionsError } from './options.js';
export { fastest, type FastestOptions } from './fastest.js';
export { hash, boundedLoadCap, parseHashOptions, type HashKeySpec, type HashMethod, type HashOptions } from './hash.js';
export { lard, lardAdmissionLimit, parseLardOptions, DEFAULT_LARD_MAX_TARGETS, type LardOptions } from './lard.js';
export { leastConn } from './least-conn.js';
export { leastTraffic, type LeastTrafficOptions } from './least-traffic.js';
export { powerOfTwoChoices } from './p2c.js';
export { weightedRandom } from './random.js';
export { roundRobin, smoothWrrSequence } from './round-robin.js';
export { populateMaglev, buildMaglevTable } from './maglev.js';
export { buildRing } from './ring-hash.js';
export { jumpHash, murmur3 } from './hash-fn.js';
