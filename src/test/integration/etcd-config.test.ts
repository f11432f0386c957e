import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { runCtl } from '../../cli/ctl.js';
import { startEtcd, skipWithoutEtcd, type EtcdProcess } from '../../test-helpers/etcd.js';
import { freePort, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'portico');

/** A configuration document: one http listener on `port` in front of `origin`. */
function doc(port: number, origin: Origin): string {
  return [
    'cluster: { config: "etcd://127.0.0.1:${ETCD_PORT}/portico" }',
    'admin: { enabled: false }',
    'listeners:',
    `  - { name: web, protocol: http, listen: "127.0.0.1:${port}", routes: [ { pool: web } ] }`,
    'pools:',
    `  - { name: web, health: { type: none }, servers: [ { name: s, address: "${origin.address}" } ] }`,
    '',
  ].join('\n');
}

async function ctl(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(args, { out: (s) => (out += s), err: (s) => (err += s), env });
  return { code, out, err };
}

async function body(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    return await res.text();
  } catch (err) {
    return `(${(err as Error).message})`;
  }
}

interface Node {
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

function startNode(dir: string, env: NodeJS.ProcessEnv): Node {
  const child = spawn(process.execPath, [bin, 'start', '-c', join(dir, 'bootstrap.yaml')], { cwd: dir, env: { ...process.env, ...env } });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await closed;
      clearTimeout(t);
    },
  };
}

describe('configuration from etcd', { skip: skipWithoutEtcd() }, () => {
  let etcd: EtcdProcess;
  let origins: Origin[];
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    etcd = await startEtcd();
    origins = await startOrigins(2);
    dir = mkdtempSync(join(tmpdir(), 'portico-etcdcfg-'));
    env = { ETCD_PORT: String(etcd.port) };
  });
  after(async () => {
    for (const o of origins ?? []) await o.close();
    await etcd?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('ctl config push refuses an invalid file (nothing stored) and stores a valid one', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'pools:\n  - { name: web, balance: nope }\n');
    const r1 = await ctl(['config', 'push', bad], env);
    assert.equal(r1.code, 1, r1.err);
    assert.match(r1.err, /bad\.yaml:2:\d+ pools\.0\.balance/);
    assert.match(r1.err, /nothing was stored/);
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      assert.equal(await client.get('/portico/config').string(), null);
      const good = join(dir, 'good.yaml');
      writeFileSync(good, doc(await freePort(), origins[0]!));
      const r2 = await ctl(['--admin', 'http://127.0.0.1:1', 'config', 'push', good], env);
      assert.equal(r2.code, 0, r2.err);
      assert.match(r2.out, /stored .*good\.yaml as \/portico\/config in etcd:\/\/127\.0\.0\.1:\d+\/portico \(revision \d+\)/);
      assert.equal(await client.get('/portico/config').string(), readFileSync(good, 'utf8'));
      const r3 = await ctl(['config', 'push', good, '--etcd', 'etcd://127.0.0.1:1/portico'], env);
      assert.equal(r3.code, 3);
      assert.match(r3.err, /cannot be reached/);
    } finally {
      client.close();
    }
  });

  it('a node runs the document in etcd, applies a new version, refuses an invalid one, and starts from its cache while etcd is down', async (t) => {
    const port = await freePort();
    const [o1, o2] = origins as [Origin, Origin];
    const nodeDir = join(dir, 'node');
    rmSync(nodeDir, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(nodeDir);
    writeFileSync(join(nodeDir, 'bootstrap.yaml'), `cluster: { config: "etcd://127.0.0.1:${etcd.port}/portico" }\nstateDir: ${join(nodeDir, 'state')}\n`);
    const v1 = join(dir, 'v1.yaml');
    writeFileSync(v1, doc(port, o1));
    assert.equal((await ctl(['config', 'push', v1], env)).code, 0);

    let node = startNode(nodeDir, env);
    try {
      await waitFor(async () => (await body(port)) === 'o1', 60_000, 'the node to serve the etcd document').catch((err: Error) => {
        throw new Error(`${err.message}; node output:\n${node.output()}`);
      });
      assert.ok(existsSync(join(nodeDir, 'state', 'etcd-config.yaml')));

      const v2 = join(dir, 'v2.yaml');
      writeFileSync(v2, doc(port, o2));
      const t0 = performance.now();
      assert.equal((await ctl(['config', 'push', v2], env)).code, 0);
      await waitFor(async () => (await body(port)) === 'o2', 10_000, 'the new version to apply');
      t.diagnostic(`config push -> new version served: ${(performance.now() - t0).toFixed(0)} ms`);

      // An invalid version written straight into etcd (ctl would refuse it): the node refuses it too.
      const client = new Etcd3({ hosts: etcd.endpoint });
      try {
        await client.put('/portico/config').value(doc(port, o1).replace('type: none', 'type: nope'));
      } finally {
        client.close();
      }
      await waitFor(() => /etcd configuration refused/.test(node.output()), 10_000, 'the refusal');
      assert.equal(await body(port), 'o2');
      assert.match(readFileSync(join(nodeDir, 'state', 'etcd-config.yaml'), 'utf8'), new RegExp(o2.address));
    } finally {
      await node.stop();
    }

    // etcd down: the node starts from the last good document.
    await etcd.stop();
    const t1 = performance.now();
    node = startNode(nodeDir, env);
    try {
      await waitFor(async () => (await body(port)) === 'o2', 60_000, 'the node to start from its cache').catch((err: Error) => {
        throw new Error(`${err.message}; node output:\n${node.output()}`);
      });
      assert.match(node.output(), /starting from the last good configuration/);
      t.diagnostic(`etcd down: node started from its cache and serving in ${(performance.now() - t1).toFixed(0)} ms`);
    } finally {
      await node.stop();
    }
  });
});
