// Wall-clock time of the simulator: 1,000,000 requests through 16 nodes, per algorithm, in one
// process (the requirement is under 30 s each on the project's 2-core machine). Runs from dist/:
// `npm run bench:sim` (builds first). Optional arguments: REQUESTS NODES ALGORITHMS, e.g.
// `node bench/sim.bench.mjs 2000000 16 lard,lard-r`.
import { lardAdmissionLimit } from '../dist/balancer/index.js';
import { resolveAlgorithm } from '../dist/sim/algorithms.js';
import { LARD_PAPER_MODEL } from '../dist/sim/model.js';
import { simulate } from '../dist/sim/simulate.js';
import { DEFAULT_SIZES, zipfTrace } from '../dist/sim/workload.js';

const requests = Number(process.argv[2] ?? 1_000_000);
const nodes = Number(process.argv[3] ?? 16);
const names = (process.argv[4] ?? 'wrr,hash-uri,lard,lard-r,leastconn,p2c,fastest').split(',');
const params = { low: 25, high: 65, bound: 1.25 };

let t0 = performance.now();
const trace = zipfTrace({ alpha: 1, files: 40_000, requests }, DEFAULT_SIZES, 1);
console.log(`workload: ${trace.description}: generated in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
console.log(`node ${process.version}, ${nodes} nodes, saturated, admission ${lardAdmissionLimit(nodes, 25, 65)}`);
console.log('algorithm        wall s   simulated s     req/s (simulated)   hit %');
for (const name of names) {
  t0 = performance.now();
  const r = simulate(trace, {
    nodes,
    algorithm: resolveAlgorithm(name, params),
    model: LARD_PAPER_MODEL,
    admit: lardAdmissionLimit(nodes, 25, 65),
    warmup: 0.1,
    seed: 1,
  });
  const wall = (performance.now() - t0) / 1000;
  console.log(
    `${name.padEnd(14)} ${wall.toFixed(2).padStart(8)} ${(r.simulatedMs / 1000).toFixed(1).padStart(13)} ${r.throughputRps.toFixed(0).padStart(17)} ${(r.hitRatio * 100).toFixed(1).padStart(7)}`,
  );
}
