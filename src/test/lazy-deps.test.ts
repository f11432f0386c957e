import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

/**
 * The etcd and Redis clients (etcd3 with gRPC and protobuf, ioredis) are loaded with the first
 * client a configuration asks for, not with Portico: a process without them starts sooner and
 * carries a smaller heap, which every full collection walks. Checked in a fresh node: the CLI's
 * whole module graph imported, then the packages in require.cache (where CommonJS packages live).
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

async function loadedAfter(script: string): Promise<string[]> {
  const main = pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href;
  const etcd = pathToFileURL(join(root, 'dist', 'discovery', 'etcd-discovery.js')).href;
  const redis = pathToFileURL(join(root, 'dist', 'store', 'redis-store.js')).href;
  const code = [
    `import { createRequire } from 'node:module';`,
    `await import(${JSON.stringify(main)});`,
    `const etcd = await import(${JSON.stringify(etcd)});`,
    `const redis = await import(${JSON.stringify(redis)});`,
    script,
    `const cache = createRequire(${JSON.stringify(pathToFileURL(join(root, 'package.json')).href)}).cache;`,
    `const names = new Set();`,
    `for (const k of Object.keys(cache)) { const m = k.match(/node_modules\\/((@[^/]+\\/)?[^/]+)/); if (m) names.add(m[1]); }`,
    `console.log(JSON.stringify([...names]));`,
    `process.exit(0);`,
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: root, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as string[];
}

describe('optional clients load on first use', () => {
  it('importing Portico loads neither etcd3, gRPC nor ioredis', async () => {
    const names = await loadedAfter('');
    for (const pkg of ['etcd3', '@grpc/grpc-js', 'protobufjs', 'ioredis']) assert.ok(!names.includes(pkg), `${pkg} was loaded: ${names.join(' ')}`);
    // The check sees CommonJS packages: prom-client is one, and Portico loads it at once.
    assert.ok(names.includes('prom-client'), names.join(' '));
  });

  it('the first client loads its package', async () => {
    const names = await loadedAfter(
      [
        `etcd.newEtcdClient({ hosts: '127.0.0.1:9', dialTimeout: 100 }).close();`,
        `const s = new redis.RedisStore({ url: 'redis://127.0.0.1:9/' }); await s.close();`,
      ].join('\n'),
    );
    assert.ok(names.includes('etcd3'), names.join(' '));
    assert.ok(names.includes('ioredis'), names.join(' '));
  });
});
