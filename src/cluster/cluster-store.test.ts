import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import '../app/listener-kinds.js';
import { validateConfig } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import { freePort } from '../test-helpers/origins.js';
import { redisSkip, startRedis } from '../test-helpers/redis.js';
import { ClusterStore } from './cluster-store.js';

const skip = redisSkip();

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string) => void lines.push(`${level} ${msg}`);
  return { lines, error: rec('error'), warn: rec('warn'), info: rec('info'), debug: rec('debug') };
}

async function sample(cs: ClusterStore, name: string): Promise<number> {
  const m = cs.metrics().find((x) => x.name === name)!;
  const got = await m.get();
  return got.values.reduce((a, v) => a + v.value, 0);
}

describe('cluster.store', () => {
  it('a redis:// store is accepted by the configuration', () => {
    const c = validateConfig({ cluster: { store: 'redis://127.0.0.1:6379/0' }, listeners: [], pools: [] });
    assert.equal(c.cluster.store, 'redis://127.0.0.1:6379/0');
  });

  it('Portico starts when Redis does not answer, counts it, and connects (and resynchronises) when it is back', { skip: skip ?? false }, async () => {
    const port = await freePort();
    const log = recordingLog();
    const cs = new ClusterStore({ url: `redis://127.0.0.1:${port}/0`, log, connectWaitMs: 1000 });
    let reconnected = 0;
    cs.onReconnect(() => reconnected++);
    const t0 = performance.now();
    await cs.start();
    assert.ok(performance.now() - t0 < 3000, 'start waited too long for a Redis that is not there (connectWaitMs 1000)');
    assert.equal(await sample(cs, 'portico_store_up'), 0);
    assert.ok((await sample(cs, 'portico_store_errors_total')) >= 1, 'the failed connection is not counted');
    assert.ok(log.lines.some((l) => l.startsWith('warn') && l.includes('unreachable')), log.lines.join('\n'));
    await assert.rejects(cs.store.get('k'));

    // A redis-server on that very port: the store connects by itself.
    const { spawn } = await import('node:child_process');
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 500 && !cs.store.isUp; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(cs.store.isUp, true, 'no connection within 5 s of Redis starting');
      assert.equal(await sample(cs, 'portico_store_up'), 1);
      assert.equal(reconnected, 1);
      await cs.store.set('k', 'v');
      assert.equal(await cs.store.get('k'), 'v');
    } finally {
      await cs.stop();
      child.kill('SIGKILL');
    }
  });

  it('logs store failures at most every 10 s', { skip: skip ?? false }, async () => {
    const redis = await startRedis();
    const log = recordingLog();
    const cs = new ClusterStore({ url: redis.url, log });
    await cs.start();
    try {
      await redis.kill();
      for (let i = 0; i < 200 && cs.store.isUp; i++) await new Promise((r) => setTimeout(r, 10));
      for (let i = 0; i < 50; i++) await cs.store.get(`k${i}`).catch(() => undefined);
      assert.ok((await sample(cs, 'portico_store_errors_total')) >= 50);
      assert.equal(log.lines.filter((l) => l.includes('get failed')).length, 1, log.lines.join('\n'));
    } finally {
      await cs.stop();
      await redis.stop();
    }
  });
});
