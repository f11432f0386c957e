import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import '../../app/listener-kinds.js';
import '../../balancer/index.js';
import { ConfigError } from '../errors.js';
import { parseConfigText } from '../load.js';
import { checkLinearRegex, linearRegExp } from './linear-regex.js';
import { parseRegex } from './text.js';

const ACCEPTED = ['^/api/', '^/users/[0-9]+$', '^/(a+)+$', '(x+x+)+y', '^(a|a)*$', 'Mozilla.*Chrome/[0-9]+', '(?<id>[0-9]+)', '\\bfoo\\b', '[a-z]{1,16}', '^(?:GET|POST)$', 'x*?y'];
const REFUSED: [pattern: string, why: RegExp][] = [
  ['(a)\\1', /backreference/],
  ['(?<q>["\'])x\\k<q>', /backreference/],
  ['^/(?=admin)', /lookahead or lookbehind/],
  ['^/(?!public)', /lookahead or lookbehind/],
  ['(?<=/)x', /lookahead or lookbehind/],
  ['(?<!/)x', /lookahead or lookbehind/],
  ['a{1,100}', /counted repetition/],
  ['(a{1,10}){1,10}', /counted repetition/],
];

for (const p of ACCEPTED) {
  test(`linear regex: ${p} is accepted`, () => {
    assert.equal(checkLinearRegex(p), undefined);
    assert.deepEqual(parseRegex(p), { ok: true, value: p });
  });
}

for (const [p, why] of REFUSED) {
  test(`linear regex: ${p} is refused, saying why`, () => {
    const r = parseRegex(p);
    assert.equal(r.ok, false);
    const message = r.ok ? '' : r.message;
    assert.match(message, why);
    assert.match(message, /cannot be matched in linear time/);
    assert.throws(() => linearRegExp(p), why);
  });
}

/**
 * Run `match(pattern, input)` for a route matcher in a worker thread: a backtracking engine
 * would keep that thread busy for ages, and the worker is then ended after GUARD_MS (the test's
 * own thread stays free, so nothing hangs). Resolves with the match result, or 'busy'.
 */
const GUARD_MS = 20_000;
function matchIsolated(kind: 'path' | 'header' | 'userAgent' | 'query' | 'cookie' | 'bodyRegex', pattern: string, input: string): Promise<boolean | 'busy'> {
  const code = `
    const { parentPort, workerData: d } = require('node:worker_threads');
    (async () => {
      if (d.kind === 'bodyRegex') {
        const { linearRegExp } = await import(d.linear);
        parentPort.postMessage(linearRegExp(d.pattern).test(d.input));
        return;
      }
      const { compileMatch } = await import(d.router);
      const spec = d.kind === 'path' ? { pathRegex: d.pattern }
        : d.kind === 'userAgent' ? { userAgent: d.pattern }
        : d.kind === 'header' ? { header: { name: 'x-h', regex: d.pattern } }
        : d.kind === 'query' ? { query: { name: 'q', regex: d.pattern } }
        : { cookie: { name: 'c', regex: d.pattern } };
      const view = { path: d.kind === 'path' ? d.input : '/', host: 'a', method: 'GET',
        query: d.kind === 'query' ? 'q=' + d.input : '',
        lnames: ['x-h', 'user-agent', 'cookie'], values: [d.input, d.input, 'c=' + d.input] };
      parentPort.postMessage(compileMatch(spec)(view));
    })();`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, {
      eval: true,
      workerData: { kind, pattern, input, router: new URL('../../proxy/http/router.js', import.meta.url).href, linear: new URL('./linear-regex.js', import.meta.url).href },
    });
    const guard = setTimeout(() => {
      void w.terminate();
      resolve('busy');
    }, GUARD_MS);
    w.once('message', (m: boolean) => {
      clearTimeout(guard);
      void w.terminate();
      resolve(m);
    });
    w.once('error', (err) => {
      clearTimeout(guard);
      reject(err);
    });
  });
}

/** Inputs that make a backtracking engine take exponential time (64 repetitions: longer than any test could wait). */
const HOSTILE: [kind: Parameters<typeof matchIsolated>[0], pattern: string, input: string][] = [
  ['path', '^/(a+)+$', '/' + 'a'.repeat(64) + '!'],
  ['path', '^/(\\w+\\s?)*$', '/' + 'word '.repeat(30) + '!'],
  ['header', '^(a|a)*$', 'a'.repeat(64) + 'b'],
  ['userAgent', '(x+x+)+y', 'x'.repeat(64)],
  ['query', '^([a-z]+)*[0-9]$', 'a'.repeat(64) + '!'],
  ['cookie', '^(a|aa)+$', 'a'.repeat(64) + '!'],
  ['bodyRegex', '^(\\s*a\\s*)+$', ' a'.repeat(64) + '!'],
];
for (const [kind, p, input] of HOSTILE) {
  test(`linear regex: a ${kind} regex ${p} against a hostile input answers at once`, async () => {
    assert.equal(await matchIsolated(kind, p, input), false);
  });
}

test('linear regex: the same matchers still match what they should', async () => {
  assert.equal(await matchIsolated('path', '^/(a+)+$', '/' + 'a'.repeat(64)), true);
  assert.equal(await matchIsolated('userAgent', '(x+x+)+y', 'x'.repeat(64) + 'y'), true);
  assert.equal(await matchIsolated('header', '^(a|a)*$', 'a'.repeat(64)), true);
});

test('portico check names every regex that cannot run in linear time, at its FILE:LINE:COL', () => {
  const yaml = [
    'listeners:',
    '  - name: web',
    '    protocol: http',
    '    listen: 127.0.0.1:8080',
    '    routes:',
    "      - match: { pathRegex: '^/(a)\\1$' }",
    '        pool: web',
    "      - match: { header: { name: x-a, regex: '^(?!x)' } }",
    '        pool: web',
    '      - pool: web',
    'pools:',
    '  - name: web',
    "    health: { type: http, path: /, expect: { bodyRegex: 'ok{1,100}' } }",
    '    servers: [{ name: a, address: 127.0.0.1:9 }]',
    '',
  ].join('\n');
  assert.throws(
    () => parseConfigText(yaml, 'lb.yaml', {}, { runnable: false }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const lines = err.lines();
      assert.equal(lines.length, 3, lines.join('\n'));
      assert.match(lines[0]!, /^lb\.yaml:6:\d+ listeners\.0\.routes\.0\.match\.pathRegex: regular expression "\^\/\(a\)\\\\1\$" cannot be matched in linear time: it holds a backreference/);
      assert.match(lines[1]!, /^lb\.yaml:8:\d+ listeners\.0\.routes\.1\.match\.header\.regex: .*lookahead or lookbehind/);
      assert.match(lines[2]!, /^lb\.yaml:13:\d+ pools\.0\.health\.expect\.bodyRegex: .*counted repetition/);
      return true;
    },
  );
});
