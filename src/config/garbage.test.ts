import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import '../app/listener-kinds.js';
import { ConfigError } from './errors.js';
import { EXAMPLE_CONFIG } from './example.js';
import '../balancer/index.js';
import { parseConfigText, validateConfig } from './load.js';


/** Runs `f`; it may return or throw a ConfigError with at least one well-formed line, nothing else. */
function onlyConfigErrors(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    assert.ok(err.issues.length > 0);
    for (const line of err.lines()) assert.match(line, /^(\S+:\d+:\d+|<object>) .+: ./s);
  }
}

test('random text never throws anything but a ConfigError', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom(...':-[]{}&*!|>\'"%@`#,? \n\t$abc01') })), (text) => {
      onlyConfigErrors(() => parseConfigText(text, 'random.yaml', {}, { runnable: false }));
    }),
    { numRuns: 1000 },
  );
});

test('the example with random edits never throws anything but a ConfigError', () => {
  const edit = fc.tuple(fc.nat({ max: EXAMPLE_CONFIG.length }), fc.nat({ max: 12 }), fc.string({ maxLength: 8 }));
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
      let text = EXAMPLE_CONFIG;
      for (const [at, cut, insert] of edits) text = text.slice(0, at) + insert + text.slice(at + cut);
      onlyConfigErrors(() => parseConfigText(text, 'edited.yaml', { PORTICO_ADMIN_TOKEN: 'x' }, { runnable: false }));
    }),
    { numRuns: 300 },
  );
});

test('random trees, as objects and as YAML, never throw anything but a ConfigError', () => {
  const keys = fc.constantFrom('listeners', 'pools', 'admin', 'name', 'protocol', 'listen', 'routes', 'pool', 'servers', 'address', 'match', 'health', 'type', 'hash', 'balance', 'x');
  const tree = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), tie('map'), tie('list')),
    map: fc.dictionary(keys, tie('node'), { maxKeys: 5 }),
    list: fc.array(tie('node'), { maxLength: 4 }),
  })).map;
  fc.assert(
    fc.property(tree, (t) => {
      onlyConfigErrors(() => validateConfig(t, { runnable: false }));
      onlyConfigErrors(() => parseConfigText(stringify(t), 'tree.yaml', {}, { runnable: false }));
    }),
    { numRuns: 500 },
  );
});
