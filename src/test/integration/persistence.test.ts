import { strict as assert } from 'node:assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { createPortico, type Portico } from '../../app/app.js';
import { ManualClock } from '../../core/clock.js';
import { serverId } from '../../core/server.js';
import { MemoryStore } from '../../store/memory-store.js';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import { send as sendRequest, type Reply } from '../../test-helpers/http.js';
import { startOrigin, type Handler, type Origin } from '../../test-helpers/origins.js';
import { startPortico, started, webConfig } from '../../test-helpers/portico.js';

function send(port: number, path: string, headers: Record<string, string> = {}, localAddress?: string): Promise<Reply> {
  return sendRequest(port, path, { headers, localAddress });
}

/** `name=value` of the Set-Cookie for `name`, or undefined. */
function setCookie(r: Pick<Reply, 'headers'>, name: string): string | undefined {
  for (const c of r.headers['set-cookie'] ?? []) if (c.startsWith(name + '=')) return c;
  return undefined;
}
const pair = (setCookieLine: string): string => setCookieLine.split(';')[0]!;

/** Every Cookie header an origin received. */
const cookiesSeen = (o: Origin): string[] => o.heads.map((h) => String(h.headers.cookie ?? ''));

async function withOrigins(n: number, handler?: Handler): Promise<Origin[]> {
  const out: Origin[] = [];
  for (let i = 0; i < n; i++) out.push(await startOrigin(`s${i + 1}`, handler));
  return out;
}

function app(origins: Origin[], persistence: unknown, extra: Record<string, unknown> = {}, deps = {}): Portico {
  const pool = { name: 'web', balance: 'roundrobin', persistence, servers: origins.map((o) => ({ name: o.name, address: o.address })), ...extra };
  return createPortico(webConfig([pool], {}, { stateDir: mkdtempSync(join(tmpdir(), 'portico-state-')) }), deps);
}

describe('persistence: cookie insert', () => {
  let origins: Origin[];
  let p: Portico;
  let port = 0;

  before(async () => {
    origins = await withOrigins(3);
    ({ p, port } = await started(app(origins, { type: 'cookie', name: 'SRV', mode: 'insert', maxAge: '1h' })));
  });
  after(async () => {
    await p.stop(100);
    await Promise.all(origins.map((o) => o.close()));
  });

  it('50 requests carrying the cookie land on one server, which never sees the cookie', async () => {
    const first = await send(port, '/');
    assert.equal(first.status, 200);
    const sc = setCookie(first, 'SRV');
    assert.ok(sc !== undefined, 'the first answer pins the client');
    assert.match(sc, /^SRV=[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/);
    for (const o of origins) assert.ok(!sc.includes(o.address) && !sc.includes('127.0.0.1'), 'no server address in the cookie');
    const cookie = `theme=dark; ${pair(sc)}; lang=fr`;
    for (let i = 0; i < 50; i++) {
      const r = await send(port, '/', { Cookie: cookie });
      assert.equal(r.status, 200);
      assert.equal(r.body, first.body, `request ${i} left ${first.body}`);
      assert.equal(setCookie(r, 'SRV'), undefined, 'a pinned client is not sent the cookie again');
    }
    for (const o of origins) {
      for (const c of cookiesSeen(o)) assert.ok(!c.includes('SRV='), `${o.name} saw ${c}`);
    }
    const home = origins.find((o) => o.name === first.body)!;
    assert.ok(cookiesSeen(home).includes('theme=dark; lang=fr'), 'the other cookies pass');
  });

  it('a pinned server that goes down: the client lands elsewhere with no error and a new cookie', async () => {
    const first = await send(port, '/');
    const cookie = pair(setCookie(first, 'SRV')!);
    const pool = p.pools.get('web')!;
    pool.setOp(serverId('web', first.body), 'down', 'probe');
    try {
      const r = await send(port, '/', { Cookie: cookie });
      assert.equal(r.status, 200);
      assert.notEqual(r.body, first.body);
      const again = setCookie(r, 'SRV');
      assert.ok(again !== undefined && pair(again) !== cookie, 'a new cookie');
      for (let i = 0; i < 10; i++) assert.equal((await send(port, '/', { Cookie: pair(again) })).body, r.body);
    } finally {
      pool.setOp(serverId('web', first.body), 'up', 'probe');
    }
  });

  it('maint sends the client elsewhere; drain keeps it', async () => {
    const first = await send(port, '/');
    const cookie = pair(setCookie(first, 'SRV')!);
    const pool = p.pools.get('web')!;
    pool.setAdmin(first.body, 'drain');
    try {
      for (let i = 0; i < 10; i++) assert.equal((await send(port, '/', { Cookie: cookie })).body, first.body, 'drain keeps persisted clients');
      for (let i = 0; i < 10; i++) assert.notEqual((await send(port, '/')).body, first.body, 'a new client never goes to a draining server');
      pool.setAdmin(first.body, 'maint');
      const r = await send(port, '/', { Cookie: cookie });
      assert.equal(r.status, 200);
      assert.notEqual(r.body, first.body);
      assert.ok(setCookie(r, 'SRV') !== undefined);
    } finally {
      pool.setAdmin(first.body, 'ready');
    }
  });

  it('a killed server: the connect fails, the request is retried elsewhere and the client re-pinned', async () => {
    const victim = await startOrigin('victim');
    const q = app([victim, ...origins], { type: 'cookie', name: 'SRV', mode: 'insert' });
    await q.start();
    try {
      const qport = q.address('web')!.port;
      let cookie = '';
      for (let i = 0; i < 10 && cookie === ''; i++) {
        const r = await send(qport, '/');
        if (r.body === 'victim') cookie = pair(setCookie(r, 'SRV')!);
      }
      assert.notEqual(cookie, '', 'a client pinned to the victim');
      await victim.close();
      const r = await send(qport, '/', { Cookie: cookie });
      assert.equal(r.status, 200);
      assert.notEqual(r.body, 'victim');
      const fresh = setCookie(r, 'SRV');
      assert.ok(fresh !== undefined && pair(fresh) !== cookie);
    } finally {
      await q.stop(100);
    }
  });

  it('a forged or stale cookie pins nothing and is never forwarded', async () => {
    const r = await send(port, '/', { Cookie: 'SRV=AAAAAAAAAAAAAAAAAAAAAA' });
    assert.equal(r.status, 200);
    assert.ok(setCookie(r, 'SRV') !== undefined);
    const r2 = await send(port, '/', { Cookie: 'SRV=127.0.0.1:80' });
    assert.equal(r2.status, 200);
  });

  it('the secret kept in stateDir makes cookies outlive a restart', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'portico-state-'));
    const config = (): unknown => ({
      log: { level: 'error' },
      admin: { enabled: false },
      stateDir,
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', persistence: { type: 'cookie' }, servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
    });
    const one = createPortico(config());
    await one.start();
    let cookie = '';
    let home = '';
    try {
      const r = await send(one.address('web')!.port, '/');
      cookie = pair(setCookie(r, 'SRV')!);
      home = r.body;
    } finally {
      await one.stop(100);
    }
    const two = createPortico(config());
    await two.start();
    try {
      const port2 = two.address('web')!.port;
      for (let i = 0; i < 6; i++) {
        const r = await send(port2, '/', { Cookie: cookie });
        assert.equal(r.body, home);
        assert.equal(setCookie(r, 'SRV'), undefined);
      }
    } finally {
      await two.stop(100);
    }
  });
});

describe('persistence: cookie prefix', () => {
  let origins: Origin[];
  let p: Portico;
  let port = 0;
  let n = 0;

  before(async () => {
    // An application that opens a session when the request has none and echoes the one it got.
    origins = await withOrigins(3, (req, res, origin) => {
      const m = /(?:^|; )JSESSIONID=([^;]*)/.exec(String(req.headers.cookie ?? ''));
      const headers: Record<string, string | string[]> = { 'content-type': 'text/plain', 'x-session': m?.[1] ?? '' };
      if (m === null || !m[1]!.startsWith(origin.name + '-')) headers['set-cookie'] = [`JSESSIONID=${origin.name}-${++n}; Path=/; HttpOnly`, 'other=1'];
      res.writeHead(200, headers);
      res.end(origin.name);
    });
    ({ p, port } = await started(app(origins, { type: 'cookie', name: 'JSESSIONID', mode: 'prefix' })));
  });
  after(async () => {
    await p.stop(100);
    await Promise.all(origins.map((o) => o.close()));
  });

  it("round-trips JSESSIONID: prefixed for the client, as the application set it for the server", async () => {
    const first = await send(port, '/');
    const sc = setCookie(first, 'JSESSIONID')!;
    const m = /^JSESSIONID=([A-Za-z0-9_-]{22})~([^;]+); Path=\/; HttpOnly$/.exec(sc);
    assert.ok(m !== null, sc);
    const appSession = m[2]!;
    assert.ok(appSession.startsWith(first.body + '-'));
    assert.ok((first.headers['set-cookie'] ?? []).includes('other=1'), 'other cookies untouched');
    for (let i = 0; i < 50; i++) {
      const r = await send(port, '/', { Cookie: pair(sc) });
      assert.equal(r.body, first.body);
      assert.equal(r.headers['x-session'], appSession, 'the server got its own session id back');
      assert.equal(setCookie(r, 'JSESSIONID'), undefined);
    }
  });

  it('the pinned server goes down: another one serves, and its new session is prefixed with its token', async () => {
    const first = await send(port, '/');
    const cookie = pair(setCookie(first, 'JSESSIONID')!);
    const pool = p.pools.get('web')!;
    pool.setOp(serverId('web', first.body), 'down', 'probe');
    try {
      const r = await send(port, '/', { Cookie: cookie });
      assert.equal(r.status, 200);
      assert.notEqual(r.body, first.body);
      const fresh = setCookie(r, 'JSESSIONID')!;
      assert.ok(fresh !== undefined && pair(fresh) !== cookie);
      for (let i = 0; i < 5; i++) assert.equal((await send(port, '/', { Cookie: pair(fresh) })).body, r.body);
    } finally {
      pool.setOp(serverId('web', first.body), 'up', 'probe');
    }
  });
});

describe('persistence: source-ip', () => {
  let origins: Origin[];
  before(async () => {
    origins = await withOrigins(3);
  });
  after(async () => {
    await Promise.all(origins.map((o) => o.close()));
  });

  it('50 requests from one address land on one server; a down server sends it elsewhere', async () => {
    const p = app(origins, { type: 'source-ip', ttl: '10m' });
    await p.start();
    try {
      const port = p.address('web')!.port;
      const first = (await send(port, '/')).body;
      for (let i = 0; i < 50; i++) assert.equal((await send(port, '/')).body, first);
      p.pools.get('web')!.setOp(serverId('web', first), 'down', 'probe');
      const moved = await send(port, '/');
      assert.equal(moved.status, 200);
      assert.notEqual(moved.body, first);
      p.pools.get('web')!.setOp(serverId('web', first), 'up', 'probe');
      for (let i = 0; i < 10; i++) assert.equal((await send(port, '/')).body, moved.body, 're-pinned where it was redispatched');
    } finally {
      await p.stop(100);
    }
  });

  it('an entry idle for longer than ttl is forgotten', async () => {
    const clock = new ManualClock(1_000_000);
    const p = app(origins, { type: 'source-ip', ttl: '1m' }, {}, { clock });
    await p.start();
    try {
      const port = p.address('web')!.port;
      const first = (await send(port, '/')).body; // round robin: s1
      clock.advance(59_000);
      assert.equal((await send(port, '/')).body, first, 'used within the ttl: kept (and refreshed)');
      clock.advance(59_000);
      assert.equal((await send(port, '/')).body, first);
      clock.advance(60_000);
      assert.notEqual((await send(port, '/')).body, first, 'idle for the ttl: round robin places it anew');
    } finally {
      await p.stop(100);
    }
  });

  it('the table keeps at most size entries, dropping the least recently used', async () => {
    const p = app(origins, { type: 'source-ip', ttl: '10m', size: 2 });
    await p.start();
    try {
      const port = p.address('web')!.port;
      const a = (await send(port, '/', {}, '127.0.0.1')).body; // s1
      const b = (await send(port, '/', {}, '127.0.0.2')).body; // s2
      assert.equal((await send(port, '/', {}, '127.0.0.1')).body, a, 'a is pinned, and now the most recently used');
      const c = (await send(port, '/', {}, '127.0.0.3')).body; // s3; evicts b
      assert.deepEqual(new Set([a, b, c]).size, 3);
      assert.equal((await send(port, '/', {}, '127.0.0.1')).body, a);
      assert.equal((await send(port, '/', {}, '127.0.0.3')).body, c);
      assert.notEqual((await send(port, '/', {}, '127.0.0.2')).body, b, 'b was evicted and placed anew (round robin: s1)');
    } finally {
      await p.stop(100);
    }
  });

  it('a reload keeps the stick table while persistence is unchanged, and applies a changed one', async () => {
    const config = (persistence: unknown, retries: number): unknown => ({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', balance: 'roundrobin', retries, persistence, servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
    });
    const p = createPortico(config({ type: 'source-ip', ttl: '10m' }, 2));
    await p.start();
    try {
      const port = p.address('web')!.port;
      const home = (await send(port, '/', {}, '127.0.0.1')).body; // round robin: s1
      await p.reload(config({ type: 'source-ip', ttl: '10m' }, 3));
      for (let i = 0; i < 5; i++) assert.equal((await send(port, '/', {}, '127.0.0.1')).body, home, 'kept across the reload');
      await p.reload(config({ type: 'cookie', secret: 'reloaded' }, 3));
      const r = await send(port, '/', {}, '127.0.0.1');
      assert.equal(r.status, 200);
      assert.ok(setCookie(r, 'SRV') !== undefined, 'the new persistence is in force');
    } finally {
      await p.stop(100);
    }
  });

  it('two nodes sharing a store: a client pinned through one is pinned through the other', async () => {
    const store = new MemoryStore();
    const one = app(origins, { type: 'source-ip', ttl: '10m' }, {}, { store });
    const two = app(origins, { type: 'source-ip', ttl: '10m' }, {}, { store });
    await one.start();
    await two.start();
    try {
      await send(two.address('web')!.port, '/', {}, '127.0.0.9'); // moves two's round robin past s1
      const home = (await send(one.address('web')!.port, '/', {}, '127.0.0.8')).body;
      for (let i = 0; i < 10; i++) assert.equal((await send(two.address('web')!.port, '/', {}, '127.0.0.8')).body, home);
    } finally {
      await one.stop(100);
      await two.stop(100);
    }
  });

  it('a failing store never fails a request', async () => {
    const store = new MemoryStore();
    await store.close(); // every operation now rejects
    const p = app(origins, { type: 'source-ip', ttl: '10m' }, {}, { store });
    await p.start();
    try {
      const port = p.address('web')!.port;
      const first = await send(port, '/', {}, '127.0.0.5');
      assert.equal(first.status, 200);
      for (let i = 0; i < 5; i++) assert.equal((await send(port, '/', {}, '127.0.0.5')).body, first.body, 'the local table still pins');
      const other = await send(port, '/', {}, '127.0.0.6');
      assert.equal(other.status, 200, 'a miss that asks the broken store is "not pinned"');
    } finally {
      await p.stop(100);
    }
  });
});

describe('persistence: url-param', () => {
  let origins: Origin[];
  before(async () => {
    // /login opens a session: a Set-Cookie on s*, or a redirect carrying ;jsessionid= .
    origins = await withOrigins(3, (req, res, origin) => {
      if (req.url === '/login') {
        res.writeHead(200, { 'set-cookie': `JSESSIONID=${origin.name}-cookie; Path=/` });
        res.end(origin.name);
        return;
      }
      if (req.url === '/start') {
        res.writeHead(302, { location: `/app;jsessionid=${origin.name}-loc?step=1` });
        res.end(origin.name);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(origin.name);
    });
  });
  after(async () => {
    await Promise.all(origins.map((o) => o.close()));
  });

  it('learn: ids learnt from Set-Cookie and Location pin both URL forms to the issuing server', async () => {
    const p = app(origins, { type: 'url-param', name: 'jsessionid', learn: true });
    await p.start();
    try {
      const port = p.address('web')!.port;
      const login = await send(port, '/login');
      const sid = `${login.body}-cookie`;
      for (let i = 0; i < 25; i++) assert.equal((await send(port, `/app;jsessionid=${sid}`)).body, login.body, 'path parameter');
      for (let i = 0; i < 25; i++) assert.equal((await send(port, `/app?x=1&JSESSIONID=${sid}`)).body, login.body, 'query parameter');
      const start = await send(port, '/start');
      assert.equal(start.status, 302);
      for (let i = 0; i < 10; i++) assert.equal((await send(port, `/app;jsessionid=${start.body}-loc?step=${i}`)).body, start.body, 'learnt from Location');
      // the server goes down: elsewhere, no error
      p.pools.get('web')!.setOp(serverId('web', login.body), 'down', 'probe');
      const moved = await send(port, `/app;jsessionid=${sid}`);
      assert.equal(moved.status, 200);
      assert.notEqual(moved.body, login.body);
      p.pools.get('web')!.setOp(serverId('web', login.body), 'up', 'probe');
      assert.equal((await send(port, `/app;jsessionid=${sid}`)).body, moved.body, 're-pinned where it was redispatched');
    } finally {
      await p.stop(100);
    }
  });

  it('without learn: a session id is hashed to one server, ids spread over the servers', async () => {
    const p = app(origins, { type: 'url-param', name: 'SID' });
    await p.start();
    try {
      const port = p.address('web')!.port;
      const homes = new Set<string>();
      for (let s = 0; s < 12; s++) {
        const home = (await send(port, `/page?SID=user-${s}`)).body;
        homes.add(home);
        for (let i = 0; i < 4; i++) assert.equal((await send(port, `/other;SID=user-${s}`)).body, home);
      }
      assert.ok(homes.size >= 2, `ids spread: ${[...homes].join(',')}`);
      const home = (await send(port, '/x?SID=fixed')).body;
      for (let i = 0; i < 50; i++) assert.equal((await send(port, '/x?SID=fixed')).body, home);
    } finally {
      await p.stop(100);
    }
  });
});

describe('persistence: cookie insert over https', { skip: missingBinary('openssl') }, () => {
  let origins: Origin[];
  let p: Portico;
  let port = 0;

  before(async () => {
    origins = await withOrigins(3);
    const cert = selfSigned(['www.example.com']);
    ({ p, port } = await startPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'secure', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] }, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', persistence: { type: 'cookie', secret: 'https test' }, servers: origins.map((o) => ({ name: o.name, address: o.address })) }],
    }, 'secure'));
  });
  after(async () => {
    await p.stop(100);
    await Promise.all(origins.map((o) => o.close()));
  });

  const get = (cookie?: string): Promise<Omit<Reply, 'ms'>> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = cookie === undefined ? {} : { Cookie: cookie };
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/', servername: 'www.example.com', rejectUnauthorized: false, agent: false, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end();
    });

  it('the cookie is Secure on a TLS connection, pins HTTP/1.1 and h2 requests alike, and never reaches a server', async () => {
    const first = await get();
    const sc = setCookie(first, 'SRV')!;
    assert.match(sc, /; HttpOnly; SameSite=Lax; Secure$/);
    for (let i = 0; i < 10; i++) assert.equal((await get(pair(sc))).body, first.body);
    const session = h2connect(`https://127.0.0.1:${port}`, { servername: 'www.example.com', rejectUnauthorized: false });
    try {
      for (let i = 0; i < 10; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          const s = session.request({ ':path': '/', cookie: pair(sc) });
          let b = '';
          s.setEncoding('utf8');
          s.on('data', (d: string) => (b += d));
          s.on('end', () => resolve(b));
          s.on('error', reject);
          s.end();
        });
        assert.equal(body, first.body, 'h2 stream pinned too');
      }
    } finally {
      session.close();
    }
    for (const o of origins) for (const c of cookiesSeen(o)) assert.ok(!c.includes('SRV='), `${o.name} saw ${c}`);
  });
});
