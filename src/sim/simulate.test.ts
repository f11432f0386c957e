import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lardAdmissionLimit } from '../balancer/lard.js';
import { resolveAlgorithm } from './algorithms.js';
import { LARD_PAPER_MODEL, diskMs, transmitMs, type ModelParams } from './model.js';
import { simulate, type SimConfig } from './simulate.js';
import { TraceBuilder, type Trace } from './trace.js';

const params = { low: 25, high: 65, bound: 1.25 };
const alg = (name: string) => resolveAlgorithm(name, params);

/** `requests` requests spread over `files` files of `size` bytes, in turn. */
function uniformTrace(files: number, requests: number, size: number): Trace {
  const b = new TraceBuilder();
  for (let i = 0; i < requests; i++) b.add(`/f${i % files}`, size);
  return b.build('test');
}

const within = (actual: number, expected: number, rel: number, what: string): void => {
  assert.ok(Math.abs(actual - expected) <= rel * expected, `${what}: ${actual} not within ${rel * 100}% of ${expected}`);
};

test('the model costs: 8 KB = 0.93 ms of CPU when cached, 28.82 ms of disk when not', () => {
  assert.ok(Math.abs(LARD_PAPER_MODEL.connectMs + transmitMs(LARD_PAPER_MODEL, 8192) - 0.93) < 1e-12);
  assert.ok(Math.abs(diskMs(LARD_PAPER_MODEL, 8192) - 28.82) < 1e-12);
  // 100 KB: 25 blocks of 4 KB and two further 44 KB pieces
  assert.ok(Math.abs(diskMs(LARD_PAPER_MODEL, 100 * 1024) - (28 + 25 * 0.41 + 2 * 14)) < 1e-9);
});

test('one node, every measured request a hit: CPU-bound at 1/0.93 ms, response time = 24 × 0.93 ms (Little)', () => {
  const S = lardAdmissionLimit(1, 25, 65); // 24 in flight at all times
  const r = simulate(uniformTrace(1, 5000, 8192), { nodes: 1, algorithm: alg('wrr'), model: LARD_PAPER_MODEL, admit: S, warmup: 0.2, seed: 1 });
  assert.equal(r.measured, 4000);
  assert.equal(r.hitRatio, 1);
  within(r.throughputRps, 1000 / 0.93, 0.005, 'throughput');
  within(r.latencyMeanMs, S * 0.93, 0.01, 'mean response time');
  within(r.queueMeanMs, (S - 1) * 0.93, 0.01, 'mean queueing delay');
  within(r.perNode[0]!.cpuUtil, 1, 0.01, 'CPU utilisation');
  assert.equal(r.perNode[0]!.diskUtil, 0);
  assert.equal(r.loadMaxAvg, 1);
});

test('two nodes, no cache: every request reads the disk, so throughput = 2 / 28.82 ms', () => {
  const model: ModelParams = { ...LARD_PAPER_MODEL, cacheBytes: 0 };
  const r = simulate(uniformTrace(10, 3000, 8192), { nodes: 2, algorithm: alg('roundrobin'), model, admit: lardAdmissionLimit(2, 25, 65), warmup: 0.2, seed: 1 });
  assert.equal(r.hitRatio, 0);
  within(r.throughputRps, 2000 / 28.82, 0.01, 'throughput');
  within(r.diskUtil, 1, 0.01, 'disk utilisation');
  within(r.cpuUtil, 0.93 / 28.82, 0.02, 'CPU utilisation');
  assert.equal(r.perNode[0]!.requests, 1200);
  assert.equal(r.perNode[1]!.requests, 1200);
});

test('deterministic: the same inputs and seed give the same result', () => {
  const trace = uniformTrace(50, 2000, 20_000);
  const model: ModelParams = { ...LARD_PAPER_MODEL, cacheBytes: 400_000 };
  const cfg: SimConfig = { nodes: 4, algorithm: alg('p2c'), model, admit: 0, rateRps: 300, warmup: 0.1, seed: 3 };
  assert.deepEqual(simulate(trace, cfg), simulate(trace, cfg));
  const lard: SimConfig = { nodes: 3, algorithm: alg('lard'), model, admit: lardAdmissionLimit(3, 25, 65), warmup: 0.1, seed: 3 };
  assert.deepEqual(simulate(trace, lard), simulate(trace, lard));
});

test('the real balancers decide: with one node of eight 10× slower, round-robin still sends it 1/8, the others much less', () => {
  const trace = uniformTrace(1, 8000, 8192);
  const model: ModelParams = { ...LARD_PAPER_MODEL, diskFirstMs: 0, diskPer4KMs: 0, diskPer44KMs: 0 };
  const run = (name: string) =>
    simulate(trace, { nodes: 8, algorithm: alg(name), model, admit: 0, rateRps: 2000, slow: new Map([[0, 10]]), warmup: 0.1, seed: 1 });
  const rr = run('roundrobin');
  assert.equal(rr.measured, 7200);
  assert.ok(Math.abs(rr.perNode[0]!.requests - 7200 / 8) <= 1);
  for (const name of ['leastconn', 'p2c', 'fastest']) {
    const r = run(name);
    assert.ok(r.perNode[0]!.requests < 7200 / 16, `${name} sent ${r.perNode[0]!.requests} to the slow node`);
    assert.ok(r.latencyP99Ms < rr.latencyP99Ms, `${name} p99 ${r.latencyP99Ms} vs round-robin ${rr.latencyP99Ms}`);
  }
  // the slow node's requests cost 9.3 ms of CPU; round-robin's p99 lands among them
  assert.ok(rr.latencyP99Ms >= 9.3);
});

test('open arrivals wait at the front end under the admission limit', () => {
  const trace = uniformTrace(1, 2000, 8192);
  const model: ModelParams = { ...LARD_PAPER_MODEL, diskFirstMs: 0, diskPer4KMs: 0, diskPer44KMs: 0 };
  // 1 node serving 1075 req/s, arrivals at 900 req/s: with one request admitted at a time every
  // wait is at the front end (none at the CPU), so the queueing delay equals response time − 0.93 ms
  const r = simulate(trace, { nodes: 1, algorithm: alg('roundrobin'), model, admit: 1, rateRps: 900, warmup: 0.1, seed: 2 });
  within(r.latencyMeanMs - r.queueMeanMs, 0.93, 1e-9, 'service time');
  assert.ok(r.queueP99Ms > 0.93, 'requests queue at 84% utilisation');
  within(r.throughputRps, 900, 0.1, 'throughput = arrival rate');
});

test('refuses what it cannot run', () => {
  const trace = uniformTrace(1, 10, 100);
  const base: SimConfig = { nodes: 1, algorithm: alg('wrr'), model: LARD_PAPER_MODEL, admit: 24, warmup: 0, seed: 1 };
  assert.throws(() => simulate(trace, { ...base, admit: 0 }), /admission limit/);
  assert.throws(() => simulate(trace, { ...base, nodes: 0 }), /nodes/);
  assert.throws(() => simulate(trace, { ...base, warmup: 1 }), /warmup/);
  assert.throws(() => simulate(new TraceBuilder().build('empty'), base), /no requests/);
});
