import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../test-helpers/origins.js';
import { redisSkip, startRedis, type RedisServer } from '../test-helpers/redis.js';
import { RedisCacheBackend } from './redis-cache.js';
import { RedisStore } from './redis-store.js';

const skip = redisSkip();

describe('RedisCacheBackend (the cache shared tier layout)', { skip: skip ?? false }, () => {
  let redis: RedisServer;
  let store: RedisStore;
  let b: RedisCacheBackend;
  const blob = (s: string): Buffer => Buffer.from(s);

  before(async () => {
    redis = await startRedis();
    // Generous: the test is about the layout, not timeouts, and a loaded machine answers slowly.
    store = new RedisStore({ url: `${redis.url}?prefix=t:`, commandTimeoutMs: 10_000 });
    await store.connect();
    b = new RedisCacheBackend(store);
  });
  after(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('finds an object without Vary in one lookup, a variant by its key; another cache name is apart', async () => {
    await b.put('c1', 'h/a', '', '', [], blob('A'), 60_000);
    const l = await b.lookup('c1', 'h/a');
    assert.equal(l?.vary, '');
    assert.equal(l?.blob?.toString(), 'A');
    assert.equal(await b.lookup('c2', 'h/a'), undefined);
    assert.equal(await b.lookup('c1', 'other/a'), undefined);

    await b.put('c1', 'h/v', 'accept-language:en', 'accept-language', [], blob('en'), 60_000);
    await b.put('c1', 'h/v', 'accept-language:fr', 'accept-language', [], blob('fr'), 60_000);
    const v = await b.lookup('c1', 'h/v');
    assert.equal(v?.vary, 'accept-language');
    assert.equal(v?.blob, undefined);
    assert.equal((await b.variant('c1', 'h/v', 'accept-language:fr'))?.toString(), 'fr');
    // The server now varies on another field: the old variants can no longer be selected and go.
    await b.put('c1', 'h/v', 'accept:text/plain', 'accept', [], blob('t'), 60_000);
    assert.equal(await b.variant('c1', 'h/v', 'accept-language:en'), undefined);
    assert.equal((await b.lookup('c1', 'h/v'))?.vary, 'accept');
  });

  it('objects expire with their TTL; the lex index drops expired keys on later writes', async () => {
    await b.put('exp', 'h/short', '', '', ['t1'], blob('s'), 50);
    const r = store.commandConnection();
    assert.equal(await r.zcard('cache:exp:x'), 1);
    await waitFor(async () => (await b.lookup('exp', 'h/short')) === undefined, 10_000, 'the object expired');
    await b.put('exp', 'h/long', '', '', [], blob('l'), 60_000);
    assert.deepEqual(await r.zrange('cache:exp:x', 0, -1), ['/long\u0000h']);
    assert.equal(await r.exists('cache:exp:t:t1'), 0, 'the tag set expired with its object');
  });

  it('purges every variant of a key on one host, a target on every host, a prefix and a tag, in batches past 256', async () => {
    await b.put('p', 'one/x', 'a:1', 'a', [], blob('1'), 60_000);
    await b.put('p', 'one/x', 'a:2', 'a', [], blob('2'), 60_000);
    await b.put('p', 'two/x', '', '', [], blob('3'), 60_000);
    await b.put('p', 'two/xy', '', '', [], blob('4'), 60_000);
    assert.equal(await b.purgeKey('p', 'one/x'), 2);
    assert.equal(await b.variant('p', 'one/x', 'a:1'), undefined);
    assert.equal((await b.lookup('p', 'two/x'))?.blob?.toString(), '3');
    await b.put('p', 'one/x', '', '', [], blob('5'), 60_000);
    assert.equal(await b.purgeTarget('p', '/x'), 2, '/x on both hosts, not /xy');
    assert.equal((await b.lookup('p', 'two/xy'))?.blob?.toString(), '4');

    const puts: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) puts.push(b.put('p', `h/dir/${i}`, '', '', ['many', `only-${i}`], blob(String(i)), 60_000));
    for (let i = 0; i < 10; i++) puts.push(b.put('p', `h/dirt/${i}`, '', '', ['many'], blob(String(i)), 60_000));
    await Promise.all(puts);
    assert.equal(await b.purgePrefix('p', '/dir/'), 300);
    assert.equal((await b.lookup('p', 'h/dirt/3'))?.blob?.toString(), '3');
    assert.equal(await b.purgeTag('p', 'only-7'), 0, 'already purged');
    assert.equal(await b.purgeTag('p', 'many'), 10);
    assert.equal((await b.lookup('p', 'h/dirt/3'))?.blob, undefined);
    assert.equal(await b.purgePrefix('p', '/'), 1, 'two/xy is the one object left');
    assert.equal(await store.commandConnection().zcard('cache:p:x'), 0);
  });

  it('a target with bytes above 0x7f sorts under its prefix', async () => {
    await b.put('u', 'h/é/ü', '', '', [], blob('u'), 60_000);
    assert.equal(await b.purgePrefix('u', '/é/'), 1);
  });
});
