/**
 * Small hand-written SVG charts for the simulator's reports: a line chart (a metric against the node
 * count, one line per algorithm) and a grouped bar chart (optionally on a log scale). Self-contained
 * SVG 1.1 with no scripts and no external references.
 */

export interface LineSeries {
  readonly name: string;
  /** [x, y] pairs; points with a non-finite y are left out. */
  readonly points: ReadonlyArray<readonly [number, number]>;
}

export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly LineSeries[];
  readonly width?: number;
  readonly height?: number;
  /** Lower end of the y axis (default 0). */
  readonly yMin?: number;
}

export interface BarSeries {
  readonly name: string;
  /** One value per category; non-finite values draw no bar. */
  readonly values: readonly number[];
}

export interface BarChartOptions {
  readonly title: string;
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly BarSeries[];
  readonly logY?: boolean;
  readonly width?: number;
  readonly height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function colorOf(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round axis ticks (1, 2, 5 × 10^k steps) covering [min, max]. */
export function niceTicks(min: number, max: number, target = 5): number[] {
  if (!(Number.isFinite(min) && Number.isFinite(max))) return [0, 1];
  if (max <= min) max = min + 1;
  const raw = (max - min) / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const out: number[] = [];
  for (let v = lo; v <= hi + step * 1e-6; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A tick label: integers as they are (with k/M for large ones), fractions to 3 significant digits. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 && Number.isInteger(v / 1e5)) return `${v / 1e6}M`;
  if (a >= 1e4 && Number.isInteger(v / 100)) return `${v / 1e3}k`;
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(3)));
}

const fmt = (x: number): string => (Math.round(x * 10) / 10).toString();

interface Frame {
  readonly w: number;
  readonly h: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

function header(f: Frame, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.w}" height="${f.h}" viewBox="0 0 ${f.w} ${f.h}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${f.w}" height="${f.h}" fill="#ffffff"/>`,
    `<text x="${fmt(f.w / 2)}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
}

function legend(out: string[], f: Frame, names: readonly string[]): void {
  const x = f.w - f.right + 16;
  names.forEach((name, i) => {
    const y = f.top + 8 + i * 20;
    out.push(`<rect x="${x}" y="${y - 9}" width="14" height="10" fill="${colorOf(i)}"/>`);
    out.push(`<text x="${x + 20}" y="${y}">${escapeXml(name)}</text>`);
  });
}

function yAxis(out: string[], f: Frame, ticks: readonly number[], y: (v: number) => number, label: string): void {
  const x0 = f.left;
  const x1 = f.w - f.right;
  for (const t of ticks) {
    const yy = fmt(y(t));
    out.push(`<line x1="${x0}" y1="${yy}" x2="${x1}" y2="${yy}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${x0 - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(t))}</text>`);
  }
  const cy = fmt((f.top + f.h - f.bottom) / 2);
  out.push(`<text x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})">${escapeXml(label)}</text>`);
  out.push(`<line x1="${x0}" y1="${f.top}" x2="${x0}" y2="${f.h - f.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${x0}" y1="${f.h - f.bottom}" x2="${x1}" y2="${f.h - f.bottom}" stroke="#333"/>`);
}

/** A line chart with a linear x axis (the node count) and a linear y axis from yMin (default 0). */
export function lineChart(o: LineChartOptions): string {
  const f: Frame = { w: o.width ?? 760, h: o.height ?? 420, left: 70, right: 170, top: 36, bottom: 50 };
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of o.series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      xs.push(x);
      ys.push(y);
    }
  }
  const xMin = xs.length > 0 ? Math.min(...xs) : 0;
  const xMax = xs.length > 0 ? Math.max(...xs) : 1;
  const yTicks = niceTicks(o.yMin ?? Math.min(0, ...ys), ys.length > 0 ? Math.max(...ys) : 1);
  const yLo = yTicks[0]!;
  const yHi = yTicks[yTicks.length - 1]!;
  const xSpan = xMax > xMin ? xMax - xMin : 1;
  const pw = f.w - f.left - f.right;
  const ph = f.h - f.top - f.bottom;
  const X = (x: number): number => f.left + ((x - xMin) / xSpan) * pw;
  const Y = (y: number): number => f.top + ph - ((y - yLo) / (yHi - yLo)) * ph;

  const out = header(f, o.title);
  yAxis(out, f, yTicks, Y, o.yLabel);
  const xTicks = xMax - xMin <= 20 && Number.isInteger(xMin) && Number.isInteger(xMax) ? range(xMin, xMax) : niceTicks(xMin, xMax);
  for (const t of xTicks) {
    if (t < xMin || t > xMax) continue;
    out.push(`<text x="${fmt(X(t))}" y="${f.h - f.bottom + 16}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`<text x="${fmt(f.left + pw / 2)}" y="${f.h - 10}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  o.series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    const c = colorOf(i);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(([x, y]) => `${fmt(X(x))},${fmt(Y(y))}`).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${fmt(X(x))}" cy="${fmt(Y(y))}" r="3" fill="${c}"/>`);
  });
  legend(
    out,
    f,
    o.series.map((s) => s.name),
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Grouped bars: one group per category, one bar per series; log10 y axis when `logY`. */
export function barChart(o: BarChartOptions): string {
  const f: Frame = { w: o.width ?? 760, h: o.height ?? 420, left: 70, right: 170, top: 36, bottom: 50 };
  const values = o.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v) && (!o.logY || v > 0));
  const pw = f.w - f.left - f.right;
  const ph = f.h - f.top - f.bottom;
  let ticks: number[];
  let Y: (v: number) => number;
  if (o.logY === true) {
    const lo = Math.floor(Math.log10(values.length > 0 ? Math.min(...values) : 1));
    let hi = Math.ceil(Math.log10(values.length > 0 ? Math.max(...values) : 10));
    if (hi <= lo) hi = lo + 1;
    ticks = range(lo, hi).map((e) => Number((10 ** e).toPrecision(12)));
    Y = (v) => f.top + ph - ((Math.log10(v) - lo) / (hi - lo)) * ph;
  } else {
    ticks = niceTicks(0, values.length > 0 ? Math.max(...values) : 1);
    const hi = ticks[ticks.length - 1]!;
    Y = (v) => f.top + ph - (v / hi) * ph;
  }
  const out = header(f, o.title);
  yAxis(out, f, ticks, Y, o.yLabel);
  const groups = o.categories.length;
  const groupW = pw / Math.max(1, groups);
  const barW = (groupW * 0.8) / Math.max(1, o.series.length);
  const base = f.h - f.bottom;
  o.categories.forEach((cat, g) => {
    const gx = f.left + g * groupW + groupW * 0.1;
    out.push(`<text x="${fmt(f.left + (g + 0.5) * groupW)}" y="${base + 16}" text-anchor="middle">${escapeXml(cat)}</text>`);
    o.series.forEach((s, i) => {
      const v = s.values[g];
      if (v === undefined || !Number.isFinite(v) || (o.logY === true && v <= 0)) return;
      const top = Math.max(f.top, Y(v));
      out.push(`<rect x="${fmt(gx + i * barW)}" y="${fmt(top)}" width="${fmt(barW * 0.92)}" height="${fmt(Math.max(0, base - top))}" fill="${colorOf(i)}"><title>${escapeXml(`${s.name} ${cat}: ${formatTick(v)}`)}</title></rect>`);
    });
  });
  legend(
    out,
    f,
    o.series.map((s) => s.name),
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}
