import { test } from 'node:test';
import assert from 'node:assert/strict';
import { send } from '../../test-helpers/http.js';
import { startOrigin } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';

/**
 * `listeners[].upgrades` reaches the data path: an upgrade the listener does not allow is forwarded
 * as a plain request (no Upgrade field), one it allows keeps its Upgrade. The origin answers 200
 * either way, so no tunnel is made; what it received is the assertion.
 */
for (const [upgrades, expected] of [
  [['websocket'], 'websocket'],
  [[], undefined],
] as const) {
  test(`upgrades: [${upgrades.join(', ')}]: a WebSocket upgrade reaches the server ${expected === undefined ? 'as a plain request' : 'with its Upgrade'}`, async () => {
    const seen: (string | undefined)[] = [];
    const origin = await startOrigin('o', (req, res) => {
      seen.push(req.headers['upgrade']);
      res.writeHead(200, { 'content-length': '2' });
      res.end('ok');
    });
    let p: Awaited<ReturnType<typeof startPortico>>['p'] | undefined;
    try {
      const started = await startPortico(webConfig([{ name: 'web', servers: [{ name: 'o', address: `127.0.0.1:${origin.port}` }] }], { upgrades: [...upgrades] }));
      p = started.p;
      const r = await send(started.port, '/', { headers: { connection: 'upgrade', upgrade: 'websocket' } });
      assert.equal(r.status, 200);
      assert.deepEqual(seen, [expected]);
    } finally {
      await p?.stop(0);
      await origin.close();
    }
  });
}
