import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveAlgorithm, resolveAlgorithms } from './algorithms.js';
import { parseNodeList, parseSlow, runSimulate } from './cli.js';

function run(argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runSimulate(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('node lists and slow nodes', () => {
  assert.deepEqual(parseNodeList('1..4'), [1, 2, 3, 4]);
  assert.deepEqual(parseNodeList('8,1,2..3,2'), [1, 2, 3, 8]);
  for (const bad of ['0', '4..2', 'x', '1..', '1,,2']) assert.throws(() => parseNodeList(bad), /--nodes/, bad);
  assert.deepEqual([...parseSlow('1:10,3:2.5')], [
    [0, 10],
    [2, 2.5],
  ]);
  for (const bad of ['0:10', '1:0', '1', '1:x']) assert.throws(() => parseSlow(bad), /--slow/, bad);
});

test('algorithm names: registry names, and the simulator’s aliases mapped to registered algorithms', () => {
  const p = { low: 10, high: 30, bound: 1.5, table: 1009 };
  assert.equal(resolveAlgorithm('wrr', p).factory.name, 'roundrobin');
  assert.equal(resolveAlgorithm('hash-uri', p).config, 'balance: hash {"key":"uri","method":"maglev","tableSize":1009}');
  assert.deepEqual(resolveAlgorithm('hash-bounded', p).options, resolveAlgorithm('hash', p).factory.parseOptions({ key: 'uri', method: 'maglev', boundedLoad: 1.5, tableSize: 1009 }));
  assert.equal(resolveAlgorithm('hash-ring', p).config, 'balance: hash {"key":"uri","method":"ring"}');
  assert.deepEqual(resolveAlgorithm('lard-r', p).options, { low: 10, high: 30, replicate: true, shrinkAfterMs: 20_000, maxTargets: 65_536 });
  assert.deepEqual(
    resolveAlgorithms('roundrobin, leastconn,least-traffic,fastest,p2c,random,hash,lard', p).map((a) => a.factory.name),
    ['roundrobin', 'leastconn', 'least-traffic', 'fastest', 'p2c', 'random', 'hash', 'lard'],
  );
  assert.throws(() => resolveAlgorithm('nope', p), /unknown algorithm "nope"/);
});

test('portico simulate: a table on stdout, CSV and SVG charts in --out, one row per node count and algorithm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-sim-'));
  try {
    const r = run(['--synthetic', 'zipf:1:200:3000', '--nodes', '1..3', '--balance', 'wrr,lard', '--cache', '256k', '--out', dir]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('#')).length, 4);
    const rows = lines.filter((l) => /^\s+\d/.test(l));
    assert.deepEqual(
      rows.map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')),
      ['1 wrr', '1 lard', '2 wrr', '2 lard', '3 wrr', '3 lard'],
    );
    assert.deepEqual(readdirSync(dir).sort(), ['README.txt', 'hit-ratio.svg', 'load.svg', 'nodes.csv', 'queue-p99.svg', 'results.csv', 'throughput.svg']);
    const csv = readFileSync(join(dir, 'results.csv'), 'utf8').trimEnd().split('\n');
    assert.equal(csv.length, 7);
    assert.ok(csv[0]!.startsWith('nodes,algorithm,admit,'));
    assert.ok(csv[6]!.startsWith('3,lard,154,'), csv[6]); // admission (3−1)·65 + 25 − 1
    assert.equal(readFileSync(join(dir, 'nodes.csv'), 'utf8').trimEnd().split('\n').length, 1 + 2 * (1 + 2 + 3));
    assert.match(readFileSync(join(dir, 'throughput.svg'), 'utf8'), /<polyline/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('portico simulate --trace, CSV on stdout, open arrivals', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-sim-'));
  try {
    const file = join(dir, 'access.log');
    const lines: string[] = [];
    for (let i = 0; i < 400; i++) lines.push(`10.0.0.${i % 7} - - [01/Jan/1998:00:00:00 +0000] "GET /p${i % 13}.html HTTP/1.0" 200 ${1000 + (i % 13) * 100}`);
    writeFileSync(file, lines.join('\n') + '\n');
    const r = run(['--trace', file, '--nodes', '2', '--balance', 'p2c', '--rate', '200', '--admit', 'none', '--format', 'csv']);
    assert.equal(r.code, 0, r.err);
    const out = r.out.trimEnd().split('\n');
    assert.equal(out.length, 2);
    assert.ok(out[1]!.startsWith('2,p2c,0,360,'), out[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('portico simulate remap: keys moved per algorithm and the Maglev table line', () => {
  const r = run(['remap', '--servers', '5', '--keys', '500', '--removals', '2', '--balance', 'hash-maglev,hash-ring', '--table', '1009']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^hash-maglev\s/m);
  assert.match(r.out, /^hash-ring\s/m);
  assert.match(r.out, /Maglev table M=1009, N=5: entries per server (201|202)\.\.(201|202)/);
});

test('bad command lines exit 2 with the reason', () => {
  const cases: [string[], RegExp][] = [
    [[], /exactly one of --trace/],
    [['--synthetic', 'zipf:1:10:10', '--trace', 'x'], /exactly one of --trace/],
    [['--synthetic', 'zipf:1:10:10', '--nodes'], /--nodes needs a value/],
    [['--synthetic', 'zipf:1:10:10', '--balance', 'nope'], /unknown algorithm/],
    [['--synthetic', 'zipf:1:10:10', '--admit', 'none'], /needs --rate/],
    [['--synthetic', 'zipf:1:10:10', '--warmup', '1'], /--warmup/],
    [['--synthetic', 'zipf:1:10:10', '--keys', '3'], /remap/],
    [['--frobnicate'], /unknown option --frobnicate/],
    [['remap', '--nodes', '3'], /does not apply/],
    [['--trace', '/nonexistent/portico/trace.log'], /ENOENT/],
  ];
  for (const [argv, re] of cases) {
    const r = run(argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, re, argv.join(' '));
  }
  const help = run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: portico simulate/);
});
