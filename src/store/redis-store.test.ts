import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { redisSkip, startRedis, type RedisServer } from '../test-helpers/redis.js';
import { RedisStore } from './redis-store.js';
import { stateStoreSuite } from './state-store.suite.js';

const skip = redisSkip();
let redis: RedisServer | undefined;

before(async () => {
  if (skip === undefined) redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

stateStoreSuite(
  'RedisStore',
  async () => {
    const s = new RedisStore({ url: redis!.url });
    await s.connect();
    return s;
  },
  { skip },
);

describe('RedisStore', { skip: skip ?? false }, () => {
  it('keeps keys and channels of two prefixes apart on one server', async () => {
    const a = new RedisStore({ url: `${redis!.url}?prefix=a:` });
    const b = new RedisStore({ url: `${redis!.url}?prefix=b:` });
    await Promise.all([a.connect(), b.connect()]);
    try {
      await a.set('k', 'from a');
      assert.equal(await b.get('k'), undefined);
      await b.set('k', 'from b');
      assert.equal(await a.get('k'), 'from a');
      const got: string[] = [];
      const ac = new AbortController();
      await b.subscribe('ch', (m) => got.push(m), ac.signal);
      await a.publish('ch', 'not for b');
      await b.publish('ch', 'for b');
      for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(got, ['for b']);
      ac.abort();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('fails fast and counts errors while Redis is down, then works and resubscribes when it is back', async () => {
    const states: boolean[] = [];
    const s = new RedisStore({ url: redis!.url, onState: (up) => states.push(up) });
    await s.connect();
    const got: string[] = [];
    const ac = new AbortController();
    try {
      await s.subscribe('resub', (m) => got.push(m), ac.signal);
      assert.equal(s.isUp, true);
      await redis!.kill();
      for (let i = 0; i < 200 && s.isUp; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.isUp, false, 'the store did not notice that Redis is gone');
      const t0 = performance.now();
      await assert.rejects(s.get('x'));
      await assert.rejects(s.incr('x', 1, 1000));
      const waited = performance.now() - t0;
      // Not held for the command timeout (500 ms each) or the reconnection.
      assert.ok(waited < 400, `two failed calls took ${waited.toFixed(0)} ms`);
      assert.equal(s.errors().get('get'), 1);
      assert.equal(s.errors().get('incr'), 1);

      await redis!.restart();
      for (let i = 0; i < 500 && !s.isUp; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.isUp, true, 'the store did not reconnect within 5 s');
      // The subscription is made again on the new connection.
      const other = new RedisStore({ url: redis!.url });
      await other.connect();
      try {
        for (let i = 0; i < 200 && got.length === 0; i++) {
          await other.publish('resub', 'after restart');
          await new Promise((r) => setTimeout(r, 25));
        }
      } finally {
        await other.close();
      }
      assert.ok(got.includes('after restart'), 'no message after the reconnection');
      assert.deepEqual(states.slice(0, 3), [true, false, true]);
      await s.set('y', '1');
      assert.equal(await s.get('y'), '1');
    } finally {
      ac.abort();
      await s.close();
    }
  });

  it('shows no password in its display URL and refuses other schemes', () => {
    const s = new RedisStore({ url: 'redis://:secret@127.0.0.1:1/0?prefix=x:' });
    assert.ok(!s.displayUrl.includes('secret'));
    assert.equal(s.prefix, 'x:');
    void s.close();
    assert.throws(() => new RedisStore({ url: 'http://127.0.0.1:1/' }));
  });
});
