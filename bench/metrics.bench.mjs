// Cost of the per-request observability sinks, in ns per finished request:
//   npm run build && node bench/metrics.bench.mjs
// TrafficCounters.record (metrics and live statistics; always on) and AccessLog.record
// (json and combined; only with log.access), fed records shaped like the data path's.
import { TrafficCounters } from '../dist/observability/traffic.js';
import { AccessLog } from '../dist/observability/access-log.js';
import { exchange } from '../dist/observability/testing.js';

const N = 2_000_000;
const servers = ['s1', 's2', 's3'];
const codes = [200, 200, 200, 304, 404];
const recs = [];
for (let i = 0; i < 64; i++) {
  recs.push(exchange({ server: servers[i % 3], status: codes[i % 5], totalMs: 0.2 + (i % 13) * 0.37, startedAt: performance.now() }));
}

function measure(name, fn, n = N) {
  for (let i = 0; i < n / 10; i++) fn(recs[i & 63]); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(recs[i & 63]);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${name.padEnd(34)} ${ns.toFixed(1).padStart(7)} ns/request`);
}

const traffic = new TrafficCounters();
measure('metrics + live stats (record)', traffic.record);

const nullSink = { open: async () => {}, write: (_c, done) => setImmediate(done, null), close: async () => {} };
for (const format of ['json', 'combined']) {
  const log = new AccessLog({ format, sink: nullSink, maxBufferBytes: 1 << 30 });
  await log.start();
  // Lines are formatted on record and written in batches, once per event-loop turn: measure
  // in slices of 64 requests (a busy turn of the loop) so that batches flush as they would.
  const slice = 64;
  const slices = 20_000;
  let total = 0;
  for (let s = 0; s < slices; s++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < slice; i++) log.record(recs[i & 63]);
    total += Number(process.hrtime.bigint() - t0);
    await new Promise((r) => setImmediate(r));
  }
  console.log(`${`access log ${format} (record)`.padEnd(34)} ${(total / (slices * slice)).toFixed(1).padStart(7)} ns/request`);
  await log.stop();
}
