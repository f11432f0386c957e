// Heads parsed per second for a typical browser request (~300 bytes), and chunked scan throughput.
// Run after `npx tsc -p .`: node bench/parse.bench.mjs
import { parseRequestHead } from '../dist/proxy/http/parse-request.js';
import { parseResponseHead } from '../dist/proxy/http/parse-response.js';
import { ChunkedScanner } from '../dist/proxy/http/chunked.js';
import { request, response, limits } from './parse-heads.mjs';

// Several timed rounds after a warm-up. Rates are per second of CPU time used by this process
// (process.cpuUsage), so that other load on a shared machine does not count against the parser;
// the best round is printed with the median beside it, and the wall-clock rate of the best round.
function bench(name, n, fn, unit = 'ops') {
  for (let i = 0; i < Math.min(n, 300_000); i++) fn(); // warm up
  const rounds = [];
  for (let round = 0; round < 7; round++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    rounds.push({ cpu: n / ((c.user + c.system) / 1e6), wall: n / wall });
  }
  rounds.sort((a, b) => a.cpu - b.cpu);
  const fmt = (r) => Math.round(r).toLocaleString('en-US');
  const best = rounds[rounds.length - 1];
  console.log(
    `${name}: ${fmt(best.cpu)} ${unit}/s best (${(1e9 / best.cpu).toFixed(0)} ns each), ` +
      `median ${fmt(rounds[3].cpu)}; wall clock ${fmt(best.wall)}/s`,
  );
}

let sink = 0;
console.log(`request head: ${request.length} bytes; response head: ${response.length} bytes`);
bench('parseRequestHead', 1_000_000, () => {
  const r = parseRequestHead(request, limits);
  sink += r.headEnd;
}, 'heads');
bench('parseResponseHead', 1_000_000, () => {
  const r = parseResponseHead(response, limits);
  sink += r.headEnd;
}, 'heads');

const parts = [];
for (let i = 0; i < 64; i++) parts.push(`400\r\n${'x'.repeat(0x400)}\r\n`);
parts.push('0\r\n\r\n');
const chunked = Buffer.from(parts.join(''), 'latin1');
const scanner = new ChunkedScanner();
bench(`ChunkedScanner (${chunked.length} B body, 64 chunks)`, 100_000, () => {
  scanner.reset();
  sink += scanner.feed(chunked, 0, chunked.length);
}, 'bodies');
if (sink === 0) console.log('');
