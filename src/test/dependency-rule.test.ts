import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, dirname, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/**
 * The dependency rule of docs/architecture.md. The layer order is read from the drawing in that
 * document (its first fenced block with arrows), so the drawing and this check cannot drift apart:
 * a module may import its own files and the modules of the layers to its left, nothing else.
 * Also: core/ and balancer/ import no node: module. Test code (src/test/, src/test-helpers/,
 * *.test.ts, *.suite.ts) is outside the rule.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const srcDir = join(root, 'src');

/** Folders that are part of another module of the drawing. */
const PART_OF: Readonly<Record<string, string>> = { 'proxy/h2': 'proxy/http' };

/** One import: the file (relative to src/, with '/'), its line, and what it names. */
export interface ImportLine {
  readonly file: string;
  readonly line: number;
  readonly spec: string;
}

/**
 * The layers of a drawing such as `core → {net, balancer} → config`: one set of module names per
 * layer, left to right. Throws on a drawing it cannot read (unbalanced braces, an empty layer).
 */
function parseLayers(drawing: string): string[][] {
  const layers: string[][] = [];
  for (const part of drawing.split('→')) {
    const t = part.trim();
    const inner = t.startsWith('{') ? (t.endsWith('}') ? t.slice(1, -1) : undefined) : t;
    if (inner === undefined || /[{}]/.test(inner)) throw new Error(`cannot read the layer "${t}"`);
    const names = inner.split(',').map((n) => n.trim()).filter((n) => n !== '');
    if (names.length === 0) throw new Error('an empty layer in the drawing');
    layers.push(names);
  }
  return layers;
}

/** The drawing of docs/architecture.md: its first fenced block that contains an arrow. */
function drawingOf(markdown: string): string {
  for (const m of markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)) {
    if (m[1]!.includes('→')) return m[1]!;
  }
  throw new Error('docs/architecture.md has no layer drawing');
}

/** The module of a file under src/: its top folder (proxy/<sub> inside proxy/), or the file at the top. */
function moduleOf(file: string): string {
  const parts = file.split('/');
  if (parts.length === 1) return file;
  const m = parts[0] === 'proxy' && parts.length > 2 ? `proxy/${parts[1]!}` : parts[0]!;
  return PART_OF[m] ?? m;
}

function isTestCode(file: string): boolean {
  return file.startsWith('test/') || file.startsWith('test-helpers/') || file.endsWith('.test.ts') || file.endsWith('.suite.ts');
}

/**
 * Every import that breaks the layer order, as `file:line module → module (spec)`; also a file
 * whose module, or an import whose module, is not in the drawing.
 */
function violations(layers: readonly (readonly string[])[], imports: readonly ImportLine[]): string[] {
  const rank = new Map<string, number>();
  layers.forEach((names, i) => names.forEach((n) => rank.set(n, i)));
  const out: string[] = [];
  for (const imp of imports) {
    if (!imp.spec.startsWith('.')) continue;
    const from = moduleOf(imp.file);
    const target = posix.normalize(posix.join(posix.dirname(imp.file), imp.spec)).replace(/\.js$/, '.ts');
    const to = moduleOf(target);
    const where = `${imp.file}:${imp.line}`;
    if (target.startsWith('../')) {
      out.push(`${where} imports ${imp.spec}, outside src/`);
      continue;
    }
    const a = rank.get(from);
    const b = rank.get(to);
    if (a === undefined) out.push(`${where} ${from} is not in the drawing`);
    else if (b === undefined) out.push(`${where} ${from} → ${to} (${imp.spec}): ${to} is not in the drawing`);
    else if (from !== to && b >= a) out.push(`${where} ${from} → ${to} (${imp.spec})`);
  }
  return out;
}

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The imports of a source text: static `import`/`export ... from`, side-effect imports and `import(...)`. */
function importsOf(file: string, text: string): ImportLine[] {
  const out: ImportLine[] = [];
  const lineAt = (index: number): number => text.slice(0, index).split('\n').length;
  const patterns = [/^[ \t]*(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm, /^[ \t]*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) out.push({ file, line: lineAt(m.index + m[0].indexOf(m[1]!)), spec: m[1]! });
  }
  return out.sort((x, y) => x.line - y.line);
}

function sourceImports(): ImportLine[] {
  const out: ImportLine[] = [];
  for (const f of files(srcDir)) {
    const rel = f.slice(srcDir.length + 1).split('\\').join('/');
    if (isTestCode(rel)) continue;
    out.push(...importsOf(rel, readFileSync(f, 'utf8')));
  }
  return out;
}

describe('the layer check', () => {
  const layers = parseLayers('core → {a, b} → c → proxy/x → e.ts');

  it('reads a drawing into layers', () => {
    assert.deepEqual(layers, [['core'], ['a', 'b'], ['c'], ['proxy/x'], ['e.ts']]);
    assert.throws(() => parseLayers('core → {a, b → c'), /cannot read/);
    assert.throws(() => parseLayers('core → {} → c'), /empty layer/);
  });

  it('finds the imports of a text, with their lines', () => {
    const text = "import { x } from './x.js';\nimport {\n  y,\n} from '../a/y.js';\nexport type { Z } from './z.js';\nimport './side.js';\nconst m = await import('../c/m.js');\nimport { readFileSync } from 'node:fs';\n";
    assert.deepEqual(
      importsOf('a/f.ts', text).map((i) => `${i.line} ${i.spec}`),
      ['1 ./x.js', '4 ../a/y.js', '5 ./z.js', '6 ./side.js', '7 ../c/m.js', '8 node:fs'],
    );
  });

  it('allows imports leftwards and within a module, and names every other edge with its file and line', () => {
    const imports: ImportLine[] = [
      { file: 'a/one.ts', line: 1, spec: '../core/server.js' },
      { file: 'a/one.ts', line: 2, spec: './two.js' },
      { file: 'c/x.ts', line: 3, spec: '../b/y.js' },
      { file: 'c/x.ts', line: 4, spec: 'node:net' },
      { file: 'e.ts', line: 1, spec: './proxy/x/thing.js' },
      { file: 'core/server.ts', line: 7, spec: '../a/one.js' },
      { file: 'a/one.ts', line: 9, spec: '../b/y.js' },
      { file: 'proxy/x/thing.ts', line: 2, spec: '../../e.js' },
      { file: 'b/y.ts', line: 5, spec: '../f/z.js' },
      { file: 'f/z.ts', line: 1, spec: '../core/server.js' },
      { file: 'b/y.ts', line: 6, spec: '../../bench/run.js' },
    ];
    assert.deepEqual(violations(layers, imports), [
      'core/server.ts:7 core → a (../a/one.js)',
      'a/one.ts:9 a → b (../b/y.js)',
      'proxy/x/thing.ts:2 proxy/x → e.ts (../../e.js)',
      'b/y.ts:5 b → f (../f/z.js): f is not in the drawing',
      'f/z.ts:1 f is not in the drawing',
      'b/y.ts:6 imports ../../bench/run.js, outside src/',
    ]);
  });

  it('maps proxy sub-folders to their own modules, and h2 into http', () => {
    assert.equal(moduleOf('proxy/tcp/build.ts'), 'proxy/tcp');
    assert.equal(moduleOf('proxy/upstream-pool.ts'), 'proxy');
    assert.equal(moduleOf('proxy/h2/h2-stream-socket.ts'), 'proxy/http');
    assert.equal(moduleOf('index.ts'), 'index.ts');
  });
});

describe('the dependency rule of docs/architecture.md', () => {
  it('every import in src/ follows the layer order drawn in docs/architecture.md', () => {
    const layers = parseLayers(drawingOf(readFileSync(join(root, 'docs', 'architecture.md'), 'utf8')));
    const bad = violations(layers, sourceImports());
    assert.deepEqual(bad, [], `imports against the layer order of docs/architecture.md:\n  ${bad.join('\n  ')}`);
  });

  it('every module of the drawing exists in src/', () => {
    const layers = parseLayers(drawingOf(readFileSync(join(root, 'docs', 'architecture.md'), 'utf8')));
    const present = new Set(files(srcDir).map((f) => moduleOf(f.slice(srcDir.length + 1).split('\\').join('/'))));
    for (const name of layers.flat()) assert.ok(present.has(name), `the drawing names ${name}, which src/ does not have`);
  });

  it('core/ and balancer/ import no node: module', () => {
    for (const imp of sourceImports()) {
      const m = moduleOf(imp.file);
      if (m === 'core' || m === 'balancer') assert.ok(!imp.spec.startsWith('node:'), `${imp.file}:${imp.line} imports ${imp.spec}`);
    }
  });
});
