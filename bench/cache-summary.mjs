// The summary of bench/cache.sh: one table of requests per proxy CPU-second (median over the
// rounds) by scenario and peer, with req/s and the origin's requests, then the ratios the cache
// is judged by. Usage: node bench/cache-summary.mjs runs.csv versions.txt
import { readFileSync } from 'node:fs';

const [csv, versions] = process.argv.slice(2);
const lines = readFileSync(csv, 'utf8').trim().split('\n');
const cols = lines[0].split(',');
const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const scenarios = [...new Set(rows.map((r) => r.scenario))];
const peers = [...new Set(rows.map((r) => r.peer))];
const LABEL = {
  ka: 'proxied keep-alive, 16 B (no cache)',
  hit16: 'cache hit, 16 B',
  hit16k: 'cache hit, 16 KiB',
  gzhit16k: 'cache hit, 16 KiB, gzip',
  gzmiss16k: 'miss, 16 KiB, gzip-compressed',
};

/** Median over rounds of req per proxy CPU-second, req/s, origin requests per request. */
const fig = {};
for (const s of scenarios) {
  fig[s] = {};
  for (const p of peers) {
    const rs = rows.filter((r) => r.scenario === s && r.peer === p);
    if (rs.length === 0) continue;
    const perCpu = rs.map((r) => Number(r.requests) / (Number(r.proxy_ticks) / Number(r.clk_tck)));
    fig[s][p] = {
      cpu: median(perCpu),
      rps: median(rs.map((r) => Number(r.rps))),
      origin: median(rs.map((r) => Number(r.origin_requests) / Math.max(1, Number(r.requests)))),
      errors: rs.reduce((n, r) => n + Number(r.non2xx) + Number(r.sock_errors), 0),
    };
  }
}

const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const out = [];
out.push('```');
out.push(readFileSync(versions, 'utf8').trim());
out.push('```', '');
out.push('Requests per proxy CPU-second (median of the rounds; req/s in brackets):', '');
out.push(`| scenario | ${peers.join(' | ')} |`);
out.push(`|---|${peers.map(() => '---:').join('|')}|`);
for (const s of scenarios) {
  out.push(`| ${LABEL[s] ?? s} | ${peers.map((p) => (fig[s][p] ? `${fmt(fig[s][p].cpu)} (${fmt(fig[s][p].rps)})` : '')).join(' | ')} |`);
}
out.push('', 'Origin requests per proxied request (0 for hits):', '');
out.push(`| scenario | ${peers.join(' | ')} |`);
out.push(`|---|${peers.map(() => '---:').join('|')}|`);
for (const s of scenarios) out.push(`| ${s} | ${peers.map((p) => (fig[s][p] ? fig[s][p].origin.toFixed(3) : '')).join(' | ')} |`);
const errs = peers.flatMap((p) => scenarios.map((s) => [p, s, fig[s][p]?.errors ?? 0])).filter(([, , n]) => n > 0);
if (errs.length > 0) out.push('', 'Non-2xx answers or socket errors: ' + errs.map(([p, s, n]) => `${p} ${s} ${n}`).join(', '));

const ratio = (a, b) => (a && b ? (a.cpu / b.cpu).toFixed(2) : 'n/a');
out.push('', 'Ratios (per CPU-second):', '');
for (const p of peers.filter((x) => x.startsWith('portico'))) {
  for (const s of ['hit16', 'hit16k', 'gzhit16k']) {
    if (!fig[s]?.[p]) continue;
    const parts = [];
    if (fig.ka?.[p]) parts.push(`${ratio(fig[s][p], fig.ka[p])}x its own proxied keep-alive`);
    if (fig[s].nginx) parts.push(`${ratio(fig[s][p], fig[s].nginx)}x nginx`);
    if (fig[s].varnish) parts.push(`${ratio(fig[s][p], fig[s].varnish)}x varnish`);
    if (parts.length > 0) out.push(`- ${p} ${s}: ${parts.join(', ')}`);
  }
  const m = fig.gzmiss16k?.[p];
  if (m && (fig.gzmiss16k.nginx || fig.gzmiss16k.varnish)) out.push(`- ${p} gzmiss16k: ${ratio(m, fig.gzmiss16k.nginx)}x nginx, ${ratio(m, fig.gzmiss16k.varnish)}x varnish`);
}
if (peers.includes('portico') && peers.includes('portico-base')) {
  for (const s of scenarios) out.push(`- portico / portico-base, ${s}: ${ratio(fig[s].portico, fig[s]['portico-base'])}`);
}
console.log(out.join('\n'));
