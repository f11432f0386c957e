import type { SimResult } from './simulate.js';
import { barChart, lineChart, type LineSeries } from './svg-chart.js';

interface Column {
  readonly head: string;
  readonly width: number;
  readonly cell: (r: SimResult) => string;
}

const fixed = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
const ms = (x: number): string => (!Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

const COLUMNS: readonly Column[] = [
  { head: 'nodes', width: 5, cell: (r) => String(r.nodes) },
  { head: 'algorithm', width: 14, cell: (r) => r.algorithm },
  { head: 'req/s', width: 9, cell: (r) => fixed(r.throughputRps, 0) },
  { head: 'hit %', width: 6, cell: (r) => fixed(r.hitRatio * 100, 1) },
  { head: 'max/avg load', width: 12, cell: (r) => fixed(r.loadMaxAvg, 2) },
  { head: 'p99 queue ms', width: 12, cell: (r) => ms(r.queueP99Ms) },
  { head: 'p50 ms', width: 8, cell: (r) => ms(r.latencyP50Ms) },
  { head: 'p99 ms', width: 8, cell: (r) => ms(r.latencyP99Ms) },
  { head: 'p99.9 ms', width: 8, cell: (r) => ms(r.latencyP999Ms) },
  { head: 'cpu %', width: 6, cell: (r) => fixed(r.cpuUtil * 100, 0) },
  { head: 'disk %', width: 6, cell: (r) => fixed(r.diskUtil * 100, 0) },
];

const pad = (s: string, w: number, left: boolean): string => (left ? s.padEnd(w) : s.padStart(w));

export function tableHeader(): string {
  return COLUMNS.map((c, i) => pad(c.head, c.width, i === 1)).join('  ');
}

export function tableRow(r: SimResult): string {
  return COLUMNS.map((c, i) => pad(c.cell(r), c.width, i === 1)).join('  ');
}

const CSV_FIELDS = [
  'nodes',
  'algorithm',
  'admit',
  'measured',
  'windowMs',
  'simulatedMs',
  'throughputRps',
  'hitRatio',
  'loadMaxAvg',
  'shareMaxAvg',
  'queueMeanMs',
  'queueP50Ms',
  'queueP99Ms',
  'latencyMeanMs',
  'latencyP50Ms',
  'latencyP90Ms',
  'latencyP99Ms',
  'latencyP999Ms',
  'cpuUtil',
  'diskUtil',
] as const;

export function csvCell(v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(Number(v.toPrecision(10))) : '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvHeader(): string {
  return CSV_FIELDS.join(',');
}

export function csvRow(r: SimResult): string {
  return CSV_FIELDS.map((k) => csvCell(r[k])).join(',');
}

/** One line per node of every run: where the requests went and how each node fared. */
export function nodesCsv(results: readonly SimResult[]): string {
  const lines = ['nodes,algorithm,node,requests,hitRatio,meanActive,cpuUtil,diskUtil'];
  for (const r of results) {
    r.perNode.forEach((p, i) => {
      lines.push([r.nodes, r.algorithm, `node${i + 1}`, p.requests, p.hitRatio, p.meanActive, p.cpuUtil, p.diskUtil].map(csvCell).join(','));
    });
  }
  return lines.join('\n') + '\n';
}

/** The charts of a run: files name → SVG text. */
export function charts(results: readonly SimResult[], subtitle: string): Map<string, string> {
  const out = new Map<string, string>();
  const algorithms = [...new Set(results.map((r) => r.algorithm))];
  const nodeCounts = [...new Set(results.map((r) => r.nodes))];
  const suffix = subtitle === '' ? '' : ` (${subtitle})`;
  if (nodeCounts.length > 1) {
    const series = (f: (r: SimResult) => number): LineSeries[] =>
      algorithms.map((a) => ({
        name: a,
        points: results.filter((r) => r.algorithm === a).map((r) => [r.nodes, f(r)] as const),
      }));
    out.set('throughput.svg', lineChart({ title: `Throughput${suffix}`, xLabel: 'nodes', yLabel: 'requests/s', series: series((r) => r.throughputRps) }));
    out.set('hit-ratio.svg', lineChart({ title: `Cache hit ratio${suffix}`, xLabel: 'nodes', yLabel: 'hit %', series: series((r) => r.hitRatio * 100) }));
    out.set('load.svg', lineChart({ title: `Max / average load${suffix}`, xLabel: 'nodes', yLabel: 'max / avg in flight', series: series((r) => r.loadMaxAvg), yMin: 1 }));
    out.set('queue-p99.svg', lineChart({ title: `p99 queueing delay${suffix}`, xLabel: 'nodes', yLabel: 'ms', series: series((r) => r.queueP99Ms) }));
  } else {
    const n = nodeCounts[0];
    const rows = algorithms.map((a) => results.find((r) => r.algorithm === a)!);
    const pct: [string, (r: SimResult) => number][] = [
      ['p50', (r) => r.latencyP50Ms],
      ['p90', (r) => r.latencyP90Ms],
      ['p99', (r) => r.latencyP99Ms],
      ['p99.9', (r) => r.latencyP999Ms],
    ];
    out.set(
      'latency.svg',
      barChart({
        title: `Response time, ${n} node${n === 1 ? '' : 's'}${suffix}`,
        yLabel: 'ms (log scale)',
        categories: pct.map(([name]) => name),
        series: rows.map((r) => ({ name: r.algorithm, values: pct.map(([, f]) => f(r)) })),
        logY: true,
      }),
    );
    out.set(
      'throughput.svg',
      barChart({
        title: `Throughput, ${n} node${n === 1 ? '' : 's'}${suffix}`,
        yLabel: 'requests/s',
        categories: ['throughput'],
        series: rows.map((r) => ({ name: r.algorithm, values: [r.throughputRps] })),
      }),
    );
  }
  return out;
}
