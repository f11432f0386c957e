import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import { ConfigError } from './errors.js';
import '../balancer/index.js';
import { parseConfigText } from './load.js';
import { parseSize } from './values/size.js';

function problems(yaml: string): string[] {
  try {
    parseConfigText(yaml, 'lb.yaml', {}, { runnable: false });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    return err.lines();
  }
}

const BASE = `caches:
  - name: main
    memory: 64MiB
listeners:
  - name: web
    protocol: http
    listen: 127.0.0.1:8080
    routes:
      - { pool: web, cache: main, compress: true }
pools:
  - name: web
    servers: [ { name: a, address: 127.0.0.1:9101 } ]
`;

test('sizes: units and plain bytes', () => {
  assert.deepEqual(parseSize('8MiB'), { ok: true, value: 8 * 1024 * 1024 });
  assert.deepEqual(parseSize('1.5KiB'), { ok: true, value: 1536 });
  assert.deepEqual(parseSize('100kB'), { ok: true, value: 100_000 });
  assert.deepEqual(parseSize(4096), { ok: true, value: 4096 });
  assert.equal(parseSize('8 parsecs').ok, false);
  assert.equal(parseSize(-1).ok, false);
});

test('a cache and a route that uses it, with compression, are valid; defaults filled', () => {
  assert.deepEqual(problems(BASE), []);
  const c = parseConfigText(BASE, 'lb.yaml', {}, { runnable: false });
  assert.equal(c.caches[0]!.memory, 64 * 1024 * 1024);
  assert.equal(c.caches[0]!.maxObjectSize, 8 * 1024 * 1024);
  assert.equal(c.caches[0]!.keep, 3_600_000);
  assert.equal(c.caches[0]!.shared, false);
});

test('a route naming a cache that does not exist points at the key with a suggestion', () => {
  assert.deepEqual(problems(BASE.replace('cache: main', 'cache: mian')), [
    'lb.yaml:9:22 listeners.0.routes.0.cache: cache "mian" does not exist (did you mean "main"?) (caches: main)',
  ]);
});

test('cache and compress need a route that forwards to a pool', () => {
  const yaml = BASE.replace('{ pool: web, cache: main, compress: true }', "{ respond: { body: hi }, cache: main, compress: true }");
  assert.deepEqual(problems(yaml), [
    'lb.yaml:9:34 listeners.0.routes.0.cache: cache needs a route that forwards to a pool (not redirect or respond)',
    'lb.yaml:9:47 listeners.0.routes.0.compress: compress needs a route that forwards to a pool (not redirect or respond)',
  ]);
});

test('bad cache values: a bad size, maxObjectSize over memory, a duplicate name, an unknown coding', () => {
  const yaml = BASE.replace('memory: 64MiB', "memory: 64MiB\n    maxObjectSize: 1GiB\n  - name: main\n    memory: lots").replace('compress: true', 'compress: { algorithms: [zstd] }');
  const p = problems(yaml);
  assert.ok(p.some((l) => /caches\.0\.maxObjectSize: cannot be larger than memory/.test(l)), p.join('\n'));
  assert.ok(p.some((l) => /caches\.1\.memory: bad size "lots"/.test(l)), p.join('\n'));
  assert.ok(p.some((l) => /caches\.1\.name: duplicate cache name "main"/.test(l)), p.join('\n'));
  assert.ok(p.some((l) => /compress\.algorithms\.0/.test(l)), p.join('\n'));
});
