import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { estimateService, poolLaws, type ServiceSample } from '../observability/op-laws.js';
import { resolveAlgorithm } from '../sim/algorithms.js';
import { LARD_PAPER_MODEL, type ModelParams } from '../sim/model.js';
import { simulate, type SimResult } from '../sim/simulate.js';
import { TraceBuilder, type Trace } from '../sim/trace.js';

// The operational-laws estimates checked against the simulator (`portico simulate`), which
// knows the true service time of its model servers. Each node has one FIFO CPU: one slot.
// A request sends no body, so it costs connectMs + teardownMs of CPU and nothing else.
const MODEL: ModelParams = { ...LARD_PAPER_MODEL, connectMs: 1, teardownMs: 1 };
const TRUE_S = [2, 6, 2]; // node2 is 3x slower
const alg = resolveAlgorithm('wrr', { low: 25, high: 65, bound: 1.25 });

function trace(requests: number): Trace {
  const b = new TraceBuilder();
  for (let i = 0; i < requests; i++) b.add(`/f${i % 50}`, 0);
  return b.build('laws');
}

/** The figures Portico would have of each node over the run: one interval per run. */
function samples(r: SimResult): ServiceSample[][] {
  return r.perNode.map((n) => [{ dtMs: r.windowMs, svcN: n.requests, svcSumMs: n.residenceMs * n.requests }]);
}

function run(rateRps: number | undefined, admit: number): SimResult {
  return simulate(trace(30_000), { nodes: 3, algorithm: alg, model: MODEL, admit, rateRps, warmup: 0.1, seed: 7, slow: new Map([[1, 3]]) });
}

describe('operational laws against the simulator', () => {
  it('S from a low-load run is the true service time; with one slot known, 1/Dmax predicts the saturated throughput and names the slow node', (t) => {
    const low = run(30, 0); // 10 req/s per node: the slow node is 6% busy
    const lowSamples = samples(low);
    const est = lowSamples.map((s) => estimateService(s, 1)); // one CPU: one slot, known as maxConnections would give it
    est.forEach((e, k) => {
      const truth = low.perNode[k]!.serviceMs;
      assert.ok(Math.abs(truth - TRUE_S[k]!) < 1e-9, `node${k + 1}: the model's service time ${truth}`);
      assert.ok(Math.abs(e.S! - truth) / truth < 0.1, `node${k + 1}: S ${e.S} vs true ${truth}`);
    });
    // Little's law in the simulator's own terms: a node's mean in flight = its throughput x residence.
    for (const n of low.perNode) {
      const xr = ((n.requests * 1000) / low.windowMs) * (n.residenceMs / 1000);
      assert.ok(Math.abs(n.meanActive - xr) <= 0.05 * Math.max(n.meanActive, xr) + 1e-3, `N ${n.meanActive} vs X·R ${xr}`);
    }
    const servers = est.map((e, k) => ({ name: `node${k + 1}`, X: low.perNode[k]!.requests, weight: 1, inService: true, S: e.S, c: e.c, cSource: e.cSource }));
    const laws = poolLaws({ X: low.throughputRps, R: low.latencyMeanMs, N: 0, servers });
    assert.equal(laws.bottleneck, 'node2');
    assert.equal(laws.exact, true);

    // Saturate it: 64 requests in flight at all times. Round robin keeps a third on node2: X = 3/6 ms = 500 req/s.
    const sat = run(undefined, 64);
    const err = Math.abs(laws.saturation! - sat.throughputRps) / sat.throughputRps;
    t.diagnostic(`S from the low-load run: ${est.map((e) => e.S!.toFixed(3)).join(', ')} ms (true ${TRUE_S.join(', ')}); predicted ${laws.saturation} req/s, simulated ${sat.throughputRps.toFixed(1)} req/s`);
    assert.ok(err < 0.05, `predicted ${laws.saturation} req/s, simulated ${sat.throughputRps.toFixed(1)} req/s`);
    assert.ok(Math.abs(sat.throughputRps - 500) < 10, `simulated ${sat.throughputRps}`);

    // Without the slot count, the saturated run measures it: node2 has one slot; the others were never saturated.
    const both = lowSamples.map((s, k) => [...s, ...samples(sat)[k]!]);
    const measured = both.map((s) => estimateService(s, 0));
    assert.equal(measured[1]!.cSource, 'saturation');
    assert.ok(Math.abs(measured[1]!.c! - 1) < 0.05, `node2 slots ${measured[1]!.c}`);
    assert.equal(measured[0]!.cSource, 'observed');
    const satLaws = poolLaws({
      X: sat.throughputRps,
      R: sat.latencyMeanMs,
      N: 64,
      servers: measured.map((e, k) => ({ name: `node${k + 1}`, X: sat.perNode[k]!.requests, weight: 1, inService: true, S: e.S, c: e.c, cSource: e.cSource })),
    });
    assert.equal(satLaws.bottleneck, 'node2');
    t.diagnostic(`measured at saturation: node2 c = ${measured[1]!.c!.toFixed(3)}; ${satLaws.summary}; bounds at N = 64: X <= ${satLaws.bounds.Xmax}, R >= ${satLaws.bounds.Rmin} ms; simulated R ${sat.latencyMeanMs.toFixed(1)} ms`);
    assert.ok(Math.abs(satLaws.saturation! - 500) / 500 < 0.05, `bound ${satLaws.saturation}`);
    // The bounds hold for the simulated run: X(64) <= min(1/Dmax, N/D), R(64) >= max(D, N·Dmax).
    assert.ok(sat.throughputRps <= satLaws.bounds.Xmax! * 1.01);
    assert.ok(sat.latencyMeanMs >= satLaws.bounds.Rmin! * 0.99, `R ${sat.latencyMeanMs} vs bound ${satLaws.bounds.Rmin}`);
  });
});
