// Summary of a paired run (bench/pair.sh's pairs.csv): for each scenario, the CPU each proxy used
// per request in each round, and the ratio A / B of the two, which is B's requests per CPU-second
// relative to A's (above 1 when B is the cheaper). A round where either wrk saw an error, or
// completed no request, gives no ratio and is named.
//
//   node bench/pair-summary.mjs /tmp/portico-pair/<stamp>/pairs.csv
import { readFileSync } from 'node:fs';

export function parsePairs(text) {
  const lines = text.trim().split('\n');
  const head = lines[0].split(',');
  return lines.slice(1).filter((l) => l !== '').map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
}

/** CPU µs per request of one side of a row ('a' or 'b'), or NaN when the round is not usable. */
export function usPerRequest(row, side) {
  const n = Number(row[`${side}_requests`]);
  const ns = Number(row[`${side}_cpu_ns`]);
  if (!(n > 0) || !(ns > 0)) return NaN;
  return ns / 1000 / n;
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Per scenario, in the order first seen: each round's figures, and the ratios' median and lowest. */
export function summarize(rows) {
  const by = new Map();
  for (const r of rows) {
    let s = by.get(r.scenario);
    if (s === undefined) by.set(r.scenario, (s = { scenario: r.scenario, a: r.a, b: r.b, rounds: [] }));
    const a = usPerRequest(r, 'a');
    const b = usPerRequest(r, 'b');
    const errors = Number(r.a_errors) + Number(r.b_errors);
    const usable = Number.isFinite(a) && Number.isFinite(b) && errors === 0;
    s.rounds.push({ round: r.round, first: r.first, a, b, ratio: usable ? a / b : NaN, errors });
  }
  return [...by.values()].map((s) => {
    const ratios = s.rounds.map((x) => x.ratio).filter(Number.isFinite);
    return {
      ...s,
      median: median(ratios),
      min: ratios.length === 0 ? NaN : Math.min(...ratios),
      max: ratios.length === 0 ? NaN : Math.max(...ratios),
      unusable: s.rounds.filter((x) => !Number.isFinite(x.ratio)).map((x) => x.round),
    };
  });
}

const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

export function render(sums) {
  const out = [];
  for (const s of sums) {
    out.push(`${s.scenario}: ${s.a} (A) and ${s.b} (B), CPU µs per request`);
    out.push('');
    out.push('| round | first | A µs/req | B µs/req | A / B |');
    out.push('|---|---|---:|---:|---:|');
    for (const r of s.rounds) out.push(`| ${r.round} | ${r.first} | ${f2(r.a)} | ${f2(r.b)} | ${Number.isFinite(r.ratio) ? f3(r.ratio) : `n/a (${r.errors} errors)`} |`);
    out.push('');
    const every = s.unusable.length === 0 && s.min >= 1;
    out.push(
      `A / B: median ${f3(s.median)}, lowest ${f3(s.min)}, highest ${f3(s.max)}; B at or above A in every round: ${every ? 'yes' : 'no'}` +
        (s.unusable.length > 0 ? ` (rounds without a figure: ${s.unusable.join(', ')})` : ''),
    );
    out.push('');
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(render(summarize(parsePairs(readFileSync(process.argv[2], 'utf8')))));
}
