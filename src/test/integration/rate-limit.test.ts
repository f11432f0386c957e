import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { MemoryStore } from '../../store/memory-store.js';

interface Reply {
  status: number;
  retryAfter: string | undefined;
}

/** One request on its own connection from `localAddress`. */
function get(port: number, headers: Record<string, string> = {}, localAddress = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers, localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function config(rateLimit: unknown): Record<string, unknown> {
  return {
    admin: { enabled: false },
    log: { level: 'error' },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', rateLimit, routes: [{ respond: { status: 204 } }] }],
    pools: [],
  };
}

async function started(cfg: unknown, store?: MemoryStore): Promise<{ p: Portico; port: number }> {
  const p = createPortico(cfg, store === undefined ? {} : { store });
  await p.start();
  return { p, port: p.address('web')!.port };
}

describe('rate limiting on an http listener', () => {
  it('a burst beyond the limit: the burst passes, the rest get 429 with Retry-After, counted as rejected "rate-limit"', async () => {
    const { p, port } = await started(config({ key: 'source-ip', rate: '2/s', burst: 5 }));
    try {
      const t0 = Date.now();
      const replies = await Promise.all(Array.from({ length: 20 }, () => get(port)));
      const elapsedSec = (Date.now() - t0) / 1000;
      const ok = replies.filter((r) => r.status === 204).length;
      const limited = replies.filter((r) => r.status === 429);
      assert.equal(ok + limited.length, 20);
      // 5 at once, plus what 2/s refilled while the 20 were answered.
      assert.ok(ok >= 5 && ok <= 5 + Math.ceil(2 * elapsedSec), `admitted ${ok} in ${elapsedSec}s`);
      for (const r of limited) assert.equal(r.retryAfter, '1');
      assert.equal(p.stats.rejectedFor('web', 'rate-limit'), limited.length);
    } finally {
      await p.stop(100);
    }
  });

  it('different keys are independent: source addresses, and header values', async () => {
    const { p, port } = await started(config({ key: 'source-ip', rate: '1/m', burst: 2 }));
    try {
      const statuses = async (n: number, from: string): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push((await get(port, {}, from)).status);
        return out;
      };
      assert.deepEqual(await statuses(3, '127.0.0.1'), [204, 204, 429]);
      assert.deepEqual(await statuses(3, '127.0.0.2'), [204, 204, 429]);
      const r = await get(port, {}, '127.0.0.1');
      assert.equal(r.retryAfter, '60');
    } finally {
      await p.stop(100);
    }
    const h = await started(config({ key: 'header:X-User', rate: '1/m', burst: 1 }));
    try {
      assert.equal((await get(h.port, { 'x-user': 'ann' })).status, 204);
      assert.equal((await get(h.port, { 'x-user': 'ann' })).status, 429);
      assert.equal((await get(h.port, { 'x-user': 'bob' })).status, 204);
      assert.equal((await get(h.port, {})).status, 204); // no header: the shared bucket of the empty key
      assert.equal((await get(h.port, {})).status, 429);
      assert.equal((await get(h.port, { 'x-user': 'bob' })).status, 429);
    } finally {
      await h.p.stop(100);
    }
  });

  it('a reload keeps the buckets while rateLimit is unchanged, and a changed limit starts afresh', async () => {
    const cfg = config({ key: 'source-ip', rate: '1/m', burst: 1 });
    const { p, port } = await started(cfg);
    try {
      const listen = `127.0.0.1:${port}`;
      const at = (rateLimit: unknown): unknown => ({ ...config(rateLimit), listeners: [{ ...(config(rateLimit).listeners as object[])[0], listen }] });
      assert.equal((await get(port)).status, 204);
      assert.equal((await get(port)).status, 429);
      await p.reload(at({ key: 'source-ip', rate: '1/m', burst: 1 }));
      assert.equal((await get(port)).status, 429);
      await p.reload(at({ key: 'source-ip', rate: '1/m', burst: 2 }));
      assert.equal((await get(port)).status, 204);
      await p.reload(at(false));
      for (let i = 0; i < 5; i++) assert.equal((await get(port)).status, 204);
    } finally {
      await p.stop(100);
    }
  });

  it('two instances sharing a store together allow about the configured rate, not twice it', async () => {
    const store = new MemoryStore();
    const rate = 20;
    const burst = 5;
    const cfg = config({ key: 'source-ip', rate: `${rate}/s`, burst });
    const a = await started(cfg, store);
    const b = await started(cfg, store);
    try {
      let ok = 0;
      let limited = 0;
      const t0 = Date.now();
      // Alternate between the two for 2 s (at most 4000 requests).
      for (let i = 0; i < 4000 && Date.now() - t0 < 2000; i++) {
        const r = await get(i % 2 === 0 ? a.port : b.port);
        if (r.status === 204) ok++;
        else if (r.status === 429) limited++;
      }
      const elapsedSec = (Date.now() - t0) / 1000;
      const once = burst + rate * elapsedSec; // what one node alone would allow
      assert.ok(limited > 0);
      // Each node may spend its own burst before it hears of the other; beyond that, one rate.
      assert.ok(ok >= 0.7 * rate * elapsedSec, `admitted ${ok} in ${elapsedSec}s`);
      assert.ok(ok <= 2 * burst + 1.3 * rate * elapsedSec, `admitted ${ok} in ${elapsedSec}s (one node alone: ${once}; two apart: ${2 * once})`);
      assert.equal(a.p.stats.rejectedFor('web', 'rate-limit') + b.p.stats.rejectedFor('web', 'rate-limit'), limited);
    } finally {
      await a.p.stop(100);
      await b.p.stop(100);
    }
  });
});
