import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { it } from 'node:test';
// The package entry point, as `import { ... } from 'portico'` resolves it.
import { createPortico, registerBalancer, BalancerOptionsError, ConfigError, type BalancerFactory } from '../../index.js';
import { startOrigins } from '../../test-helpers/origins.js';

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    })
      .on('error', reject)
      .end();
  });
}

it('an application registers its own algorithm and names it in the configuration', async () => {
  // Always the last server in configuration order: easy to recognise.
  const lastOne: BalancerFactory<void> = {
    name: 'always-last',
    parseOptions: () => undefined,
    build(set) {
      const servers = set.available;
      return {
        name: 'always-last',
        pick(ctx) {
          for (let i = servers.length - 1; i >= 0; i--) {
            const s = servers[i]!;
            if (ctx.avoid === undefined || !ctx.avoid.has(s.id)) return s;
          }
          return undefined;
        },
      };
    },
  };
  registerBalancer(lastOne);
  const origins = await startOrigins(3);
  const lb = createPortico({
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', balance: 'always-last', servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
  });
  await lb.start();
  try {
    const port = lb.address('web')!.port;
    for (let i = 0; i < 5; i++) assert.equal(await get(port), 'o3');
  } finally {
    await lb.stop(100);
    await Promise.all(origins.map((o) => o.close()));
  }
});

it('a configuration object is validated like a file: every problem, with its path', () => {
  assert.throws(
    () =>
      createPortico({
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:70000', routes: [{ pool: 'missing' }] }],
        pools: [{ name: 'web', balance: 'no-such-algorithm', servers: [] }],
      }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const lines = err.lines();
      assert.ok(lines.some((l) => l.startsWith('<object> listeners.0.listen: ')), lines.join('\n'));
      assert.ok(lines.some((l) => l.startsWith('<object> listeners.0.routes.0.pool: ')), lines.join('\n'));
      assert.ok(lines.some((l) => l.startsWith('<object> pools.0.balance: ')), lines.join('\n'));
      return true;
    },
  );
});

it("an application's algorithm takes options under its own name, validated at load and applied on reload", async () => {
  // Always the server at `index` in configuration order (options: { index }).
  const nth: BalancerFactory<number> = {
    name: 'nth-server',
    parseOptions(raw) {
      const o = (raw ?? {}) as Record<string, unknown>;
      for (const k of Object.keys(o)) if (k !== 'index') throw new BalancerOptionsError('nth-server', k, 'unknown option (known options: index)');
      const i = o['index'] ?? 0;
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0) throw new BalancerOptionsError('nth-server', 'index', `must be an integer of at least 0 (got ${String(i)})`);
      return i;
    },
    build(set, index) {
      const servers = set.available;
      return { name: 'nth-server', pick: () => servers[Math.min(index, servers.length - 1)] };
    },
  };
  registerBalancer(nth);
  const origins = await startOrigins(3);
  const config = (pool: Record<string, unknown>): Record<string, unknown> => ({
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', servers: origins.map((o) => ({ name: o.name, address: o.address })), ...pool }],
  });
  const lines = (pool: Record<string, unknown>): string[] => {
    try {
      createPortico(config(pool));
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.lines();
    }
    assert.fail('the configuration was accepted');
  };
  assert.deepEqual(lines({ balance: 'nth-server', 'nth-server': { index: -1 } }), [
    '<object> pools.0.nth-server.index: balance nth-server: must be an integer of at least 0 (got -1)',
  ]);
  assert.deepEqual(lines({ balance: 'roundrobin', 'nth-server': { index: 1 } }), [
    '<object> pools.0.nth-server: nth-server options apply only with balance: nth-server (this pool uses roundrobin)',
  ]);
  assert.ok(lines({ balance: 'nth-server', balanse: 1 })[0]!.startsWith('<object> pools.0.balanse: unknown key'));
  // hash: keeps its own key, with its own messages.
  assert.deepEqual(lines({ balance: 'roundrobin', hash: { key: 'uri' } }), [
    '<object> pools.0.hash: hash options apply only with balance: hash (this pool uses roundrobin)',
  ]);

  const lb = createPortico(config({ balance: 'nth-server', 'nth-server': { index: 1 } }));
  await lb.start();
  try {
    const port = lb.address('web')!.port;
    for (let i = 0; i < 3; i++) assert.equal(await get(port), 'o2');
    const r = await lb.reload(config({ balance: 'nth-server', 'nth-server': { index: 2 } }));
    assert.ok(JSON.stringify(r).includes('balancer rebuilt'), JSON.stringify(r));
    for (let i = 0; i < 3; i++) assert.equal(await get(port), 'o3');
  } finally {
    await lb.stop(100);
    await Promise.all(origins.map((o) => o.close()));
  }
});
