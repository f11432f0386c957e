// Picks per second and bytes allocated per pick for every balancing algorithm, with 8 and 100
// servers. Runs from dist/: `npm run bench:pick` (builds, then node --expose-gc).
//
// picks/s: best of 3 timed runs of 1e6 picks after a warm-up.
// B/pick: heap growth over 1e6 picks after a gc, measured in 100 chunks of 1e4 picks (heapUsed before
// and after each chunk; the median chunk, so a scavenge inside one chunk does not hide allocation),
// minus the cost of reading heapUsed itself. "kept" is the heap still held after a final gc.
import { ManualClock } from '../dist/core/clock.js';
import { SeededRng } from '../dist/core/rng.js';
import { getBalancer } from '../dist/balancer/index.js';
import { MapCounts, makeServers, makeSet } from '../dist/balancer/testing.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc (npm run bench:pick)');
  process.exit(1);
}
const gc = globalThis.gc;

const cases = [
  ['roundrobin', undefined, 'none'],
  ['leastconn', undefined, 'none'],
  ['least-traffic', undefined, 'none'],
  ['fastest', undefined, 'none'],
  ['p2c', undefined, 'none'],
  ['random', undefined, 'none'],
  ['hash', { key: 'source-ip', method: 'maglev' }, 'key'],
  ['hash', { key: 'source-ip', method: 'ring' }, 'key'],
  ['hash', { key: 'source-ip', method: 'jump' }, 'key'],
  ['hash', { key: 'source-ip', method: 'maglev', boundedLoad: 1.25 }, 'key'], // counts.total() offered
  ['hash', { key: 'source-ip', method: 'maglev', boundedLoad: 1.25 }, 'key', 'summed'], // no total(): O(n) sum
  ['lard', {}, 'path'],
  ['lard', { replicate: true }, 'path'],
];

const N_PICKS = 1_000_000;
const CHUNK = 10_000;

function setup(name, raw, ctxKind, n, withTotal) {
  const factory = getBalancer(name);
  const servers = makeServers(n, (i) => 1 + (i % 3));
  const counts = new MapCounts({ withTotal });
  const rng = new SeededRng(42);
  servers.forEach((s) => counts.set(s.id, rng.nextInt(name === 'lard' ? 20 : 10)));
  const deps = { rng, clock: new ManualClock(0), counts, carry: new Map() };
  const b = factory.build(makeSet(servers), factory.parseOptions(raw), deps);
  if (b.onRelease) for (const s of servers) b.onRelease(s, { ok: true, latencyMs: 5 + rng.nextInt(50), bytes: 1000 + rng.nextInt(10_000) });
  const ctxs = [];
  for (let i = 0; i < 4096; i++) {
    if (ctxKind === 'key') ctxs.push({ hashKey: `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}` });
    else if (ctxKind === 'path') ctxs.push({ path: `/static/${i % 2 === 0 ? i % 64 : i}/index.html` }); // half the requests on 32 hot targets
    else ctxs.push({});
  }
  return { b, ctxs };
}

function run(b, ctxs, picks) {
  let sink = 0;
  for (let i = 0; i < picks; i++) {
    const s = b.pick(ctxs[i & 4095]);
    if (s !== undefined) sink += s.port;
  }
  return sink;
}

function heapPerPick(b, ctxs) {
  const baseline = [];
  const deltas = [];
  gc();
  const h0 = process.memoryUsage().heapUsed;
  for (let c = 0; c < N_PICKS / CHUNK; c++) {
    const a = process.memoryUsage().heapUsed;
    const z = process.memoryUsage().heapUsed;
    run(b, ctxs, CHUNK);
    const e = process.memoryUsage().heapUsed;
    baseline.push(z - a);
    deltas.push(e - z);
  }
  gc();
  const kept = process.memoryUsage().heapUsed - h0;
  const median = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1];
  return { perPick: Math.max(0, (median(deltas) - median(baseline)) / CHUNK), kept };
}

const rows = [];
for (const [name, raw, ctxKind, summed] of cases) {
  let label = raw === undefined || Object.keys(raw).length === 0 ? name : `${name} ${Object.entries(raw).filter(([k]) => k !== 'key').map(([k, v]) => (k === 'method' ? v : `${k}=${v}`)).join(' ')}`;
  if (raw?.boundedLoad !== undefined) label += summed ? ' (in-flight summed)' : ' (counts.total)';
  for (const n of [8, 100]) {
    const { b, ctxs } = setup(name, raw, ctxKind, n, summed !== 'summed');
    run(b, ctxs, 200_000); // warm-up
    let best = 0;
    for (let r = 0; r < 3; r++) {
      const t0 = process.hrtime.bigint();
      run(b, ctxs, N_PICKS);
      const ns = Number(process.hrtime.bigint() - t0);
      best = Math.max(best, N_PICKS / (ns / 1e9));
    }
    const { perPick, kept } = heapPerPick(b, ctxs);
    rows.push({ algorithm: label, servers: n, 'picks/s': best, 'B/pick': perPick, kept });
  }
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : `${(x / 1e3).toFixed(0)}k`);
console.log(`node ${process.version}, ${N_PICKS.toExponential(0)} picks per run`);
console.log('| algorithm | servers | picks/s | B/pick | heap kept after gc |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.algorithm} | ${r.servers} | ${fmt(r['picks/s'])} | ${r['B/pick'].toFixed(2)} | ${(r.kept / 1024).toFixed(0)} KiB |`);
