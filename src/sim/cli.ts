import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lardAdmissionLimit } from '../balancer/lard.js';
import { algorithmNames, resolveAlgorithms, type AlgorithmParams } from './algorithms.js';
import { LARD_PAPER_MODEL, parseByteSize, parseModelOverrides, type ModelParams } from './model.js';
import { maglevTableStats, remap, type RemapResult } from './remap.js';
import { charts, csvCell, csvHeader, csvRow, nodesCsv, tableHeader, tableRow } from './report.js';
import { simulate, type SimResult } from './simulate.js';
import { barChart } from './svg-chart.js';
import { formatBytes, parseTrace, type Trace } from './trace.js';
import { DEFAULT_SIZES, parseSizes, parseZipfSpec, zipfTrace } from './workload.js';

export const SIMULATE_USAGE = `Usage: portico simulate (--trace FILE | --synthetic zipf:ALPHA[:FILES[:REQUESTS]]) [options]
       portico simulate remap [--servers N] [--keys N] [--removals K] [--balance LIST] [--table M] [--bound C]

Replays requests through the real balancing code against simulated back-ends (a FIFO CPU, a FIFO
disk and a whole-file cache per node; the LARD paper's costs) and prints, per algorithm and node
count: throughput, cache hit ratio, max/avg load, p99 queueing delay and response-time percentiles.

Workload:
  --trace FILE          Common Log Format (or Combined) or "path size" lines
  --synthetic SPEC      zipf:ALPHA[:FILES[:REQUESTS]] (FILES default 40000, REQUESTS 1000000)
  --sizes DIST          synthetic file sizes: lognormal:MEDIAN:SIGMA (default lognormal:6000:1.2) or fixed:BYTES
Balancing:
  --balance LIST        comma-separated (default wrr,hash-uri,lard); known: ${algorithmNames().join(', ')}
  --nodes LIST          node counts: 1..16 (default), 8, 1,2,4..8
  --low N --high N      LARD's T_low and T_high (default 25, 65)
  --bound C             c of hash-bounded (default 1.25)
  --table M             Maglev table size, a prime (default 65537)
Model:
  --cache SIZE          cache per node (default 32m)
  --cache-policy P      gds (GreedyDual-Size, default) or lru
  --model K=V,...       costs in ms: connectMs=0.145 teardownMs=0.145 transmitPer512Ms=0.04
                        diskFirstMs=28 diskPer4KMs=0.41 diskPer44KMs=14
  --admit N|lard|none   front-end admission limit (default lard: (n-1)*high + low - 1)
  --rate RPS            open (Poisson) arrivals at RPS; default: saturation (as fast as admitted)
  --slow N:F[,N:F]      node N (1-based) costs F times more (in runs with at least N nodes)
  --warmup F            fraction of requests that warm the caches, not measured (default 0.1)
  --seed N              seed of the workload, the balancers and the arrivals (default 1)
Output:
  --format table|csv    standard output (default table)
  --out DIR             write results.csv, nodes.csv and SVG charts into DIR
`;

interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

/** `1..16`, `8`, `1,2,4..8`: ascending, distinct. */
export function parseNodeList(text: string): number[] {
  const set = new Set<number>();
  for (const part of text.split(',')) {
    const p = part.trim();
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(p);
    if (m === null) throw new Error(`--nodes: ${JSON.stringify(p)} is not N or A..B`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < a || b > 1024) throw new Error(`--nodes: ${JSON.stringify(p)} must be within 1..1024, low to high`);
    for (let i = a; i <= b; i++) set.add(i);
  }
  return [...set].sort((x, y) => x - y);
}

/** `2:10,5:3`: node (1-based) → cost factor, as 0-based indices. */
export function parseSlow(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of text.split(',')) {
    const m = /^(\d+):(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (m === null || Number(m[1]) < 1 || !(Number(m[2]) > 0)) throw new Error(`--slow: ${JSON.stringify(part)} must be NODE:FACTOR (node from 1, factor > 0)`);
    out.set(Number(m[1]) - 1, Number(m[2]));
  }
  return out;
}

type Flags = Map<string, string>;

const VALUE_FLAGS = new Set([
  'trace',
  'synthetic',
  'sizes',
  'balance',
  'nodes',
  'low',
  'high',
  'bound',
  'table',
  'cache',
  'cache-policy',
  'model',
  'admit',
  'rate',
  'slow',
  'warmup',
  'seed',
  'format',
  'out',
  'servers',
  'keys',
  'removals',
]);

function parseFlags(argv: readonly string[]): { flags: Flags; positional: string[]; help: boolean } {
  const flags: Flags = new Map();
  const positional: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (!VALUE_FLAGS.has(name)) throw new Error(`unknown option --${name}`);
    const value = eq < 0 ? argv[++i] : a.slice(eq + 1);
    if (value === undefined) throw new Error(`--${name} needs a value`);
    if (flags.has(name)) throw new Error(`--${name} given twice`);
    flags.set(name, value);
  }
  return { flags, positional, help };
}

function numberFlag(flags: Flags, name: string, dflt: number, check: (x: number) => boolean, what: string): number {
  const v = flags.get(name);
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === '' || !check(x)) throw new Error(`--${name} must be ${what} (got ${JSON.stringify(v)})`);
  return x;
}

function algorithmParams(flags: Flags): AlgorithmParams {
  const low = numberFlag(flags, 'low', 25, (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1');
  const high = numberFlag(flags, 'high', 65, (x) => Number.isInteger(x) && x > low, 'an integer above --low');
  const bound = numberFlag(flags, 'bound', 1.25, (x) => x > 1 && x <= 100, 'a number above 1');
  const table = flags.has('table') ? numberFlag(flags, 'table', 65_537, (x) => Number.isInteger(x) && x >= 7, 'a prime ≥ 7') : undefined;
  return { low, high, bound, table };
}

/** `portico simulate …`: returns the exit code. */
export function runSimulate(argv: readonly string[], io: Io): number {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv);
    if (parsed.help) {
      io.out(SIMULATE_USAGE);
      return 0;
    }
    if (parsed.positional[0] === 'remap') return runRemap(parsed.flags, io);
    if (parsed.positional.length > 0) throw new Error(`unexpected argument ${JSON.stringify(parsed.positional[0])}`);
    return runReplay(parsed.flags, io);
  } catch (err) {
    io.err(`portico simulate: ${err instanceof Error ? err.message : String(err)}\n(portico simulate --help lists the options)\n`);
    return 2;
  }
}

function loadWorkload(flags: Flags, seed: number): Trace {
  const file = flags.get('trace');
  const synthetic = flags.get('synthetic');
  if ((file === undefined) === (synthetic === undefined)) throw new Error('give exactly one of --trace FILE or --synthetic zipf:…');
  if (file !== undefined) {
    if (flags.has('sizes')) throw new Error('--sizes applies to --synthetic only');
    return parseTrace(readFileSync(file, 'utf8'), file);
  }
  const sizes = flags.has('sizes') ? parseSizes(flags.get('sizes')!) : DEFAULT_SIZES;
  return zipfTrace(parseZipfSpec(synthetic!), sizes, seed);
}

function runReplay(flags: Flags, io: Io): number {
  for (const only of ['servers', 'keys', 'removals']) if (flags.has(only)) throw new Error(`--${only} applies to "simulate remap" only`);
  const seed = numberFlag(flags, 'seed', 1, (x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff, 'an integer ≥ 0');
  const params = algorithmParams(flags);
  const algorithms = resolveAlgorithms(flags.get('balance') ?? 'wrr,hash-uri,lard', params);
  const nodeCounts = parseNodeList(flags.get('nodes') ?? '1..16');
  const cacheBytes = flags.has('cache') ? parseByteSize(flags.get('cache')!) : LARD_PAPER_MODEL.cacheBytes;
  const policy = flags.get('cache-policy') ?? 'gds';
  if (policy !== 'gds' && policy !== 'lru') throw new Error(`--cache-policy must be gds or lru (got ${JSON.stringify(policy)})`);
  let model: ModelParams = { ...LARD_PAPER_MODEL, cacheBytes, cachePolicy: policy };
  if (flags.has('model')) model = parseModelOverrides(flags.get('model')!, model);
  const admitText = flags.get('admit') ?? 'lard';
  if (admitText !== 'lard' && admitText !== 'none' && !/^\d+$/.test(admitText)) throw new Error(`--admit must be lard, none or a number (got ${JSON.stringify(admitText)})`);
  const rateRps = flags.has('rate') ? numberFlag(flags, 'rate', 0, (x) => x > 0 && Number.isFinite(x), 'a positive number') : undefined;
  if (rateRps === undefined && admitText === 'none') throw new Error('--admit none needs --rate (a saturated run needs an admission limit)');
  const slow = flags.has('slow') ? parseSlow(flags.get('slow')!) : undefined;
  const warmup = numberFlag(flags, 'warmup', 0.1, (x) => x >= 0 && x < 1, 'a fraction in [0, 1)');
  const format = flags.get('format') ?? 'table';
  if (format !== 'table' && format !== 'csv') throw new Error(`--format must be table or csv (got ${JSON.stringify(format)})`);
  const outDir = flags.get('out');

  const trace = loadWorkload(flags, seed);
  if (trace.files.length === 0) throw new Error('the trace has no requests');
  const admitFor = (n: number): number => (admitText === 'lard' ? lardAdmissionLimit(n, params.low, params.high) : admitText === 'none' ? 0 : Number(admitText));

  const describe = [
    `workload: ${trace.description}`,
    `model: cache ${formatBytes(model.cacheBytes)} ${model.cachePolicy} per node; CPU ${model.connectMs}+${model.teardownMs} ms per connection + ${model.transmitPer512Ms} ms per 512 B; disk ${model.diskFirstMs} ms + ${model.diskPer4KMs} ms per 4 KB + ${model.diskPer44KMs} ms per further 44 KB`,
    `front end: ${rateRps === undefined ? 'saturated (requests fed as fast as admitted)' : `Poisson arrivals at ${rateRps} req/s`}; admission ${admitText === 'lard' ? `(n-1)*${params.high}+${params.low}-1` : admitText}${slow !== undefined ? `; slow nodes ${[...slow].map(([k, f]) => `node${k + 1}×${f}`).join(', ')}` : ''}; warm-up ${warmup * 100}%; seed ${seed}`,
    `algorithms: ${algorithms.map((a) => `${a.label} = ${a.config}`).join('; ')}`,
  ];
  if (format === 'table') {
    for (const line of describe) io.out(`# ${line}\n`);
    io.out(tableHeader() + '\n');
  } else {
    io.out(csvHeader() + '\n');
  }

  const results: SimResult[] = [];
  for (const n of nodeCounts) {
    for (const algorithm of algorithms) {
      const r = simulate(trace, { nodes: n, algorithm, model, admit: admitFor(n), rateRps, slow, warmup, seed });
      results.push(r);
      io.out((format === 'table' ? tableRow(r) : csvRow(r)) + '\n');
    }
  }

  if (outDir !== undefined) {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'results.csv'), [csvHeader(), ...results.map(csvRow)].join('\n') + '\n');
    writeFileSync(join(outDir, 'nodes.csv'), nodesCsv(results));
    writeFileSync(join(outDir, 'README.txt'), describe.join('\n') + '\n');
    const subtitle = rateRps === undefined ? '' : `${rateRps} req/s`;
    for (const [name, svg] of charts(results, subtitle)) writeFileSync(join(outDir, name), svg);
  }
  return 0;
}

function runRemap(flags: Flags, io: Io): number {
  for (const f of flags.keys()) {
    if (!['servers', 'keys', 'removals', 'balance', 'table', 'bound', 'seed', 'format', 'out'].includes(f)) throw new Error(`--${f} does not apply to "simulate remap"`);
  }
  const params = algorithmParams(flags);
  const servers = numberFlag(flags, 'servers', 100, (x) => Number.isInteger(x) && x >= 2 && x <= 10_000, 'an integer from 2 to 10000');
  const keys = numberFlag(flags, 'keys', 100_000, (x) => Number.isInteger(x) && x >= 1 && x <= 10_000_000, 'an integer from 1 to 10000000');
  const removals = numberFlag(flags, 'removals', 10, (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1');
  const seed = numberFlag(flags, 'seed', 1, (x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff, 'an integer ≥ 0');
  const format = flags.get('format') ?? 'table';
  if (format !== 'table' && format !== 'csv') throw new Error(`--format must be table or csv (got ${JSON.stringify(format)})`);
  const algorithms = resolveAlgorithms(flags.get('balance') ?? 'hash-maglev,hash-ring,hash-jump,hash-bounded', params);
  const outDir = flags.get('out');
  const tableSize = params.table ?? 65_537;

  const pct = (x: number): string => (x * 100).toFixed(2);
  const results: RemapResult[] = [];
  const head = ['algorithm', 'keys max/avg', 'keys min/avg', 'moved on removal %', 'must move %', 'ideal 1/N %', 'max/avg after', 'moved on addition %', 'ideal 1/(N+1) %'];
  const widths = [18, 12, 12, 18, 11, 11, 13, 19, 15];
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  if (format === 'table') {
    io.out(`# ${servers} servers, ${keys} keys placed in order and held (load = keys per server); ${Math.min(removals, servers)} single-server failures; seed ${seed}\n`);
    io.out(`# algorithms: ${algorithms.map((a) => `${a.label} = ${a.config}`).join('; ')}\n`);
    io.out(row(head) + '\n');
  } else {
    io.out('algorithm,servers,keys,keysMaxAvg,keysMinAvg,removeMoved,removeNecessary,removeIdeal,keysMaxAvgAfterRemoval,addMoved,addIdeal\n');
  }
  const csvLine = (r: RemapResult): string =>
    [r.algorithm, r.servers, r.keys, r.keysMaxAvg, r.keysMinAvg, r.removeMoved, r.removeNecessary, r.removeIdeal, r.keysMaxAvgAfterRemoval, r.addMoved, r.addIdeal].map(csvCell).join(',');
  for (const alg of algorithms) {
    const r = remap(alg, { servers, keys, removals, seed });
    results.push(r);
    io.out(
      (format === 'table'
        ? row([r.algorithm, r.keysMaxAvg.toFixed(3), r.keysMinAvg.toFixed(3), pct(r.removeMoved), pct(r.removeNecessary), pct(r.removeIdeal), r.keysMaxAvgAfterRemoval.toFixed(3), pct(r.addMoved), pct(r.addIdeal)])
        : csvLine(r)) + '\n',
    );
  }
  const usesMaglev = algorithms.some((a) => (a.options as { method?: string } | undefined)?.method === 'maglev');
  let tableLine: string | undefined;
  if (usesMaglev) {
    const t = maglevTableStats(servers, tableSize);
    tableLine =
      `Maglev table M=${t.tableSize}, N=${t.servers}: entries per server ${t.minEntries}..${t.maxEntries} (max/avg ${t.maxAvg.toFixed(4)}); ` +
      `removing one server (each in turn) changes ${pct(t.removeChangedMean)}% of entries on average (max ${pct(t.removeChangedMax)}%), ` +
      `of which ${pct(t.removeNecessaryMean)}% were the removed server's; ${pct(t.removeExcessMean)}% changed owner needlessly`;
    // a comment line would break CSV on standard output: there it goes to standard error
    (format === 'table' ? io.out : io.err)(`# ${tableLine}\n`);
  }
  if (outDir !== undefined) {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(
      join(outDir, 'remap.csv'),
      ['algorithm,servers,keys,keysMaxAvg,keysMinAvg,removeMoved,removeNecessary,removeIdeal,keysMaxAvgAfterRemoval,addMoved,addIdeal', ...results.map(csvLine)].join('\n') + '\n',
    );
    if (tableLine !== undefined) writeFileSync(join(outDir, 'maglev-table.txt'), tableLine + '\n');
    writeFileSync(
      join(outDir, 'remap.svg'),
      barChart({
        title: `Keys moved when one of ${servers} servers fails`,
        yLabel: '% of keys',
        categories: results.map((r) => r.algorithm),
        series: [
          { name: 'moved', values: results.map((r) => r.removeMoved * 100) },
          { name: 'must move', values: results.map((r) => r.removeNecessary * 100) },
          { name: 'ideal 1/N', values: results.map((r) => r.removeIdeal * 100) },
        ],
      }),
    );
  }
  return 0;
}
