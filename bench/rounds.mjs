// Per-round ratios of a peers benchmark run (runs.csv of ../shared/bench/run.sh): for each
// scenario, Portico's requests per proxy CPU-second divided by each peer's in the same round,
// one column per round, then the lowest and the median. The medians the peers' summary prints
// hide how far rounds spread; an aim such as "at or above the node pipe in every round" is read
// here.
//
//   node bench/rounds.mjs /tmp/peers-bench/results/latest/runs.csv
//
// With AA=1 (bench/run.sh's A/A mode) the Portico slots ran copies of the Node peers, so the
// ratios are those of one program against itself: how far apart two rounds of the same thing are
// on this machine.
import { readFileSync } from 'node:fs';

/** [our slot, the peers to divide by] for each layer. */
const PAIRS = [
  ['portico', ['haproxy', 'nginx', 'node-undici', 'fastify-reply-from', 'node-http-proxy']],
  ['portico-tcp', ['haproxy-tcp', 'nginx-stream', 'node-net']],
];

export function parseRuns(text) {
  const lines = text.trim().split('\n');
  const head = lines[0].split(',');
  return lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
}

/** Requests per proxy CPU-second of a row, or NaN where it has no proxy ticks (direct). */
export function perCpuSecond(r) {
  const ticks = Number(r.proxy_ticks);
  const hz = Number(r.clk_tck);
  const n = Number(r.requests);
  return ticks > 0 && hz > 0 ? n / (ticks / hz) : NaN;
}

function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Rows of the table: { scenario, ours, peer, ratios (per round, in round order), min, median }. */
export function roundRatios(rows) {
  const value = new Map();
  for (const r of rows) value.set(`${r.round}|${r.scenario}|${r.peer}`, perCpuSecond(r));
  const rounds = [...new Set(rows.map((r) => r.round))].sort((a, b) => Number(a) - Number(b));
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const out = [];
  for (const sc of scenarios) {
    for (const [ours, peers] of PAIRS) {
      for (const peer of peers) {
        const ratios = rounds.map((rd) => value.get(`${rd}|${sc}|${ours}`) / value.get(`${rd}|${sc}|${peer}`));
        if (!ratios.some(Number.isFinite)) continue;
        const fin = ratios.filter(Number.isFinite);
        out.push({ scenario: sc, ours, peer, ratios, min: Math.min(...fin), median: median(fin) });
      }
    }
  }
  return { rounds, rows: out };
}

export function render(t, aa) {
  const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
  const lines = [];
  if (aa) lines.push('A/A: the portico slots ran copies of the Node peers (node-undici, node-net).', '');
  lines.push(`| scenario | ours / peer | ${t.rounds.map((r) => `round ${r}`).join(' | ')} | lowest | median |`);
  lines.push(`|---|---|${t.rounds.map(() => '---:').join('|')}|---:|---:|`);
  for (const r of t.rows) lines.push(`| ${r.scenario} | ${r.ours} / ${r.peer} | ${r.ratios.map(f).join(' | ')} | ${f(r.min)} | ${f(r.median)} |`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node bench/rounds.mjs RUNS.csv\n');
    process.exit(2);
  }
  process.stdout.write(render(roundRatios(parseRuns(readFileSync(file, 'utf8'))), process.env.AA === '1') + '\n');
}
