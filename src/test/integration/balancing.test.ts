import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'node:http';
import { createPortico, type Portico } from '../../app/app.js';
import { balancerNames } from '../../balancer/registry.js';
import { startOrigin, type Origin } from '../../test-helpers/origins.js';

/** Every algorithm, selected by name in the configuration, visibly working through the proxy. */

function get(port: number, path: string, headers: Record<string, string>, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`status ${res.statusCode}`))));
    })
      .on('error', reject)
      .end();
  });
}

async function withProxy(pool: Record<string, unknown>, fn: (port: number) => Promise<void>): Promise<void> {
  const p: Portico = createPortico({
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', ...pool }],
  });
  await p.start();
  try {
    await fn(p.address('web')!.port);
  } finally {
    await p.stop(100);
  }
}

describe('balancing algorithms through the proxy', () => {
  let fast: Origin[];
  let slow: Origin;

  before(async () => {
    fast = [await startOrigin('f1'), await startOrigin('f2')];
    slow = await startOrigin('slow', (_req, res) => setTimeout(() => res.end('slow'), 60));
  });
  after(async () => {
    await Promise.all([...fast, slow].map((o) => o.close()));
  });

  const servers = (): { name: string; address: string }[] => [
    { name: 'f1', address: fast[0]!.address },
    { name: 'f2', address: fast[1]!.address },
    { name: 'slow', address: slow.address },
  ];

  for (const name of ['roundrobin', 'leastconn', 'least-traffic', 'fastest', 'p2c', 'random', 'hash', 'lard']) {
    it(`balance: ${name} is selectable and serves every request`, async () => {
      assert.ok(balancerNames().includes(name));
      await withProxy({ balance: name, servers: servers() }, async (port) => {
        const agent = new Agent({ keepAlive: true, maxSockets: 6 });
        const seen = new Set<string>();
        const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => get(port, `/p${i % 12}`, { 'x-user': `u${i}` }, agent)));
        for (const r of replies) seen.add(r);
        agent.destroy();
        assert.ok(seen.size >= 1);
        for (const r of seen) assert.ok(['f1', 'f2', 'slow'].includes(r), r);
      });
    });
  }

  it('leastconn and p2c send the slow server fewer requests than roundrobin does', async () => {
    const shareOfSlow = async (balance: string): Promise<number> => {
      let slowCount = 0;
      await withProxy({ balance, servers: servers() }, async (port) => {
        const agent = new Agent({ keepAlive: true, maxSockets: 12 });
        const replies = await Promise.all(Array.from({ length: 240 }, (_, i) => get(port, `/x${i}`, {}, agent)));
        agent.destroy();
        slowCount = replies.filter((r) => r === 'slow').length;
      });
      return slowCount / 240;
    };
    const rr = await shareOfSlow('roundrobin');
    const lc = await shareOfSlow('leastconn');
    const p2c = await shareOfSlow('p2c');
    assert.ok(Math.abs(rr - 1 / 3) < 0.02, `roundrobin gave the slow server ${rr}`);
    assert.ok(lc < rr / 2, `leastconn gave the slow server ${lc} (roundrobin ${rr})`);
    assert.ok(p2c < rr, `p2c gave the slow server ${p2c} (roundrobin ${rr})`);
  });

  it('hash on a header keeps each user on one server and spreads users', async () => {
    await withProxy({ balance: 'hash', hash: { key: 'header:X-User', method: 'maglev' }, servers: servers().slice(0, 2) }, async (port) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      const byUser = new Map<string, Set<string>>();
      for (let round = 0; round < 5; round++) {
        for (let u = 0; u < 20; u++) {
          const r = await get(port, '/', { 'x-user': `user-${u}` }, agent);
          let s = byUser.get(`user-${u}`);
          if (s === undefined) byUser.set(`user-${u}`, (s = new Set()));
          s.add(r);
        }
      }
      agent.destroy();
      for (const [u, s] of byUser) assert.equal(s.size, 1, `${u} landed on ${[...s].join(', ')}`);
      const used = new Set([...byUser.values()].map((s) => [...s][0]));
      assert.equal(used.size, 2, 'twenty users spread over both servers');
    });
  });

  it('lard keeps each path on one server while load is low', async () => {
    await withProxy({ balance: 'lard', servers: servers().slice(0, 2) }, async (port) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const byPath = new Map<string, Set<string>>();
      for (let i = 0; i < 60; i++) {
        const path = `/doc${i % 10}`;
        const r = await get(port, path, {}, agent);
        let s = byPath.get(path);
        if (s === undefined) byPath.set(path, (s = new Set()));
        s.add(r);
      }
      agent.destroy();
      for (const [path, s] of byPath) assert.equal(s.size, 1, `${path} went to ${[...s].join(', ')}`);
    });
  });
});
