import type { Parameters } from 'fast-check';

/**
 * How long and from which seed the fuzz properties run (docs/fuzzing.md).
 *
 * In `npm test`: `runs` cases from a fixed seed, the same every time, so a failure reproduces.
 * Under `npm run fuzz` (scripts/fuzz.mjs sets FUZZ_MS_PER_PROPERTY): as many cases as fit that
 * time, from FUZZ_SEED or a fresh seed that fast-check prints with any counterexample.
 */
export function fuzzParams<T>(runs: number): Parameters<T> {
  const budgetMs = Number(process.env.FUZZ_MS_PER_PROPERTY ?? 0);
  const seedEnv = process.env.FUZZ_SEED;
  if (budgetMs > 0) {
    return {
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: budgetMs,
      markInterruptAsFailure: false,
      includeErrorInReport: true,
      seed: seedEnv !== undefined ? Number(seedEnv) : Date.now() ^ (Math.random() * 0x7fffffff),
    };
  }
  return { numRuns: runs, seed: seedEnv !== undefined ? Number(seedEnv) : 20261206, includeErrorInReport: true };
}

/** A per-test timeout that covers a fuzz run's budget (npm test's own runs take seconds). */
export function fuzzTimeout(ms = 120_000): number {
  const budgetMs = Number(process.env.FUZZ_MS_PER_PROPERTY ?? 0);
  return budgetMs > 0 ? budgetMs * 4 + 120_000 : ms;
}
