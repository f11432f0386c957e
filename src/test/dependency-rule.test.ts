import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

/**
 * The dependency rule of docs/architecture.md: core/ and balancer/ are pure (no node:
 * modules), and nothing below the composition root imports from app/ or cli/.
 */
const srcDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.suite.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  return out;
}

it('core/ and balancer/ import no node: module', () => {
  for (const area of ['core', 'balancer']) {
    for (const f of files(join(srcDir, area))) {
      for (const i of imports(f)) assert.ok(!i.startsWith('node:'), `${f} imports ${i}`);
    }
  }
});

it('only app/ and cli/ import the composition root', () => {
  for (const f of files(srcDir)) {
    const rel = f.slice(srcDir.length + 1);
    if (rel.startsWith('app/') || rel.startsWith('cli/') || rel === 'index.ts' || rel.startsWith('test')) continue;
    for (const i of imports(f)) {
      assert.ok(!/\/(app|cli)\//.test(i), `${rel} imports ${i}`);
    }
  }
});
