import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { serverId, type AdminState, type OpState, type Server, type ServerId } from '../core/server.js';
import { ServerSet, type ServerStatus } from '../core/server-set.js';
import { MemoryStore } from '../store/memory-store.js';
import type { StateStore } from '../store/state-store.js';
import { CookieInsertPersistence, CookiePrefixPersistence } from './cookie.js';
import { createPersistence, placeSticky, ServerTokens, type Placement } from './index.js';
import type { StickyRequest } from './request.js';
import { SourceIpPersistence } from './source-ip.js';
import { StickTable } from './stick-table.js';
import { UrlParamPersistence } from './url-param.js';

function server(name: string, weight = 1): Server {
  return { id: serverId('web', name), name, host: '10.0.0.1', port: 80, weight, backup: false, maxConnections: 0, meta: {} };
}
const A = server('a');
const B = server('b');
const C = server('c');

function set(states: Partial<Record<string, [AdminState, OpState]>> = {}, servers: Server[] = [A, B, C]): ServerSet {
  const status = new Map<ServerId, ServerStatus>();
  for (const s of servers) {
    const st = states[s.name];
    if (st !== undefined) status.set(s.id, { admin: st[0], op: st[1] });
  }
  return ServerSet.build(servers, status, 1);
}

function req(headers: [string, string][] = [], path = '/', query = '', clientAddress = '192.0.2.1'): StickyRequest {
  return { clientAddress, path, query, lnames: headers.map((h) => h[0].toLowerCase()), values: headers.map((h) => h[1]) };
}
const res = (headers: [string, string][]) => ({ lnames: headers.map((h) => h[0].toLowerCase()), values: headers.map((h) => h[1]) });

const tokens = new ServerTokens('test secret');

describe('ServerTokens', () => {
  it('gives an opaque 22-character token per server, stable for a secret and different across secrets', () => {
    const t = tokens.tokenOf(A.id);
    assert.match(t, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(tokens.tokenOf(A.id), t);
    assert.notEqual(tokens.tokenOf(B.id), t);
    assert.notEqual(new ServerTokens('other').tokenOf(A.id), t);
    assert.ok(!t.includes('10.0.0.1') && !t.includes('web'), 'the token shows nothing of the server');
  });

  it('maps a token back to its server in the set, and nothing else', () => {
    const s = set();
    assert.equal(tokens.serverFor(tokens.tokenOf(B.id), s), B);
    assert.equal(tokens.serverFor('x'.repeat(22), s), undefined);
    assert.equal(tokens.serverFor('short', s), undefined);
    assert.equal(tokens.serverFor(new ServerTokens('other').tokenOf(B.id), s), undefined);
  });

  it('refuses to mint a token before its secret is loaded', () => {
    assert.throws(() => new ServerTokens().tokenOf(A.id), /secret/);
  });
});

describe('cookie insert', () => {
  const p = new CookieInsertPersistence({ name: 'SRV' }, tokens);
  const tb = tokens.tokenOf(B.id);

  it('pins a request carrying the cookie, among other cookies and in any Cookie header', () => {
    assert.equal(p.lookup(req([['Cookie', `a=1; SRV=${tb}; z=2`]]), set()), B);
    assert.equal(p.lookup(req([['Cookie', 'a=1'], ['Cookie', `SRV=${tb}`]]), set()), B);
    assert.equal(p.lookup(req([['Cookie', `XSRV=${tb}`]]), set()), undefined);
    assert.equal(p.lookup(req([['Cookie', 'SRV=garbage']]), set()), undefined);
    assert.equal(p.lookup(req(), set()), undefined);
  });

  it('keeps a drained server pinned; a down, maint or removed one is not', () => {
    const cookie = req([['Cookie', `SRV=${tb}`]]);
    assert.equal(p.lookup(cookie, set({ b: ['drain', 'up'] })), B);
    assert.equal(p.lookup(cookie, set({ b: ['ready', 'down'] })), undefined);
    assert.equal(p.lookup(cookie, set({ b: ['maint', 'up'] })), undefined);
    assert.equal(p.lookup(cookie, set({}, [A, C])), undefined);
  });

  it('strips its cookie from what is forwarded and merges the Cookie headers', () => {
    assert.equal(p.forwardHeaders(req([['Cookie', `a=1; SRV=${tb}; z=2`]])), 'Cookie: a=1; z=2\r\n');
    assert.equal(p.forwardHeaders(req([['Cookie', `SRV=${tb}`]])), '');
    assert.equal(p.forwardHeaders(req([['Cookie', 'a=1'], ['Cookie', `SRV=${tb}`], ['Cookie', 'b=2']])), 'Cookie: a=1; b=2\r\n');
    assert.equal(p.forwardHeaders(req([['Cookie', 'SRVX=1; xSRV=2']])), 'Cookie: SRVX=1; xSRV=2\r\n');
    assert.equal(p.forwardHeaders(req([['Accept', '*/*']])), '');
    assert.deepEqual(p.requestHeaders, ['cookie']);
  });

  it('sets the cookie when the client is not pinned to the server that answered, with its attributes', () => {
    const line = p.commit(req(), undefined, B, undefined, false);
    assert.equal(line, `Set-Cookie: SRV=${tb}; Path=/; HttpOnly; SameSite=Lax\r\n`);
    assert.equal(p.commit(req(), undefined, B, B, false), '', 'already pinned there: nothing to set');
    assert.equal(p.commit(req(), undefined, B, A, false), line, 'redispatched: a new cookie');
    assert.equal(p.commit(req(), undefined, B, undefined, true), `Set-Cookie: SRV=${tb}; Path=/; HttpOnly; SameSite=Lax; Secure\r\n`);
    const q = new CookieInsertPersistence({ name: 'lb', maxAgeMs: 3_600_500, domain: 'example.com' }, tokens);
    assert.equal(q.commit(req(), undefined, B, undefined, false), `Set-Cookie: lb=${tb}; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Domain=example.com\r\n`);
  });
});

describe('cookie prefix', () => {
  const p = new CookiePrefixPersistence({ name: 'JSESSIONID' }, tokens);
  const ta = tokens.tokenOf(A.id);

  it("prefixes the server's own cookie with its token on the way out, and only that cookie", () => {
    const out = p.commit(
      req(),
      res([
        ['Set-Cookie', 'JSESSIONID=abc123; Path=/; HttpOnly'],
        ['Content-Type', 'text/plain'],
        ['Set-Cookie', 'theme=dark'],
      ]),
      A,
      undefined,
      false,
    );
    assert.equal(out, `Set-Cookie: JSESSIONID=${ta}~abc123; Path=/; HttpOnly\r\nSet-Cookie: theme=dark\r\n`);
    assert.deepEqual(p.responseHeaders, ['set-cookie']);
  });

  it('leaves a deletion (empty value) unprefixed', () => {
    assert.equal(p.commit(req(), res([['Set-Cookie', 'JSESSIONID=; Max-Age=0']]), A, undefined, false), 'Set-Cookie: JSESSIONID=; Max-Age=0\r\n');
  });

  it('pins by the prefix and gives the server its cookie back unprefixed', () => {
    const r = req([['Cookie', `theme=dark; JSESSIONID=${ta}~abc123`]]);
    assert.equal(p.lookup(r, set()), A);
    assert.equal(p.forwardHeaders(r), 'Cookie: theme=dark; JSESSIONID=abc123\r\n');
  });

  it('an unprefixed or foreign-prefixed cookie pins nothing; a stale prefix is still removed', () => {
    assert.equal(p.lookup(req([['Cookie', 'JSESSIONID=abc123']]), set()), undefined);
    const stale = req([['Cookie', `JSESSIONID=${new ServerTokens('old').tokenOf(A.id)}~abc123`]]);
    assert.equal(p.lookup(stale, set()), undefined);
    assert.equal(p.forwardHeaders(stale), 'Cookie: JSESSIONID=abc123\r\n');
    assert.equal(p.forwardHeaders(req([['Cookie', 'JSESSIONID=abc~def']])), 'Cookie: JSESSIONID=abc~def\r\n');
  });
});

describe('StickTable', () => {
  it('expires an idle entry after its TTL; use keeps it alive', () => {
    const clock = new ManualClock(0);
    const t = new StickTable({ namespace: 't:', ttlMs: 1000, size: 10, clock });
    t.set('k', 'a');
    clock.advance(999);
    assert.equal(t.get('k'), 'a');
    clock.advance(999);
    assert.equal(t.get('k'), 'a', 'the read refreshed it');
    clock.advance(1000);
    assert.equal(t.get('k'), undefined);
    assert.equal(t.size, 0);
  });

  it('keeps at most size entries, evicting the least recently used', () => {
    const clock = new ManualClock(0);
    const t = new StickTable({ namespace: 't:', ttlMs: 60_000, size: 3, clock });
    t.set('1', 'a');
    t.set('2', 'a');
    t.set('3', 'a');
    assert.equal(t.get('1'), 'a');
    t.set('4', 'a');
    assert.equal(t.size, 3);
    assert.equal(t.get('2'), undefined, 'the least recently used went first');
    assert.equal(t.get('1'), 'a');
    for (let i = 5; i < 1005; i++) t.set(String(i), 'b');
    assert.equal(t.size, 3);
  });

  it('writes through to the store with the TTL, and deletes what it evicts', async () => {
    const clock = new ManualClock(0);
    const store = new MemoryStore({ clock });
    const t = new StickTable({ namespace: 'ns:', ttlMs: 1000, size: 2, clock, store });
    t.set('x', 'a');
    t.set('y', 'b');
    await Promise.resolve();
    assert.equal(await store.get('ns:x'), 'a');
    t.set('x', 'c');
    t.set('z', 'd'); // evicts y
    await Promise.resolve();
    assert.equal(await store.get('ns:x'), 'c');
    assert.equal(await store.get('ns:y'), undefined);
    clock.advance(1000);
    assert.equal(await store.get('ns:z'), undefined, 'the store entry carries the TTL');
  });

  it('a local miss asks a shared store and keeps what it finds', async () => {
    const clock = new ManualClock(0);
    const store = new MemoryStore({ clock });
    await store.set('ns:k', 'from-another-node', 5000);
    const t = new StickTable({ namespace: 'ns:', ttlMs: 1000, size: 10, clock, store, readThrough: true });
    const v = t.get('k');
    assert.ok(v instanceof Promise);
    assert.equal(await v, 'from-another-node');
    assert.equal(t.get('k'), 'from-another-node', 'now a local, synchronous hit');
    assert.equal(await t.get('absent'), undefined);
  });

  it('without a shared store a miss is answered at once', () => {
    const t = new StickTable({ namespace: 'ns:', ttlMs: 1000, size: 10, clock: new ManualClock(0), store: new MemoryStore() });
    assert.equal(t.get('k'), undefined);
  });

  it('a failing or silent store means "not pinned", never an error', async () => {
    const errors: unknown[] = [];
    const broken: StateStore = {
      get: () => Promise.reject(new Error('down')),
      set: () => Promise.reject(new Error('down')),
      delete: () => Promise.reject(new Error('down')),
      incr: () => Promise.reject(new Error('down')),
      subscribe: () => Promise.reject(new Error('down')),
      publish: () => Promise.reject(new Error('down')),
      close: () => Promise.resolve(),
    };
    const clock = new ManualClock(0);
    const t = new StickTable({ namespace: 'n:', ttlMs: 1000, size: 10, clock, store: broken, readThrough: true, onStoreError: (e) => errors.push(e) });
    assert.equal(await t.get('k'), undefined);
    t.set('k', 'a');
    assert.equal(t.get('k'), 'a', 'the local table works without the store');
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(t.errors >= 2 && errors.length === t.errors);

    const silent: StateStore = { ...broken, get: () => new Promise(() => {}), set: () => Promise.resolve(), delete: () => Promise.resolve() };
    const s = new StickTable({ namespace: 'n:', ttlMs: 1000, size: 10, clock, store: silent, readThrough: true, storeTimeoutMs: 30 });
    const started = Date.now();
    assert.equal(await s.get('k'), undefined);
    assert.ok(Date.now() - started < 1000);
    assert.equal(s.errors, 1);

    const throwing: StateStore = {
      ...broken,
      get: () => {
        throw new Error('sync fault');
      },
      set: () => {
        throw new Error('sync fault');
      },
    };
    const u = new StickTable({ namespace: 'n:', ttlMs: 1000, size: 10, clock, store: throwing, readThrough: true });
    assert.equal(await u.get('k'), undefined);
    u.set('k', 'a');
    assert.equal(u.get('k'), 'a');
  });
});

describe('source-ip', () => {
  it('pins a client address to the server that last served it, and forgets it after the TTL', () => {
    const clock = new ManualClock(0);
    const p = new SourceIpPersistence(new StickTable({ namespace: 's:', ttlMs: 60_000, size: 100, clock }));
    const r = req([], '/', '', '198.51.100.7');
    assert.equal(p.lookup(r, set()), undefined);
    assert.equal(p.commit(r, undefined, C, undefined, false), '');
    assert.equal(p.lookup(r, set()), C);
    assert.equal(p.lookup(req([], '/', '', '198.51.100.8'), set()), undefined);
    assert.equal(p.lookup(r, set({ c: ['drain', 'up'] })), C);
    assert.equal(p.lookup(r, set({ c: ['ready', 'down'] })), undefined);
    p.commit(r, undefined, A, undefined, false);
    assert.equal(p.lookup(r, set()), A, 're-pinned after a redispatch');
    clock.advance(60_000);
    assert.equal(p.lookup(r, set()), undefined);
  });
});

describe('url-param', () => {
  const table = (): StickTable => new StickTable({ namespace: 'u:', ttlMs: 60_000, size: 100, clock: new ManualClock(0) });

  it('learns session ids from Set-Cookie and Location, and pins both URL forms', () => {
    const p = new UrlParamPersistence({ name: 'JSESSIONID', learn: true }, table());
    p.commit(req(), res([['Set-Cookie', 'JSESSIONID=s1; Path=/']]), B, undefined, false);
    p.commit(req(), res([['Location', 'http://example.com/app;jsessionid=s2?x=1']]), C, undefined, false);
    p.commit(req(), res([['Location', '/next?a=1&jsessionid=s3']]), A, undefined, false);
    assert.equal(p.lookup(req([], '/app;jsessionid=s1'), set()), B);
    assert.equal(p.lookup(req([], '/app/page;jsessionid=s2/more'), set()), C);
    assert.equal(p.lookup(req([], '/app', 'x=1&JSESSIONID=s1'), set()), B);
    assert.equal(p.lookup(req([], '/app', 'jsessionid=s3'), set()), A);
    assert.equal(p.lookup(req([], '/app', 'jsessionid=unknown'), set()), undefined, 'an unknown id goes to the balancer');
    assert.equal(p.lookup(req([], '/app;jsessionid='), set()), undefined);
    assert.equal(p.lookup(req([], '/app'), set()), undefined);
  });

  it('pins the id a request carried to the server that served it', () => {
    const p = new UrlParamPersistence({ name: 'SID', learn: true }, table());
    p.commit(req([], '/', 'SID=fresh'), res([]), C, undefined, false);
    assert.equal(p.lookup(req([], '/', 'SID=fresh'), set()), C);
  });

  it('without learn, hashes an unknown id: the same server every time, spread over the servers', () => {
    const p = new UrlParamPersistence({ name: 'SID', learn: false }, table());
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const r = req([], '/', `SID=session-${i}`);
      const s = p.lookup(r, set()) as Server;
      assert.equal(p.lookup(r, set()), s);
      seen.set(s.name, (seen.get(s.name) ?? 0) + 1);
    }
    for (const n of ['a', 'b', 'c']) assert.ok((seen.get(n) ?? 0) > 60, `server ${n}: ${seen.get(n)}`);
    // a server going down moves only its own ids
    const r = req([], '/', 'SID=session-7');
    const first = p.lookup(r, set()) as Server;
    const down = set({ [first.name]: ['ready', 'down'] });
    const moved = p.lookup(r, down) as Server;
    assert.notEqual(moved.id, first.id);
    let kept = 0;
    for (let i = 0; i < 300; i++) {
      const q = req([], '/', `SID=session-${i}`);
      const before = p.lookup(q, set()) as Server;
      if (before.id !== first.id && p.lookup(q, down) === before) kept++;
    }
    assert.equal(kept, 300 - (seen.get(first.name) ?? 0));
  });

  it('a learnt id whose server is down is hashed again (learn: false) or rebalanced (learn: true)', () => {
    const p = new UrlParamPersistence({ name: 'SID', learn: false }, table());
    const r = req([], '/', 'SID=x');
    p.commit(r, undefined, A, undefined, false);
    assert.equal(p.lookup(r, set({ a: ['drain', 'up'] })), A, 'drain keeps it');
    const other = p.lookup(r, set({ a: ["ready", "down"] })) as Server | undefined;
    assert.ok(other !== undefined && other.id !== A.id);
    const q = new UrlParamPersistence({ name: 'SID', learn: true }, table());
    q.commit(r, undefined, A, undefined, false);
    assert.equal(q.lookup(r, set({ a: ['maint', 'up'] })), undefined);
  });
});

describe('createPersistence', () => {
  it('builds each type from its configuration; cookies without a secret share the state tokens', () => {
    const clock = new ManualClock(0);
    const stateTokens = new ServerTokens('state');
    const deps = { clock, stateTokens };
    const insert = createPersistence('web', { type: 'cookie', name: 'SRV', mode: 'insert' }, deps);
    assert.ok(insert instanceof CookieInsertPersistence);
    assert.match(insert.commit(req(), undefined, A, undefined, false), new RegExp(stateTokens.tokenOf(A.id)));
    const own = createPersistence('web', { type: 'cookie', name: 'SRV', mode: 'prefix', secret: 'mine' }, deps);
    assert.ok(own instanceof CookiePrefixPersistence);
    assert.ok(createPersistence('web', { type: 'source-ip', ttl: 1000, size: 10 }, deps) instanceof SourceIpPersistence);
    assert.ok(createPersistence('web', { type: 'url-param', name: 'SID', learn: true, ttl: 1000, size: 10 }, deps) instanceof UrlParamPersistence);
    assert.throws(() => createPersistence('web', { type: 'tls-session', ttl: 1000, size: 10 }, deps), /tcp/);
  });
});

describe('placeSticky (listeners that answer themselves)', () => {
  it('sends a new client where pick says and pins it; a pinned client goes to its server with nothing to set', () => {
    const p = new CookieInsertPersistence({ name: 'SRV' }, tokens);
    const first = placeSticky(p, req(), set(), () => C, false) as Placement;
    assert.equal(first.server, C);
    assert.equal(first.headers, `Set-Cookie: SRV=${tokens.tokenOf(C.id)}; Path=/; HttpOnly; SameSite=Lax\r\n`);
    const again = placeSticky(p, req([['Cookie', `SRV=${tokens.tokenOf(C.id)}`]]), set(), () => A, false) as Placement;
    assert.deepEqual(again, { server: C, headers: '' });
    const none = placeSticky(p, req(), set(), () => undefined, false) as Placement;
    assert.deepEqual(none, { server: undefined, headers: '' });
  });

  it('waits for a shared store when the lookup has to', async () => {
    const clock = new ManualClock(0);
    const store = new MemoryStore({ clock });
    await store.set('s:192.0.2.1', B.id, 60_000);
    const p = new SourceIpPersistence(new StickTable({ namespace: 's:', ttlMs: 60_000, size: 10, clock, store, readThrough: true }));
    const placed = placeSticky(p, req(), set(), () => A, false);
    assert.ok(placed instanceof Promise);
    assert.deepEqual(await placed, { server: B, headers: '' });
  });
});
