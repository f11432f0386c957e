// `npm run fuzz`: the fuzz properties of `npm test` run longer, from a fresh seed, then the zzuf
// black-box run against a Portico process, all within FUZZ_SECONDS (default 60). See docs/fuzzing.md.
// Build first (npm run fuzz does). Exits non-zero on any counterexample, crash, hang or growth.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const budgetMs = Number(process.env.FUZZ_SECONDS ?? 60) * 1000;
if (!(budgetMs > 0)) {
  console.error('FUZZ_SECONDS must be a positive number of seconds');
  process.exit(2);
}

/** The compiled *.fuzz.test.js files and the end-to-end fuzz test, and how many fuzz properties (fuzzParams calls) each holds. */
function fuzzFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...fuzzFiles(p));
    else if (e.name.endsWith('.fuzz.test.js') || p === join(dist, 'test', 'integration', 'fuzz.test.js')) out.push({ file: p, properties: (readFileSync(p, 'utf8').match(/fuzzParams\(/g) ?? []).length });
  }
  return out;
}

const files = fuzzFiles(dist);
if (files.length === 0) {
  console.error('no dist/**/*.fuzz.test.js: run `npm run build` first');
  process.exit(2);
}
const properties = files.reduce((n, f) => n + f.properties, 0);
// Three quarters of the budget to the properties, the rest to zzuf.
const perProperty = Math.max(1000, Math.floor((budgetMs * 0.75) / properties));
const seed = process.env.FUZZ_SEED ?? String(Date.now() % 2_147_483_647);
console.log(`fuzz: ${properties} properties in ${files.length} files, ${(perProperty / 1000).toFixed(1)} s each, seed ${seed} (FUZZ_SEED=${seed} repeats it)`);

const run = spawnSync(process.execPath, ['--test', `--test-timeout=${perProperty * 20 + 300_000}`, ...files.map((f) => f.file)], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_MS_PER_PROPERTY: String(perProperty), FUZZ_SEED: seed },
});
let failed = run.status !== 0;

const zzufMs = Math.max(5000, Math.floor(budgetMs * 0.25));
const haveZzuf = spawnSync('zzuf', ['-V'], { stdio: 'ignore' }).error === undefined;
if (!haveZzuf) {
  console.error('fuzz: zzuf is not installed (apt-get install zzuf): the black-box run is skipped');
  failed ||= process.env.CI === 'true';
} else {
  const { runZzuf } = await import(join(dist, 'test-helpers', 'zzuf.js'));
  const firstSeed = Number(process.env.FUZZ_ZZUF_SEED ?? (Number(seed) % 1_000_000) + 1);
  const dir = mkdtempSync(join(tmpdir(), 'portico-zzuf-'));
  try {
    console.log(`fuzz: zzuf from seed ${firstSeed} for ${(zzufMs / 1000).toFixed(0)} s (FUZZ_ZZUF_SEED=${firstSeed} repeats it)`);
    const r = await runZzuf({ firstSeed, seeds: Number.MAX_SAFE_INTEGER, budgetMs: zzufMs, dir, progress: (l) => console.log(l) });
    const grew = r.rssEnd - r.rssAfterWarmup;
    console.log(`fuzz: zzuf sent ${r.sent} inputs over seeds ${firstSeed}..${r.lastSeed}; outcomes ${JSON.stringify([...r.outcomes].sort())}`);
    console.log(`fuzz: resident memory ${(r.rssAfterWarmup / 1048576).toFixed(1)} MB after the first seed, ${(r.rssEnd / 1048576).toFixed(1)} MB at the end (peak ${(r.rssPeak / 1048576).toFixed(1)})`);
    const problems = [
      ...(r.crashed !== undefined ? [`crash: ${r.crashed}`] : []),
      ...r.hangs.map((h) => `hang: ${h}`),
      ...r.unserved.map((u) => `not serving: ${u}`),
      ...(grew > 40 * 1048576 ? [`memory grew by ${(grew / 1048576).toFixed(1)} MB`] : []),
    ];
    for (const p of problems) console.error(`fuzz: ${p}`);
    failed ||= problems.length > 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(failed ? 'fuzz: FAILED' : 'fuzz: no counterexample, crash, hang or growth');
process.exit(failed ? 1 : 0);
