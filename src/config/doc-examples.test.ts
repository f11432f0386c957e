import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import '../balancer/index.js';
import { ConfigError } from './errors.js';
import { parseConfigText } from './load.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Every YAML example of README.md and docs/*.md with a top-level `listeners:` key is a complete
 * configuration: a reader copies it and runs it, so it must validate as a file does (the files
 * it names are not read: they are the reader's). Examples without `listeners:` are excerpts.
 */
test('every complete configuration in README.md and docs/*.md validates', () => {
  const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`)];
  const problems: string[] = [];
  let checked = 0;
  for (const f of files) {
    const text = readFileSync(join(root, f), 'utf8');
    for (const m of text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)) {
      const yaml = m[1]!;
      if (!/^listeners:/m.test(yaml)) continue;
      checked++;
      const line = text.slice(0, m.index).split('\n').length + 1;
      try {
        parseConfigText(yaml, `${f} (example at line ${line})`, { PORTICO_ADMIN_TOKEN: 'example' });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems.push(...err.lines());
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked >= 9, `${checked} examples found`);
});

/**
 * docs/production.md and docs/deployment.md show the keys a production setup needs, often as
 * an excerpt (`log:`, `stateDir:` ...): every YAML block there validates, a complete one as it
 * is, an excerpt laid over a minimal configuration (one listener, one pool), so that every key
 * it shows exists and takes the value shown.
 */
test('every YAML block of docs/production.md and docs/deployment.md validates, excerpts included', () => {
  const base = ['listeners:', '  - { name: web, protocol: http, listen: 127.0.0.1:8080, routes: [ { pool: app } ] }', 'pools:', '  - { name: app, servers: [ { name: a, address: 127.0.0.1:8081 } ] }', ''].join('\n');
  const problems: string[] = [];
  let checked = 0;
  for (const f of ['docs/production.md', 'docs/deployment.md']) {
    const text = readFileSync(join(root, f), 'utf8');
    for (const m of text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)) {
      const yaml = m[1]!;
      checked++;
      const line = text.slice(0, m.index).split('\n').length + 1;
      // An excerpt is top-level keys other than listeners and pools: the base gives those.
      const doc = /^listeners:/m.test(yaml) ? yaml : yaml + '\n' + base;
      try {
        parseConfigText(doc, `${f} (example at line ${line})`, { PORTICO_ADMIN_TOKEN: 'example' });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems.push(...err.lines());
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked >= 2, `${checked} examples found`);
});

test('the example of docs/production.md uses the keys it discusses (a check that the test above sees it)', () => {
  const text = readFileSync(join(root, 'docs/production.md'), 'utf8');
  const yaml = /^```yaml\n([\s\S]*?)^```/m.exec(text)![1]!;
  const c = parseConfigText(yaml, 'docs/production.md', { PORTICO_ADMIN_TOKEN: 'example' });
  assert.equal(c.log.format, 'json');
  assert.equal(c.admin.token, 'example');
  assert.notEqual(c.admin.tls, false);
  assert.ok(c.pools.every((p) => p.health.type !== 'none'), 'every pool has an active check');
  assert.equal(c.pidFile, '/run/portico/portico.pid');
});
