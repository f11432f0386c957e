import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createPortico } from '../../app/app.js';
import { freePort, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';
import { bodies, startWorkersProcess, type WorkersProcess } from '../../test-helpers/workers.js';

/**
 * `cluster.workers: 2`: the primary runs the health checks for both workers. A server registered
 * through the admin API (in no file) into a pool that started with `servers: []` is probed like
 * the file's: down while its port is dead, up once something answers there, in both workers.
 */

async function api(adminPort: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

it('cluster.workers: a server registered through the admin API into an empty pool is probed: down on a dead port, up once it answers, in every worker', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-registered-'));
  const port = await freePort();
  const adminPort = await freePort();
  const serverPort = await freePort(); // nothing listens here yet
  let node: WorkersProcess | undefined;
  let origin: Origin | undefined;
  try {
    const file = join(dir, 'portico.json');
    writeFileSync(
      file,
      JSON.stringify({
        stateDir: join(dir, 'state'),
        log: { level: 'info' },
        cluster: { workers: 2 },
        admin: { listen: `127.0.0.1:${adminPort}` },
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', health: { type: 'http', path: '/', interval: '200ms', timeout: '1s', rise: 1, fall: 1 }, servers: [] }],
      }),
    );
    node = await startWorkersProcess(file, dir, 2);
    const n = node;
    await waitFor(async () => (await api(adminPort, 'GET', '/api/v1/status').catch(() => ({ status: 0 }))).status === 200, 30_000, 'the admin API');

    const reg = await api(adminPort, 'POST', '/api/v1/pools/web/servers', { name: 'x', address: `127.0.0.1:${serverPort}` });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    // Both workers hear the probes' verdict: down (the port is dead), not `up` with no probe.
    await waitFor(() => n.count(/server web\/x op starting -> down cause=probe/) === 2, 30_000, 'both workers to mark x down from its probes');
    const down = await api(adminPort, 'GET', '/api/v1/pools/web/servers/x');
    assert.equal(down.body.health, 'down', JSON.stringify(down.body));
    assert.equal(down.body.available, false);
    assert.ok(down.body.probe.failed > 0, JSON.stringify(down.body.probe));
    assert.ok((await bodies(port, 4)).every((b) => b === '(503)'), 'no server to send to');

    // Something answers on the port now: the probes bring x up in both workers, and it serves.
    origin = await startOrigin('x', undefined, serverPort);
    await waitFor(() => n.count(/server web\/x op down -> up cause=probe/) === 2, 30_000, 'both workers to mark x up from its probes');
    const up = await api(adminPort, 'GET', '/api/v1/pools/web/servers/x');
    assert.equal(up.body.health, 'up', JSON.stringify(up.body));
    assert.ok(up.body.probe.passed > 0, JSON.stringify(up.body.probe));
    assert.deepEqual(new Set(await bodies(port, 4)), new Set(['x']));
  } finally {
    await node?.stop();
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('one process: a server registered into an empty pool is probed likewise (down, then up)', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-registered-'));
  const serverPort = await freePort();
  const p = createPortico({
    stateDir: dir,
    log: { level: 'error' },
    admin: { listen: '127.0.0.1:0' },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', health: { type: 'http', path: '/', interval: '200ms', timeout: '1s', rise: 1, fall: 1 }, servers: [] }],
  });
  let origin: Origin | undefined;
  await p.start();
  try {
    const adminPort = p.admin!.address.port;
    assert.equal((await api(adminPort, 'POST', '/api/v1/pools/web/servers', { name: 'x', address: `127.0.0.1:${serverPort}` })).status, 201);
    const pool = p.pools.get('web')!;
    await waitFor(() => pool.byName('x')?.op === 'down', 30_000, 'x down from its probes');
    origin = await startOrigin('x', undefined, serverPort);
    await waitFor(() => pool.byName('x')?.op === 'up', 30_000, 'x up from its probes');
    const x = (await api(adminPort, 'GET', '/api/v1/pools/web/servers/x')).body;
    assert.ok(x.probe.failed > 0 && x.probe.passed > 0, JSON.stringify(x.probe));
  } finally {
    await p.stop(100);
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
