import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcd, skipWithoutEtcd, type EtcdProcess } from '../../test-helpers/etcd.js';
import { freePort, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { bodies, startWorkersProcess, type WorkersProcess } from '../../test-helpers/workers.js';

/**
 * `cluster.workers: 2` with the configuration from etcd: only the primary watches etcd; it
 * hands the validated document to each worker (a replacement worker too) and every valid new
 * version to both, and refuses an invalid version once, while both workers keep theirs.
 */

const N = 12;

describe('cluster.workers: 2 with cluster.config: etcd', { skip: skipWithoutEtcd() }, () => {
  let etcd: EtcdProcess;
  let origins: Origin[];
  let dir: string;
  let port: number;
  let node: WorkersProcess | undefined;
  let client: Etcd3;

  const doc = (origin: Origin, extra = ''): string =>
    [
      `cluster: { config: "etcd://127.0.0.1:${etcd.port}/wk", workers: 2 }`,
      'admin: { enabled: false }',
      'listeners:',
      `  - { name: web, protocol: http, listen: "127.0.0.1:${port}", routes: [ { match: { path: /other }, pool: other }, { pool: web } ] }`,
      'pools:',
      `  - { name: web, health: { type: none }, servers: [ { name: s, address: "${origin.address}" } ] }`,
      `  - { name: other, health: { type: none }, servers: [ { name: s, address: "${origins[0]!.address}" } ] }`,
      extra,
      '',
    ].join('\n');

  before(async () => {
    etcd = await startEtcd();
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-etcd-'));
    port = await freePort();
    client = new Etcd3({ hosts: etcd.endpoint });
  });
  after(async () => {
    await node?.stop();
    client?.close();
    for (const o of origins ?? []) await o.close();
    await etcd?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('both workers run the document; a new version reaches both; an invalid one is refused once and both keep theirs; a new worker gets the last good one', async (t) => {
    const [o1, o2, o3] = origins as [Origin, Origin, Origin];
    mkdirSync(join(dir, 'node'));
    const file = join(dir, 'node', 'bootstrap.yaml');
    // The node's file says where the document is; the document says how many workers.
    writeFileSync(file, `cluster: { config: "etcd://127.0.0.1:${etcd.port}/wk" }\nstateDir: ${join(dir, 'node', 'state')}\n`);
    await client.put('/wk/config').value(doc(o1));
    node = await startWorkersProcess(file, join(dir, 'node'), 2);
    assert.equal(node.workers().length, 2, node.output());
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o1']));
    assert.ok(existsSync(join(dir, 'node', 'state', 'etcd-config.yaml')));

    // A new version: the pool's server changes. Every fresh connection (both workers, in turn) gets o2.
    const t0 = performance.now();
    await client.put('/wk/config').value(doc(o2));
    await waitFor(async () => (await bodies(port, 4)).every((b) => b === 'o2'), 10_000, 'both workers to serve the new version');
    t.diagnostic(`etcd put -> both workers serve the new version: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));
    await waitFor(() => node!.count(/reload: generation 2/) === 2, 5000, 'both workers to log generation 2');
    assert.equal(node.count(/etcd configuration: a new version/), 1, 'the primary alone watches etcd');

    // An invalid version: refused once (in the primary), and both workers keep o2.
    await client.put('/wk/config').value(doc(o3).replace('health: { type: none }', 'health: { type: nope }'));
    await waitFor(() => node!.count(/etcd configuration refused/) > 0, 10_000, 'the refusal');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(node.count(/etcd configuration refused/), 1, node.output());
    assert.equal(node.count(/reload refused/), 0, 'no worker saw the invalid version');
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));
    assert.match(readFileSync(join(dir, 'node', 'state', 'etcd-config.yaml'), 'utf8'), new RegExp(o2.address));

    // A worker killed: its replacement runs the last good document (o2), not the bootstrap file (no listener) nor the invalid one.
    const [victim] = node.workers();
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => node!.count(/listener web on/) >= 3 && node!.workers().length === 2, 15_000, 'a new worker to listen');
    assert.ok(!node.workers().includes(victim!));
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));

    // The next valid version reaches both, the new worker included: a route changes (/other now goes to o3).
    await client.put('/wk/config').value(doc(o2).replace(`servers: [ { name: s, address: "${o1.address}" } ]`, `servers: [ { name: s, address: "${o3.address}" } ]`));
    await waitFor(async () => (await bodies(port, 4, '/other')).every((b) => b === 'o3'), 10_000, 'both workers to take the changed route');
    assert.deepEqual(new Set(await bodies(port, N, '/other')), new Set(['o3']));
    assert.deepEqual(new Set(await bodies(port, N)), new Set(['o2']));
  });
});
