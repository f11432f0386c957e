import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { flagsToApply, HEAP_FLAGS } from './heap-flags.js';

describe('heap flags', () => {
  it('applies what node was not told, and leaves a flag node was given either way', () => {
    assert.deepEqual(flagsToApply(HEAP_FLAGS, []), ['--no-allocation-site-pretenuring']);
    assert.deepEqual(flagsToApply(HEAP_FLAGS, ['--trace-gc']), ['--no-allocation-site-pretenuring']);
    assert.deepEqual(flagsToApply(HEAP_FLAGS, ['--allocation-site-pretenuring']), []);
    assert.deepEqual(flagsToApply(HEAP_FLAGS, ['--allocation_site_pretenuring']), []);
    assert.deepEqual(flagsToApply(HEAP_FLAGS, ['--no-allocation-site-pretenuring']), []);
    assert.deepEqual(flagsToApply(['--max-semi-space-size=16'], ['--max-semi-space-size=64']), []);
  });
});
