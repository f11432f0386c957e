import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { startOrigin, type Origin } from '../../test-helpers/origins.js';

/**
 * Hostile clients of the admin API: path tricks, Host headers it must not answer to,
 * cross-origin changes, wrong tokens, bodies too large or not JSON, and clients that never
 * finish a request. Each case asserts the refusal, that nothing changed, and that the API then
 * answers a well-behaved client. Deadlines are short here (admin.timeouts) and each wait ends on
 * the server's close, with a guard far below Node.js's own 30 s check.
 */

const TOKEN = 'the-admin-token-0123456789';
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;
const GUARD_MS = 15_000;

interface Answer {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** The connection was closed by the server. */
  readonly closed: boolean;
}

/** Write `parts` on a new connection (one write each, `gapMs` apart), read until the server closes. */
function raw(port: number, parts: readonly (string | Buffer)[], o: { gapMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the admin API did not close the connection within ${GUARD_MS} ms`));
    }, GUARD_MS);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(guard);
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      const head = at < 0 ? text : text.slice(0, at);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      resolve({ status: m === null ? 0 : Number(m[1]), head, body: at < 0 ? '' : text.slice(at + 4), closed: true });
    });
    sock.on('connect', () => {
      let i = 0;
      const next = (): void => {
        if (sock.destroyed || i >= parts.length) return;
        sock.write(parts[i++]!);
        if (o.gapMs === undefined) next();
        else timer = setTimeout(next, o.gapMs);
      };
      next();
    });
  });
}

/** A request with Connection: close; `head` holds extra header lines. */
function req(method: string, target: string, head = '', body?: string): string {
  const len = body === undefined ? '' : `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  const host = /^host:/im.test(head) ? '' : 'Host: 127.0.0.1\r\n';
  return `${method} ${target} HTTP/1.1\r\n${host}${head}${len}Connection: close\r\n\r\n${body ?? ''}`;
}

const JSON_TYPE = 'Content-Type: application/json\r\n';
const PATCH = (head: string, body = '{"weight":7}'): string => req('PATCH', '/api/v1/pools/web/servers/o1', head + JSON_TYPE, body);

describe('hostile admin API clients', () => {
  let origin: Origin;
  let dir: string;
  let p: Portico;
  let admin = 0;

  before(async () => {
    origin = await startOrigin('o1');
    dir = mkdtempSync(join(tmpdir(), 'portico-hostile-admin-'));
    p = createPortico({
      log: { level: 'error' },
      admin: {
        listen: '127.0.0.1:0',
        token: TOKEN,
        allowedHosts: ['admin.example.com'],
        maxBodyBytes: 2048,
        timeouts: { header: '400ms', body: '400ms', keepAlive: '400ms' },
      },
      stateDir: dir,
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address, weight: 1 }] }],
    });
    await p.start();
    admin = p.admin!.address.port;
  });
  after(async () => {
    await p.stop(0);
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The API answers a well-behaved client, and server o1 still has its configured weight. */
  async function assertHealthy(): Promise<void> {
    const r = await raw(admin, [req('GET', '/api/v1/status/ready')]);
    assert.equal(r.status, 200, r.head);
    const s = await raw(admin, [req('GET', '/api/v1/pools/web/servers/o1')]);
    assert.equal(s.status, 200, s.head);
    assert.equal((JSON.parse(s.body) as { weight: number }).weight, 1, 'nothing changed');
  }

  const PATHS: [name: string, target: string][] = [
    ['encoded dot-dot segments (%2e%2e)', '/api/v1/%2e%2e/%2e%2e/metrics'],
    ['upper-case encoded dot-dot (%2E%2E)', '/api/v1/pools/%2E%2E/servers'],
    ['a raw .. segment', '/api/v1/pools/../../metrics'],
    ['a raw . segment', '/./metrics'],
    ['a mixed .%2e segment', '/dashboard/.%2e/package.json'],
    ['an encoded slash and dot-dot in the dashboard file', '/dashboard/..%2Fpackage.json'],
    ['an encoded slash in a pool name', '/api/v1/pools/web%2f..%2f..'],
    ['a backslash path', '/api\\v1\\pools'],
    ['an encoded backslash', '/dashboard/..%5cpackage.json'],
    ['an encoded NUL', '/api/v1/pools/web%00'],
    ['malformed percent-encoding', '/api/v1/pools/%zz'],
    ['a network-path reference (//host/x)', '//evil.example.com/metrics'],
    ['an absolute-form target', 'http://127.0.0.1/metrics'],
    ['the asterisk form', '*'],
  ];
  for (const [name, target] of PATHS) {
    test(`path trick: ${name} is refused with 400`, async () => {
      const r = await raw(admin, [req('GET', target, AUTH)]);
      assert.equal(r.status, 400, r.head);
      assert.match(r.body, /LB_ADMIN/);
      await assertHealthy();
    });
  }

  test('path trick: a dot-dot segment on a change is refused before the change is looked at', async () => {
    const r = await raw(admin, [req('PATCH', '/api/v1/pools/web/servers/x/%2e%2e/o1', AUTH + JSON_TYPE, '{"weight":9}')]);
    assert.equal(r.status, 400, r.head);
    await assertHealthy();
  });

  test('path trick: a 64 KiB path is refused and the connection closed', async () => {
    const r = await raw(admin, [req('GET', '/' + 'a'.repeat(65_536))]);
    assert.ok(r.closed);
    assert.ok(r.status === 0 || r.status === 414 || r.status === 431 || r.status === 400, r.head);
    await assertHealthy();
  });

  const HOSTS: [name: string, host: string, status: number][] = [
    ['a foreign name (DNS rebinding)', 'evil.example.net', 403],
    ['a name that ends in an allowed one', 'evil.admin.example.com', 403],
    ['a name that starts with localhost', 'localhost.evil.example.net', 403],
    ['a name embedding the address (nip.io style)', '127.0.0.1.nip.io', 403],
    ['userinfo in the Host', 'user@127.0.0.1', 403],
    ['a Host with a path', '127.0.0.1/x', 403],
    ['a Host with a bad port', '127.0.0.1:99999999', 400],
    ['two colons', 'a:b:c', 400],
    ['an unclosed IPv6 literal', '[::1', 400],
  ];
  for (const [name, host, status] of HOSTS) {
    test(`Host allowlist: ${name} is refused with ${status}`, async () => {
      const r = await raw(admin, [req('GET', '/api/v1/pools', `Host: ${host}\r\n${AUTH}`)]);
      assert.equal(r.status, status, r.head);
      await assertHealthy();
    });
  }

  test('Host allowlist: a change under a foreign Host is refused even with the token', async () => {
    const r = await raw(admin, [PATCH(`Host: evil.example.net\r\n${AUTH}`)]);
    assert.equal(r.status, 403, r.head);
    await assertHealthy();
  });

  test('Host allowlist: no Host header at all is refused', async () => {
    const r = await raw(admin, ['GET /api/v1/pools HTTP/1.1\r\nConnection: close\r\n\r\n']);
    assert.equal(r.status, 400, r.head);
    await assertHealthy();
  });

  test('Host allowlist: the allowed names (listed, localhost, trailing dot, IP literal) are answered', async () => {
    for (const host of ['admin.example.com', 'ADMIN.example.com:9090', 'localhost', 'localhost.', '127.0.0.1', '[::1]']) {
      const r = await raw(admin, [req('GET', '/api/v1/status/ready', `Host: ${host}\r\n`)]);
      assert.equal(r.status, 200, `${host}: ${r.head}`);
    }
  });

  const CROSS: [name: string, head: string][] = [
    ['Origin of another site', 'Origin: http://evil.example.net\r\n'],
    ['Origin: null (sandboxed frame, file:)', 'Origin: null\r\n'],
    ['a malformed Origin', 'Origin: not a url\r\n'],
    ['Origin of a look-alike host', 'Origin: http://admin.example.com.evil.example.net\r\n'],
    ['Sec-Fetch-Site: cross-site', 'Sec-Fetch-Site: cross-site\r\n'],
  ];
  for (const [name, head] of CROSS) {
    test(`cross-origin change: ${name} is refused with 403 even with the token`, async () => {
      const r = await raw(admin, [PATCH(AUTH + head)]);
      assert.equal(r.status, 403, r.head);
      assert.doesNotMatch(r.head, /access-control-allow-origin/i);
      await assertHealthy();
    });
  }

  test('cross-origin: a preflight from another site gets no CORS permission', async () => {
    const r = await raw(admin, [req('OPTIONS', '/api/v1/pools/web/servers/o1', 'Origin: http://evil.example.net\r\nAccess-Control-Request-Method: PATCH\r\n')]);
    assert.ok(r.status >= 400, r.head);
    assert.doesNotMatch(r.head, /access-control-allow/i);
    await assertHealthy();
  });

  test('cross-origin: a read from another site carries no Access-Control-Allow-Origin', async () => {
    const r = await raw(admin, [req('GET', '/api/v1/pools', 'Origin: http://evil.example.net\r\n')]);
    assert.doesNotMatch(r.head, /access-control-allow/i);
    await assertHealthy();
  });

  test('cross-origin: a form post (text/plain, no preflight) with the token is refused as not JSON', async () => {
    const r = await raw(admin, [req('PATCH', '/api/v1/pools/web/servers/o1', AUTH + 'Content-Type: text/plain\r\n', '{"weight":7}')]);
    assert.equal(r.status, 415, r.head);
    await assertHealthy();
  });

  const TOKENS: [name: string, head: string][] = [
    ['no Authorization header', ''],
    ['a wrong token of the same length', `Authorization: Bearer ${'x'.repeat(TOKEN.length)}\r\n`],
    ['the token with its last character changed', `Authorization: Bearer ${TOKEN.slice(0, -1)}X\r\n`],
    ['a prefix of the token', `Authorization: Bearer ${TOKEN.slice(0, 8)}\r\n`],
    ['the token with a suffix', `Authorization: Bearer ${TOKEN}x\r\n`],
    ['a 4 KiB token', `Authorization: Bearer ${'t'.repeat(4096)}\r\n`],
    ['the Basic scheme', `Authorization: Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}\r\n`],
    ['an empty bearer', 'Authorization: Bearer \r\n'],
  ];
  const wrongBodies = new Set<string>();
  for (const [name, head] of TOKENS) {
    test(`token: ${name} is refused with 401`, async () => {
      const r = await raw(admin, [PATCH(head)]);
      assert.equal(r.status, 401, r.head);
      assert.match(r.head, /www-authenticate: Bearer/i);
      if (head.includes('Bearer ') && !head.includes('Bearer \r')) wrongBodies.add((JSON.parse(r.body) as { error: { message: string } }).error.message);
      await assertHealthy();
    });
  }

  test('token: every wrong bearer token gets the same answer (compared as SHA-256 digests with timingSafeEqual, whatever its length)', () => {
    assert.equal(wrongBodies.size, 1, [...wrongBodies].join(' | '));
  });

  test('token: the token in the query string is not accepted', async () => {
    const r = await raw(admin, [req('PATCH', `/api/v1/pools/web/servers/o1?token=${TOKEN}`, JSON_TYPE, '{"weight":7}')]);
    assert.equal(r.status, 401, r.head);
    await assertHealthy();
  });

  const BODIES: [name: string, parts: () => string[], status: number][] = [
    ['a JSON body over admin.maxBodyBytes (Content-Length)', () => [PATCH(AUTH, JSON.stringify({ weight: 7, pad: 'x'.repeat(4000) }))], 413],
    [
      'a chunked JSON body growing past admin.maxBodyBytes',
      () => [`PATCH /api/v1/pools/web/servers/o1 HTTP/1.1\r\nHost: 127.0.0.1\r\n${AUTH}${JSON_TYPE}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, ...Array.from({ length: 6 }, () => `400\r\n${' '.repeat(1024)}\r\n`), '0\r\n\r\n'],
      413,
    ],
    ['a Content-Length of 10 GB', () => [`PATCH /api/v1/pools/web/servers/o1 HTTP/1.1\r\nHost: 127.0.0.1\r\n${AUTH}${JSON_TYPE}Content-Length: 10000000000\r\nConnection: close\r\n\r\n{`], 413],
    ['JSON nested 1,000 deep', () => [PATCH(AUTH, '['.repeat(1000) + ']'.repeat(1000))], 400],
    ['invalid JSON', () => [PATCH(AUTH, '{"weight":')], 400],
    ['a JSON string instead of an object', () => [PATCH(AUTH, '"weight"')], 400],
    ['a __proto__ key', () => [PATCH(AUTH, '{"__proto__":{"weight":7,"polluted":true}}')], 422],
    ['an unknown key next to a valid one', () => [PATCH(AUTH, '{"weight":7,"address":"10.0.0.1:80"}')], 422],
    ['a weight of the wrong type', () => [PATCH(AUTH, '{"weight":"7; rm -rf /"}')], 422],
    ['a body with invalid UTF-8', () => [PATCH(AUTH, '{"weight":7,"x":"\xff\xfe"}')], 422],
  ];
  for (const [name, parts, status] of BODIES) {
    test(`body: ${name} is refused with ${status}`, async () => {
      const r = await raw(admin, parts());
      assert.equal(r.status, status, r.head + r.body);
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'no prototype pollution');
      await assertHealthy();
    });
  }

  const SLOW: [name: string, parts: string[], gapMs?: number][] = [
    ['a client that connects and sends nothing', []],
    ['a request head never finished', ['GET /api/v1/pools HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n']],
    ['a request head dripped one byte every 50 ms', [...'GET /api/v1/pools HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ' + 'p'.repeat(200) + '\r\n\r\n'], 50],
    ['a body shorter than its Content-Length', [`PATCH /api/v1/pools/web/servers/o1 HTTP/1.1\r\nHost: 127.0.0.1\r\n${AUTH}${JSON_TYPE}Content-Length: 100\r\n\r\n{"weight":`]],
    ['a keep-alive connection left idle after its answer', ['GET /api/v1/status/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']],
  ];
  for (const [name, parts, gapMs] of SLOW) {
    test(`deadline: ${name} is closed by admin.timeouts`, async () => {
      const r = await raw(admin, parts, gapMs === undefined ? {} : { gapMs });
      assert.ok(r.closed);
      // The idle connection had its answer first; the others get none.
      assert.equal(r.status, parts.length === 1 && parts[0]!.endsWith('\r\n\r\n') ? 200 : 0, r.head);
      await assertHealthy();
    });
  }
});
