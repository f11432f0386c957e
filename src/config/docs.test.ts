import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import { renderConfigDocs } from './docs.js';
import { configSchema } from './schema/root.js';
import { inspectKey, shapeOf } from './schema-walk.js';

const DOCS = new URL('../../docs/configuration.md', import.meta.url);

test('docs/configuration.md is generated from the schema and up to date', () => {
  const current = readFileSync(DOCS, 'utf8');
  assert.ok(current === renderConfigDocs(), 'docs/configuration.md is stale: run `npm run build && npm run docs:config` and commit it');
});

test('the reference lists every key with a description', () => {
  const text = renderConfigDocs();
  for (const path of ['`shutdownGrace`', '`pools[].servers[].dnsAddress`', '`listeners[].routes[].match.sni`', '`pools[].persistence.maxAge`', '`log.access.format`', '`listeners[].zones[].records[].values`']) {
    assert.ok(text.includes(`| ${path} |`), `${path} is missing`);
  }
  for (const row of text.split('\n').filter((l) => l.startsWith('| `'))) {
    assert.doesNotMatch(row, /\| *\|$/, `no description: ${row}`);
  }
  assert.equal(inspectKey(shapeOf(configSchema)['shutdownGrace']!).defaultValue, '10s');
});
