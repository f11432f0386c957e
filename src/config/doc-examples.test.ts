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
