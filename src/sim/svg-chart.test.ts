import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barChart, escapeXml, formatTick, lineChart, niceTicks } from './svg-chart.js';

test('nice ticks cover the range in 1/2/5 steps', () => {
  assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0, 9876), [0, 2000, 4000, 6000, 8000, 10000]);
  assert.deepEqual(niceTicks(1, 1.3), [1, 1.1, 1.2, 1.3]);
  assert.deepEqual(niceTicks(1, 2.7), [1, 1.5, 2, 2.5, 3]);
  assert.deepEqual(niceTicks(5, 5), [5, 5.2, 5.4, 5.6, 5.8, 6]);
  assert.equal(formatTick(12000), '12k');
  assert.equal(formatTick(2_500_000), '2.5M');
  assert.equal(formatTick(0.12345), '0.123');
  assert.equal(formatTick(950), '950');
});

test('line chart: one polyline per series with one vertex per finite point, text escaped', () => {
  const svg = lineChart({
    title: 'A <b> & "c"',
    xLabel: 'nodes',
    yLabel: 'req/s',
    series: [
      { name: 'wrr', points: [[1, 100], [2, 200], [4, 390]] },
      { name: 'l<ard>', points: [[1, 100], [2, NaN], [4, 1000]] },
      { name: 'none', points: [] },
    ],
  });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
  assert.deepEqual(lines, [3, 2]);
  assert.equal([...svg.matchAll(/<circle /g)].length, 5);
  assert.ok(svg.includes('A &lt;b&gt; &amp; &quot;c&quot;'));
  assert.ok(svg.includes('l&lt;ard&gt;'));
  assert.ok(!svg.includes('NaN'));
  // the highest point is drawn at the top tick (1000), above the lowest
  const ys = [...svg.matchAll(/<circle cx="[^"]*" cy="([^"]*)"/g)].map((m) => Number(m[1]));
  assert.equal(Math.min(...ys), ys[4]);
  assert.equal(Math.max(...ys), ys[0]);
});

test('bar chart on a log scale: taller bars for larger values, non-positive values drawn as no bar', () => {
  const svg = barChart({
    title: 'p99',
    yLabel: 'ms',
    categories: ['p50', 'p99'],
    series: [
      { name: 'rr', values: [1, 1000] },
      { name: 'lc', values: [1, 10] },
      { name: 'x', values: [0, NaN] },
    ],
    logY: true,
  });
  const heights = [...svg.matchAll(/<rect x="[^"]*" y="[^"]*" width="[^"]*" height="([^"]*)" fill="[^"]*"><title>/g)].map((m) => Number(m[1]));
  assert.equal(heights.length, 4);
  const [rrP50, lcP50, rrP99, lcP99] = heights as [number, number, number, number];
  assert.equal(rrP50, lcP50);
  assert.ok(rrP99 > lcP99 && lcP99 > rrP50);
  assert.ok(Math.abs(rrP99 - 3 * (lcP99 - rrP50) - rrP50) < 0.5, 'log scale: 1000 is three times as far from 1 as 10 is');
  assert.equal(escapeXml('<&>'), '&lt;&amp;&gt;');
});
