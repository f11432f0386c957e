import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { AdminError } from './admin-error.js';
import { thinkTime } from './api.js';

describe('GET /api/v1/pools/{pool}/laws?z=', () => {
  it('z is a duration (a bare number is ms), 0 when absent; anything else is a 400 with the reason', () => {
    assert.equal(thinkTime(null), 0);
    assert.equal(thinkTime(''), 0);
    assert.equal(thinkTime('250'), 250);
    assert.equal(thinkTime('2s'), 2000);
    assert.equal(thinkTime('1.5s'), 1500);
    for (const bad of ['soon', '-1s', '2h']) {
      assert.throws(
        () => thinkTime(bad),
        (err: unknown) => err instanceof AdminError && err.status === 400 && /z \(think time\) must be a duration from 0 to 1h/.test(err.message),
        bad,
      );
    }
  });
});
