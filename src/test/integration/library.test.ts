import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { it } from 'node:test';
// The package entry point, as `import { ... } from 'portico'` resolves it.
import { createPortico, registerBalancer, ConfigError, type BalancerFactory } from '../../index.js';
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
