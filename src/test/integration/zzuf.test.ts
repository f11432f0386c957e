import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { missingBinary } from '../../test-helpers/certs.js';
import { runZzuf } from '../../test-helpers/zzuf.js';

/**
 * The bounded part of the black-box mutation run (the long one is `npm run fuzz`, docs/fuzzing.md):
 * recorded HTTP requests and DNS queries mutated by zzuf against a Portico process. Skipped, with
 * the reason shown, where zzuf is not installed; under CI=true a missing zzuf is a failure.
 */
const skip = missingBinary('zzuf');
const SEEDS = Number(process.env.PORTICO_ZZUF_SEEDS ?? 15);

describe('black-box mutation fuzzing with zzuf', { skip: skip ?? false }, () => {
  it(`${SEEDS} seeds of mutated HTTP requests and DNS queries: no crash, no hang, still serving, no memory growth`, { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-zzuf-'));
    try {
      const r = await runZzuf({ firstSeed: 1, seeds: SEEDS, dir });
      process.stdout.write(
        `# zzuf: ${r.sent} inputs over ${r.seedsRun} seeds; outcomes ${JSON.stringify([...r.outcomes].sort())}; rss ${(r.rssAfterWarmup / 1048576).toFixed(1)} -> ${(r.rssEnd / 1048576).toFixed(1)} MB (peak ${(r.rssPeak / 1048576).toFixed(1)})\n`,
      );
      assert.equal(r.crashed, undefined, r.crashed);
      assert.deepEqual(r.hangs, [], 'connections neither answered nor closed past the deadlines');
      assert.deepEqual(r.unserved, [], 'valid requests not served during the run');
      assert.equal(r.seedsRun, SEEDS);
      // Some mutations stay valid and are served, some are refused: the run exercised both paths.
      assert.ok((r.outcomes.get('200') ?? 0) > 0 && (r.outcomes.get('400') ?? 0) > 0, JSON.stringify([...r.outcomes]));
      // A leak of even a few KB per input would show; the heap settling after warm-up stays well below this.
      assert.ok(r.rssEnd - r.rssAfterWarmup < 40 * 1048576, `resident memory grew by ${((r.rssEnd - r.rssAfterWarmup) / 1048576).toFixed(1)} MB`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
