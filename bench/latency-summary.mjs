// bench/latency.sh's table: per scenario and target, the median over rounds of each figure, and
// the latency a proxy adds over the backends answered directly in the same round (the median of
// the per-round differences).
import { readFileSync } from 'node:fs';

const [file, durArg] = process.argv.slice(2);
const dur = Number(durArg) || 10;
const lines = readFileSync(file, 'utf8').trim().split('\n');
const head = lines[0].split(',');
const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const scenarios = [...new Set(rows.map((r) => r.scenario))];
const targets = ['direct', 'haproxy', 'portico'];
const out = [];
out.push('| scenario | target | offered req/s | achieved | p50 ms | p99 ms | p99.9 ms | added p50 | added p99 | added p99.9 | errors |');
out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const sc of scenarios) {
  for (const t of targets) {
    const mine = rows.filter((r) => r.scenario === sc && r.target === t);
    if (mine.length === 0) continue;
    const added = (col) =>
      median(
        mine.map((r) => {
          const d = rows.find((x) => x.scenario === sc && x.target === 'direct' && x.round === r.round);
          return d === undefined ? NaN : Number(r[col]) - Number(d[col]);
        }),
      );
    const m = (col) => median(mine.map((r) => Number(r[col])));
    out.push(
      `| ${sc} | ${t} | ${fmt(m('offered_rps'), 0)} | ${fmt(m('achieved_rps'), 0)} | ${fmt(m('p50_ms'))} | ${fmt(m('p99_ms'))} | ${fmt(m('p999_ms'))} | ` +
        `${t === 'direct' ? '' : fmt(added('p50_ms'))} | ${t === 'direct' ? '' : fmt(added('p99_ms'))} | ${t === 'direct' ? '' : fmt(added('p999_ms'))} | ${fmt(m('errors'), 0)} |`,
    );
  }
}
out.push('');
out.push(`Portico's garbage collector during each paced run of ${dur} s (median over rounds):`);
out.push('');
out.push('| scenario | scavenges | mark-compacts | pause total ms | share of the run |');
out.push('|---|---:|---:|---:|---:|');
for (const sc of scenarios) {
  const mine = rows.filter((r) => r.scenario === sc && r.target === 'portico');
  const pause = median(mine.map((r) => Number(r.gc_pause_ms)));
  out.push(
    `| ${sc} | ${fmt(median(mine.map((r) => Number(r.gc_scavenges))), 0)} | ${fmt(median(mine.map((r) => Number(r.gc_markcompacts))), 0)} | ${fmt(pause, 1)} | ${fmt((pause / (dur * 1000)) * 100, 2)}% |`,
  );
}
console.log(out.join('\n'));
