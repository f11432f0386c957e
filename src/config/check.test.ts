import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import { runCheck } from './check.js';
import { EXAMPLE_CONFIG } from './example.js';
import '../balancer/index.js';


const dir = mkdtempSync(join(tmpdir(), 'portico-check-'));
function check(name: string, text?: string): { code: number; out: string[] } {
  const file = join(dir, name);
  if (text !== undefined) writeFileSync(file, text);
  const out: string[] = [];
  return { code: runCheck(file, (l) => out.push(l)), out };
}

const RUNNABLE = `listeners:
  - name: web
    protocol: http
    listen: 127.0.0.1:8080
    routes:
      - { match: { path: /api/ }, pool: api }
      - pool: web
pools:
  - name: web
    servers: [ { name: a, address: 127.0.0.1:9101, weight: 2 } ]
  - name: api
    balance: hash
    hash: { key: 'header:X-User' }
    servers: [ { name: b, address: 127.0.0.1:9102 } ]
`;

test('a valid file: "FILE: ok" and 0', () => {
  const file = join(dir, 'ok.yaml');
  assert.deepEqual(check('ok.yaml', RUNNABLE), { code: 0, out: [`${file}: ok`] });
});

test('the example configuration: what this version cannot run yet is refused at its key, not ignored; with nothing left, "ok"', () => {
  const file = join(dir, 'example.yaml');
  const r = check('example.yaml', EXAMPLE_CONFIG);
  if (r.code === 0) {
    assert.deepEqual(r.out, [`${file}: ok`]);
    return;
  }
  assert.equal(r.code, 1);
  assert.ok(r.out.length > 0);
  // The example's certificate files are not in the test's directory: check reads them as start would.
  for (const line of r.out) assert.match(line, /^.+:\d+:\d+ \S+: (.+ is not available in this version of Portico|certs\/\S+: cannot be read \(ENOENT\))$/);
  assert.ok(r.out.every((l) => l.startsWith(`${file}:`)));
  // dns and redirect listeners, access lists, rate limits and persistence through a redirect listener run: none is refused
  assert.ok(!r.out.some((l) => /protocol (dns|redirect)|access|rateLimit|persistence/.test(l)));
});

test('a configuration a listener cannot honour is refused at its key (line:column)', () => {
  const file = join(dir, 'prefix.yaml');
  const r = check(
    'prefix.yaml',
    `listeners:
  - name: mirror
    protocol: redirect
    listen: 127.0.0.1:8081
    pool: web
pools:
  - name: web
    persistence: { type: cookie, name: JSESSIONID, mode: prefix, secret: s }
    servers: [ { name: a, address: 127.0.0.1:9101 } ]
`,
  );
  assert.equal(r.code, 1);
  assert.equal(r.out.length, 1);
  assert.match(r.out[0]!, new RegExp(`^${file.replace(/[.*+?^\${}()|[\]\\]/g, '\\$&')}:5:\\d+ listeners\\.0\\.pool: cookie persistence in prefix mode needs the server's own cookie`));
});

test('an invalid file: every issue on its own line and 1', () => {
  const file = join(dir, 'bad.yaml');
  const text = 'listeners:\n  - { name: w, protocol: http, listen: 1.2.3.4:99999, routes: [ { pool: nope } ] }\npools: []\n';
  assert.deepEqual(check('bad.yaml', text), {
    code: 1,
    out: [
      `${file}:2:32 listeners.0.listen: bad address "1.2.3.4:99999": port 99999 is out of range 0-65535`,
      `${file}:2:67 listeners.0.routes.0.pool: pool "nope" does not exist (no pool is defined)`,
    ],
  });
});

test('a missing file is an error at 0:0', () => {
  const file = join(dir, 'missing.yaml');
  assert.deepEqual(check('missing.yaml'), { code: 1, out: [`${file}:0:0 (file): cannot read the configuration: no such file`] });
});
