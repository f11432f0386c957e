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
      // The subscription is made again before the store counts as up: one message published
      // now is delivered (a node that reads the store when it is up and then waits for the
      // channel misses nothing).
      const other = new RedisStore({ url: redis!.url });
      await other.connect();
      try {
        await other.publish('resub', 'after restart');
        for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      } finally {
        await other.close();
      }
      assert.deepEqual(got, ['after restart'], 'the one message published once the store was up was not delivered');
      assert.deepEqual(states.slice(0, 3), [true, false, true]);
      await s.set('y', '1');
      assert.equal(await s.get('y'), '1');
    } finally {
      ac.abort();
      await s.close();
    }
  });

  it('counts as down while its subscriber is gone, and up again once subscribed again', async () => {
    const states: boolean[] = [];
    const s = new RedisStore({ url: redis!.url, onState: (up) => states.push(up) });
    await s.connect();
    const got: string[] = [];
    const ac = new AbortController();
    const admin = new RedisStore({ url: redis!.url });
    await admin.connect();
    try {
      await s.subscribe('subkill', (m) => got.push(m), ac.signal);
      assert.deepEqual(states, [true]);
      // Only the subscriber's connection is cut; the command connection stays.
      const killed = await admin.commandConnection().client('KILL', 'TYPE', 'pubsub');
      assert.ok(Number(killed) >= 1, 'no subscriber connection to kill');
      for (let i = 0; i < 500 && states.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(states, [true, false, true], 'the subscriber loss was not seen as an outage and a return');
      assert.equal(s.isUp, true);
      await admin.publish('subkill', 'after the subscriber came back');
      for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, ['after the subscriber came back']);
    } finally {
      ac.abort();
      await admin.close();
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
