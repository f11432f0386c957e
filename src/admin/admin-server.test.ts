import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { AdminServer, JsonReply, hostnameOf } from './admin-server.js';
import { conflict } from './admin-error.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const errorCode = (r: Reply): string => (JSON.parse(r.body) as { error: { code: string } }).error.code;

describe('AdminServer', () => {
  const admin = new AdminServer({ host: '127.0.0.1', port: 0, token: 's3cret', allowedHosts: ['lb.example.com'] });
  let port = 0;
  before(async () => {
    admin.route('GET', '/read', () => ({ ok: true }));
    admin.route('POST', '/echo', async (_req, _res, ctx) => new JsonReply(201, { got: await ctx.body() }));
    admin.route('DELETE', '/thing/{id}', (_req, _res, ctx) => {
      if (ctx.params.id === 'busy') throw conflict('thing busy is in use');
      return { deleted: ctx.params.id };
    });
    admin.route('GET', '/boom', () => {
      throw new Error('secret internals');
    });
    admin.route('GET', '/text', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain');
    });
    await admin.start();
    port = admin.address.port;
  });
  after(() => admin.stop(0));

  it('answers reads without a token and sends returned values as JSON', async () => {
    const r = await call(port, 'GET', '/read');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.deepEqual(JSON.parse(r.body), { ok: true });
    const t = await call(port, 'GET', '/text');
    assert.equal(t.body, 'plain');
    const head = await call(port, 'HEAD', '/read');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('requires the bearer token for mutations', async () => {
    const none = await call(port, 'POST', '/echo', { 'content-type': 'application/json' }, '{"a":1}');
    assert.equal(none.status, 401);
    assert.equal(errorCode(none), 'LB_ADMIN_UNAUTHORIZED');
    assert.match(String(none.headers['www-authenticate']), /Bearer/);
    const wrong = await call(port, 'POST', '/echo', { 'content-type': 'application/json', authorization: 'Bearer s3cres' }, '{}');
    assert.equal(wrong.status, 401);
    const prefix = await call(port, 'POST', '/echo', { 'content-type': 'application/json', authorization: 'Bearer s3c' }, '{}');
    assert.equal(prefix.status, 401);
    const ok = await call(port, 'POST', '/echo', { 'content-type': 'application/json', authorization: 'Bearer s3cret' }, '{"a":1}');
    assert.equal(ok.status, 201);
    assert.deepEqual(JSON.parse(ok.body), { got: { a: 1 } });
  });

  it('refuses a Host that is not an IP, localhost or listed (DNS rebinding)', async () => {
    const evil = await call(port, 'GET', '/read', { host: 'evil.example.net:9090' });
    assert.equal(evil.status, 403);
    assert.equal(errorCode(evil), 'LB_ADMIN_FORBIDDEN');
    assert.equal((await call(port, 'GET', '/read', { host: 'localhost:9090' })).status, 200);
    assert.equal((await call(port, 'GET', '/read', { host: 'LB.example.com' })).status, 200);
    assert.equal((await call(port, 'GET', '/read', { host: '[::1]:9090' })).status, 200);
    assert.equal((await call(port, 'GET', '/read', { host: '10.1.2.3' })).status, 200);
  });

  it('refuses cross-site browser mutations even with a loopback Host', async () => {
    const auth = { authorization: 'Bearer s3cret', 'content-type': 'application/json' };
    const foreign = await call(port, 'POST', '/echo', { ...auth, origin: 'http://evil.example.net' }, '{}');
    assert.equal(foreign.status, 403);
    const nullOrigin = await call(port, 'POST', '/echo', { ...auth, origin: 'null' }, '{}');
    assert.equal(nullOrigin.status, 403);
    const site = await call(port, 'POST', '/echo', { ...auth, 'sec-fetch-site': 'cross-site' }, '{}');
    assert.equal(site.status, 403);
    const same = await call(port, 'POST', '/echo', { ...auth, origin: `http://127.0.0.1:${port}` }, '{}');
    assert.equal(same.status, 201);
  });

  it('answers bad bodies, unknown paths and wrong methods with JSON errors', async () => {
    const auth = { authorization: 'Bearer s3cret' };
    const notJson = await call(port, 'POST', '/echo', { ...auth, 'content-type': 'text/plain' }, 'a=1');
    assert.equal(notJson.status, 415);
    const broken = await call(port, 'POST', '/echo', { ...auth, 'content-type': 'application/json' }, '{"a":');
    assert.equal(broken.status, 400);
    assert.equal(errorCode(broken), 'LB_ADMIN_BAD_REQUEST');
    const big = await call(port, 'POST', '/echo', { ...auth, 'content-type': 'application/json' }, `"${'x'.repeat(1024 * 1024 + 10)}"`);
    assert.equal(big.status, 413);
    const missing = await call(port, 'GET', '/nope');
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing), 'LB_ADMIN_NOT_FOUND');
    const method = await call(port, 'PUT', '/thing/1', auth);
    assert.equal(method.status, 405);
    assert.equal(method.headers.allow, 'DELETE');
    const busy = await call(port, 'DELETE', '/thing/busy', auth);
    assert.equal(busy.status, 409);
    assert.deepEqual(JSON.parse(busy.body), { error: { code: 'LB_ADMIN_CONFLICT', message: 'thing busy is in use' } });
    const boom = await call(port, 'GET', '/boom');
    assert.equal(boom.status, 500);
    assert.ok(!boom.body.includes('secret internals'));
  });

  it('aborts long-lived responses when the server stops', async () => {
    const other = new AdminServer({ host: '127.0.0.1', port: 0, token: '' });
    let signalled: Promise<string> | undefined;
    other.route('GET', '/stream', (_req, res, ctx) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: hello\n\n');
      signalled = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('aborted')));
      ctx.signal.addEventListener('abort', () => res.end());
    });
    await other.start();
    const done = call(other.address.port, 'GET', '/stream');
    const until = Date.now() + 2000;
    while (signalled === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await other.stop(1000);
    assert.equal(await signalled, 'aborted');
    assert.match((await done).body, /data: hello/);
  });

  it('parses Host header values', () => {
    assert.equal(hostnameOf('a.b:9090'), 'a.b');
    assert.equal(hostnameOf('A.B.'), 'a.b');
    assert.equal(hostnameOf('[::1]:1'), '::1');
    assert.equal(hostnameOf('[::1'), undefined);
    assert.equal(hostnameOf('a:b'), undefined);
    assert.equal(hostnameOf(''), undefined);
    assert.equal(hostnameOf(undefined), undefined);
  });
});
