import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limitShare } from './limit-share.js';

test('each of n workers gets floor(limit / n), at least 1; 0 stays unlimited; one worker keeps the limit', () => {
  assert.equal(limitShare(4, 2), 2);
  assert.equal(limitShare(5, 2), 2);
  assert.equal(limitShare(10_000, 3), 3333);
  assert.equal(limitShare(1, 2), 1);
  assert.equal(limitShare(3, 4), 1);
  assert.equal(limitShare(0, 8), 0);
  assert.equal(limitShare(7, 1), 7);
  for (let n = 1; n <= 16; n++) {
    for (let limit = 1; limit <= 100; limit++) {
      const s = limitShare(limit, n);
      assert.ok(s >= 1);
      if (limit >= n) assert.ok(s * n <= limit, `${limit}/${n}`);
      else assert.equal(s, 1);
    }
  }
});
