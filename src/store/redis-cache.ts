/**
 * The shared tier of the HTTP cache (`caches[].shared`) in Redis: stored responses as binary
 * values, found by primary and variant key, purged by primary key, URL, path prefix and tag. The
 * cache (src/cache/shared.ts) decides what goes here and counts the failures; this is the layout.
 *
 * Keys, under the store's prefix and `cache:NAME:`:
 *
 *   o:{pk}\0{variant}  the object (head, policy and body as one value), expiring with the object
 *   v:{pk}             the Vary field names of the key's variants (`,`-joined, '' for none)
 *   k:{pk}             set of the key's variant keys (to remove every variant)
 *   t:{tag}            set of `{pk}\0{variant}` of the objects whose Surrogate-Key lists the tag
 *   x                  sorted set, every score 0: `{target}\0{host}` of each stored key, so that
 *                      a URL (on every host) and a path prefix are found by ZRANGEBYLEX, in time
 *                      logarithmic in the keys plus those found, never by a SCAN of the keyspace
 *   e                  sorted set, the same members scored by when their last object expires: each
 *                      write removes up to 64 expired members of x and e (x stays near the live keys)
 *
 * `v:`, `k:` and `t:` expire with the longest-lived object that they name. A primary key is the
 * host followed by the target, which starts with `/` (src/cache/key.ts). Every write and purge is
 * one Lua script (atomic, one round trip); a purge of many keys goes in batches of 256 so that no
 * script holds Redis for long.
 */
import type { Redis } from 'ioredis';
import type { RedisStore } from './redis-store.js';

const STORE_SCRIPT = `
local function extend(k, ttl)
  local t = redis.call('PTTL', k)
  if t >= 0 and t >= ttl then return end
  redis.call('PEXPIRE', k, ttl)
end
local ttl = tonumber(ARGV[2])
local old = redis.call('GET', KEYS[2])
if old and old ~= ARGV[3] then
  -- The server now varies on other fields: the variants stored under the old ones cannot be selected.
  for _, v in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('DEL', ARGV[5] .. v) end
  redis.call('DEL', KEYS[3])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SET', KEYS[2], ARGV[3], 'KEEPTTL')
extend(KEYS[2], ttl)
redis.call('SADD', KEYS[3], ARGV[4])
extend(KEYS[3], ttl)
local until_ms = tonumber(ARGV[7]) + ttl
redis.call('ZADD', KEYS[4], 0, ARGV[6])
local s = redis.call('ZSCORE', KEYS[5], ARGV[6])
if not s or tonumber(s) < until_ms then redis.call('ZADD', KEYS[5], until_ms, ARGV[6]) end
for i = 6, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[8])
  extend(KEYS[i], ttl)
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[7], 'LIMIT', 0, 64)
for _, m in ipairs(dead) do
  redis.call('ZREM', KEYS[4], m)
  redis.call('ZREM', KEYS[5], m)
end
return 1`;

/**
 * Remove every variant of the keys given as members of x (`{target}\0{host}`), or found in x
 * between ARGV[2] and ARGV[3] (ZRANGEBYLEX bounds, at most 256 of them). KEYS: x, e. ARGV[1]: the
 * key prefix of this cache (store prefix + `cache:NAME:`). Returns {objects removed, members seen}.
 */
const PURGE_KEYS_SCRIPT = `
local base = ARGV[1]
local members
if ARGV[2] == 'range' then
  members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[3], ARGV[4], 'LIMIT', 0, 256)
else
  members = {}
  for i = 3, #ARGV do members[#members + 1] = ARGV[i] end
end
local n = 0
for _, m in ipairs(members) do
  local z = string.find(m, '\\0', 1, true)
  local pk = string.sub(m, z + 1) .. string.sub(m, 1, z - 1)
  local kset = base .. 'k:' .. pk
  for _, v in ipairs(redis.call('SMEMBERS', kset)) do n = n + redis.call('DEL', base .. 'o:' .. pk .. '\\0' .. v) end
  redis.call('DEL', kset, base .. 'v:' .. pk)
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
return {n, #members}`;

/** Remove up to 256 of the objects a tag names. KEYS: t:{tag}. ARGV[1]: the cache's key prefix. */
const PURGE_TAG_SCRIPT = `
local ids = redis.call('SPOP', KEYS[1], 256)
local n = 0
for _, id in ipairs(ids) do n = n + redis.call('DEL', ARGV[1] .. 'o:' .. id) end
return {n, #ids}`;

interface CacheCommands {
  porticoCacheStore(...args: (string | Buffer | number)[]): Promise<number>;
  porticoCachePurgeKeys(...args: (string | Buffer)[]): Promise<[number, number]>;
  porticoCachePurgeTag(...args: string[]): Promise<[number, number]>;
}

/** What a lookup found: the key's Vary names and, when they are none, its one object. */
export interface SharedLookup {
  readonly vary: string;
  readonly blob: Buffer | undefined;
}

/** The Redis side of the cache's shared tier (it fits src/cache/shared.ts's SharedBackend). */
export class RedisCacheBackend {
  private readonly r: Redis & CacheCommands;

  constructor(private readonly store: RedisStore) {
    const r = store.commandConnection();
    if (typeof (r as Partial<CacheCommands>).porticoCacheStore !== 'function') {
      r.defineCommand('porticoCacheStore', { lua: STORE_SCRIPT });
      r.defineCommand('porticoCachePurgeKeys', { numberOfKeys: 2, lua: PURGE_KEYS_SCRIPT });
      r.defineCommand('porticoCachePurgeTag', { numberOfKeys: 1, lua: PURGE_TAG_SCRIPT });
    }
    this.r = r as Redis & CacheCommands;
  }

  get isUp(): boolean {
    return this.store.isUp;
  }

  /** The key's Vary names and its object without a variant, in one round trip; undefined: not stored. */
  async lookup(cache: string, pk: string): Promise<SharedLookup | undefined> {
    const base = 'cache:' + cache + ':';
    const [vary, blob] = await this.r.mgetBuffer(base + 'v:' + pk, base + 'o:' + pk + '\u0000');
    if (vary === null || vary === undefined) return undefined;
    return { vary: vary.toString('latin1'), blob: blob ?? undefined };
  }

  /** One variant's object. */
  async variant(cache: string, pk: string, variant: string): Promise<Buffer | undefined> {
    return (await this.r.getBuffer('cache:' + cache + ':o:' + pk + '\u0000' + variant)) ?? undefined;
  }

  /** Store one object for `ttlMs`; `vary` its Vary names (`,`-joined), `tags` its Surrogate-Key tags. */
  async put(cache: string, pk: string, variant: string, vary: string, tags: readonly string[], blob: Buffer, ttlMs: number): Promise<void> {
    const base = 'cache:' + cache + ':';
    const { host, target } = split(pk);
    const keys = [base + 'o:' + pk + '\u0000' + variant, base + 'v:' + pk, base + 'k:' + pk, base + 'x', base + 'e'];
    for (const t of tags) keys.push(base + 't:' + t);
    const objectsOfKey = this.store.prefix + base + 'o:' + pk + '\u0000';
    await this.r.porticoCacheStore(keys.length, ...keys, blob, Math.max(1, Math.ceil(ttlMs)), vary, variant, objectsOfKey, target + '\u0000' + host, Date.now(), pk + '\u0000' + variant);
  }

  /** Every variant of one primary key (`host` + target). */
  async purgeKey(cache: string, pk: string): Promise<number> {
    const { host, target } = split(pk);
    const base = 'cache:' + cache + ':';
    const [n] = await this.r.porticoCachePurgeKeys(base + 'x', base + 'e', this.store.prefix + base, 'members', target + '\u0000' + host);
    return n;
  }

  /** Every variant of one target (path and query) on every host. */
  purgeTarget(cache: string, target: string): Promise<number> {
    return this.purgeRange(cache, '[' + target + '\u0000', '(' + target + '\u0001');
  }

  /** Every object whose target starts with `prefix`. */
  purgePrefix(cache: string, prefix: string): Promise<number> {
    // 0xff, a byte no UTF-8 text holds: every target that starts with the prefix sorts below it.
    return this.purgeRange(cache, '[' + prefix, Buffer.concat([Buffer.from('(' + prefix), Buffer.from([0xff])]));
  }

  /** Every object whose Surrogate-Key lists `tag`. */
  async purgeTag(cache: string, tag: string): Promise<number> {
    const base = 'cache:' + cache + ':';
    let total = 0;
    for (;;) {
      const [n, seen] = await this.r.porticoCachePurgeTag(base + 't:' + tag, this.store.prefix + base);
      total += n;
      if (seen < 256) return total;
    }
  }

  publish(channel: string, msg: string): Promise<void> {
    return this.store.publish(channel, msg);
  }

  subscribe(channel: string, onMessage: (msg: string) => void, signal: AbortSignal): Promise<void> {
    return this.store.subscribe(channel, onMessage, signal);
  }

  private async purgeRange(cache: string, min: string, max: string | Buffer): Promise<number> {
    const base = 'cache:' + cache + ':';
    let total = 0;
    for (;;) {
      const [n, seen] = await this.r.porticoCachePurgeKeys(base + 'x', base + 'e', this.store.prefix + base, 'range', min, max);
      total += n;
      if (seen < 256) return total;
    }
  }
}

/** A primary key's host and target (the target starts at the first `/`). */
function split(pk: string): { host: string; target: string } {
  const slash = pk.indexOf('/');
  return slash < 0 ? { host: pk, target: '' } : { host: pk.slice(0, slash), target: pk.slice(slash) };
}
