import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { send } from '../../test-helpers/http.js';
import { freePort, spawnPortico, startOrigin, waitFor, type Origin, type PorticoProcess } from '../../test-helpers/origins.js';

/**
 * `cluster.workers: 2`: each worker holds its own cache. `GET /api/v1/caches` sums the workers'
 * figures whichever worker answers, and a purge reaches every worker.
 */

const TOKEN = 'w0rkers-t0k';

interface CacheView {
  name: string;
  entries: number;
  hits: number;
  misses: number;
}

describe('cache operations with cluster.workers: 2', () => {
  let origin: Origin;
  let child: PorticoProcess | undefined;
  let port: number;
  let admin: number;
  let fetched = 0;

  const api = async (method: string, path: string): Promise<{ status: number; body: any }> => {
    const r = await send(admin, path, { method, headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: r.status, body: JSON.parse(r.body) };
  };
  const main = async (): Promise<CacheView & { workers: { reporting: number; running: number } }> => {
    const r = await api('GET', '/api/v1/caches');
    assert.equal(r.status, 200);
    const c = (r.body.caches as CacheView[]).find((x) => x.name === 'main')!;
    return { ...c, workers: r.body.workers };
  };

  before(async () => {
    origin = await startOrigin('o', (_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
      res.end('cached body');
    });
    [port, admin] = [await freePort(), await freePort()];
    child = await spawnPortico(
      {
        cluster: { workers: 2 },
        admin: { listen: `127.0.0.1:${admin}`, token: TOKEN },
        caches: [{ name: 'main', memory: '1MiB', maxObjectSize: '64KiB' }],
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web', cache: 'main' }] }],
        pools: [{ name: 'web', servers: [{ name: 'o', address: origin.address }] }],
      },
      2,
    );
    await waitFor(async () => (await send(admin, '/metrics').catch(() => undefined))?.headers['x-portico-workers'] === '2/2', 30_000, 'both workers to report');
  });
  after(async () => {
    await child?.stop();
    await origin?.close();
  });

  it('the caches view sums both workers, and a purge empties both', async () => {
    // Each new connection goes to a worker; once both have asked the server, each holds the object.
    await waitFor(
      async () => {
        await send(port, '/obj');
        return fetched >= 2;
      },
      30_000,
      'both workers to fetch /obj',
    );
    const full = await main();
    assert.deepEqual(full.workers, { reporting: 2, running: 2 });
    assert.equal(full.entries, 2, 'one copy in each worker');
    assert.equal(full.misses, 2);

    const purged = await api('DELETE', '/api/v1/caches/main?url=/obj');
    assert.equal(purged.status, 200, JSON.stringify(purged.body));
    assert.deepEqual(purged.body, { purged: 2, workers: { reporting: 2, running: 2 } });
    assert.equal((await main()).entries, 0);

    const again = await send(port, '/obj');
    assert.match(String(again.headers['cache-status']), /^portico; fwd=miss/, 'purged in the worker that answered');
    assert.equal(fetched, 3);

    const refused = await api('DELETE', '/api/v1/caches/nope?url=/obj');
    assert.equal(refused.status, 404);
    assert.equal(refused.body.error.code, 'LB_ADMIN_NOT_FOUND');
    const bad = await api('DELETE', '/api/v1/caches/main');
    assert.equal(bad.status, 400);
  });
});
