import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { fastest, LatencyScore, type FastestOptions } from '../../balancer/fastest.js';
import { registerBalancer, type BalancerFactory } from '../../balancer/index.js';
import { serverId } from '../../core/server.js';
import { send, type Reply } from '../../test-helpers/http.js';
import { rawRequest, startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';

function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  return send(port, path, { method });
}

const SERVERS = [
  { name: 'm1', address: '127.0.0.1:9', url: 'http://mirror1.example.com' },
  { name: 'm2', address: '127.0.0.1:9', url: 'https://mirror2.example.com/pub/' },
  { name: 'm3', address: '[::1]:8080' },
];

async function startRedirect(listener: Record<string, unknown> = {}, servers: unknown[] = SERVERS, pool: Record<string, unknown> = {}): Promise<{ p: Portico; port: number }> {
  const p = createPortico({
    admin: { enabled: false },
    log: { level: 'error' },
    listeners: [{ name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web', ...listener }],
    pools: [{ name: 'web', balance: 'roundrobin', servers, ...pool }],
  });
  await p.start();
  return { p, port: p.address('mirror')!.port };
}

describe('redirect listener', () => {
  it("alternates servers and keeps the path and query: Location is the server's url + path + query, 302, no-store", async () => {
    const { p, port } = await startRedirect();
    try {
      const locations: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await get(port, '/files/a%20b.iso?mirror=1&x=y');
        assert.equal(r.status, 302);
        assert.equal(r.headers['cache-control'], 'no-store');
        locations.push(String(r.headers['location']));
      }
      assert.deepEqual(locations.slice(0, 3), [
        'http://mirror1.example.com/files/a%20b.iso?mirror=1&x=y',
        'https://mirror2.example.com/pub/files/a%20b.iso?mirror=1&x=y',
        'http://[::1]:8080/files/a%20b.iso?mirror=1&x=y',
      ]);
      assert.deepEqual(locations.slice(3), locations.slice(0, 3));
    } finally {
      await p.stop(100);
    }
  });

  it('answers with the configured status (307) and no body to HEAD', async () => {
    const { p, port } = await startRedirect({ status: 307 });
    try {
      const r = await get(port, '/x', 'HEAD');
      assert.equal(r.status, 307);
      assert.equal(r.body, '');
      assert.equal(r.headers['location'], 'http://mirror1.example.com/x');
      const post = await get(port, '/form', 'POST');
      assert.equal(post.status, 307);
    } finally {
      await p.stop(100);
    }
  });

  it('skips a down server; with none available answers 503 with Retry-After', async () => {
    const { p, port } = await startRedirect();
    try {
      const pool = p.pools.get('web')!;
      pool.setOp(serverId('web', 'm2'), 'down', 'probe');
      const hosts = new Set<string>();
      for (let i = 0; i < 6; i++) hosts.add(new URL(String((await get(port, '/')).headers['location'])).host);
      assert.deepEqual([...hosts].sort(), ['[::1]:8080', 'mirror1.example.com']);
      pool.setOp(serverId('web', 'm1'), 'down', 'probe');
      pool.setOp(serverId('web', 'm3'), 'down', 'probe');
      const r = await get(port, '/');
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal(r.headers['location'], undefined);
    } finally {
      await p.stop(100);
    }
  });

  it('a server whose health check fails is skipped (real probes)', async () => {
    const up: Origin = await startOrigin('up');
    const gone: Origin = await startOrigin('gone');
    const { p, port } = await startRedirect({}, [
      { name: 'up', address: up.address, url: 'http://up.example.com' },
      { name: 'gone', address: gone.address, url: 'http://gone.example.com' },
    ], { health: { type: 'tcp', interval: '200ms', timeout: '2s', rise: 1, fall: 1 } });
    try {
      await gone.close();
      await waitFor(() => p.pools.get('web')!.current.set.available.length === 1, 15_000, 'gone to be marked down');
      for (let i = 0; i < 4; i++) assert.equal((await get(port, '/a')).headers['location'], 'http://up.example.com/a');
    } finally {
      await p.stop(100);
      await up.close();
    }
  });

  it('keep-alive: several requests on one connection; a malformed request gets 400 and the connection is closed', async () => {
    const { p, port } = await startRedirect();
    try {
      const two = await rawRequest(port, 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.equal(two.match(/HTTP\/1\.1 302 Found/g)?.length, 2);
      assert.match(two, /Location: http:\/\/mirror1\.example\.com\/1\r\n/);
      assert.match(two, /Location: https:\/\/mirror2\.example\.com\/pub\/2\r\n/);
      for (const bad of [
        'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
        'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
        'GET / HTTP/1.1\r\n\r\n',
        'GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n',
        'GET / HTTP/1.1\nHost: a\n\n',
      ]) {
        const out = await rawRequest(port, bad);
        assert.match(out, /^HTTP\/1\.1 400 /, JSON.stringify(bad));
        assert.doesNotMatch(out, /Location:/);
        assert.match(out, /Connection: close/);
      }
      assert.match(await rawRequest(port, `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: a\r\n\r\n`), /^HTTP\/1\.1 414 /);
      // a request with a body is answered, and its connection closed
      const withBody = await rawRequest(port, 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello');
      assert.match(withBody, /^HTTP\/1\.1 302 /);
      assert.match(withBody, /Connection: close/);
    } finally {
      await p.stop(100);
    }
  });

  it('3000 pipelined requests from a client that reads late are all answered, in order', async () => {
    const { p, port } = await startRedirect();
    try {
      const n = 3000;
      const text = await new Promise<string>((resolve) => {
        const sock = connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        let seen = 0;
        const done = (): void => {
          clearTimeout(timer);
          sock.destroy();
          resolve(Buffer.concat(chunks).toString('latin1'));
        };
        const timer = setTimeout(done, 10_000);
        sock.pause(); // read nothing for a while (the server stops reading past 256 KiB of unread answers)
        sock.on('connect', () => {
          sock.write(Array.from({ length: n }, (_, i) => `GET /${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join(''));
          setTimeout(() => sock.resume(), 300);
        });
        sock.on('data', (c: Buffer) => {
          chunks.push(c);
          seen += c.toString('latin1').split('HTTP/1.1 302 Found').length - 1;
          if (seen >= n) done();
        });
        sock.on('error', done);
      });
      const paths = [...text.matchAll(/Location: \S+?\/(\d+)\r\n/g)].map((m) => Number(m[1]));
      assert.equal(paths.length, n);
      assert.ok(paths.every((v, i) => v === i));
    } finally {
      await p.stop(100);
    }
  });

  it('a reload changes the status in place, keeping the socket', async () => {
    const { p, port } = await startRedirect();
    try {
      assert.equal((await get(port, '/')).status, 302);
      await p.reload({
        admin: { enabled: false },
        log: { level: 'error' },
        listeners: [{ name: 'mirror', protocol: 'redirect', listen: `127.0.0.1:${port}`, pool: 'web', status: 308 }],
        pools: [{ name: 'web', balance: 'roundrobin', servers: SERVERS }],
      });
      assert.equal(p.address('mirror')!.port, port);
      assert.equal((await get(port, '/')).status, 308);
    } finally {
      await p.stop(100);
    }
  });
});

describe('redirect listener and the balancer', () => {
  it("a redirect answer is not fed to the balancer's latency and traffic statistics (fastest's peak-EWMA), nor to passive health; a proxied request is", async () => {
    // `fastest` (peak-EWMA of response time) as registered, with its hooks and its scores watched.
    const calls: { acquire: number; release: { latencyMs: number | undefined; ok: boolean }[] } = { acquire: 0, release: [] };
    let carry: Map<string, unknown> | undefined;
    const observed: BalancerFactory<FastestOptions> = {
      name: 'fastest-observed',
      parseOptions: (raw) => fastest.parseOptions(raw),
      build(set, options, deps) {
        carry = deps.carry;
        const b = fastest.build(set, options, deps);
        return {
          name: 'fastest-observed',
          pick: (ctx) => b.pick(ctx),
          onAcquire(s) {
            calls.acquire++;
            b.onAcquire?.(s);
          },
          onRelease(s, o) {
            calls.release.push({ latencyMs: o.latencyMs, ok: o.ok });
            b.onRelease?.(s, o);
          },
        };
      },
    };
    registerBalancer(observed);
    const origins = await startOrigins(2);
    const p = createPortico({
      admin: { enabled: false },
      log: { level: 'error' },
      listeners: [
        { name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web' },
        { name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] },
      ],
      pools: [
        {
          name: 'web',
          balance: 'fastest-observed',
          passive: { consecutiveErrors: 3, ejectFor: '30s' },
          servers: origins.map((o) => ({ name: o.name, address: o.address, url: `http://${o.name}.example.com` })),
        },
      ],
    });
    await p.start();
    try {
      const scores = (): number[] => [...((carry!.get('fastest') as Map<unknown, LatencyScore>).values())].map((s) => s.costMs);
      const pool = p.pools.get('web')!;
      const requests = (): number => [...pool].reduce((n, rt) => n + rt.requests, 0);
      for (let i = 0; i < 20; i++) assert.equal((await get(p.address('mirror')!.port, `/r${i}`)).status, 302);
      assert.equal(calls.acquire, 0, 'a redirect acquires no server');
      assert.equal(calls.release.length, 0, 'nor releases one: no ~0 ms sample');
      assert.deepEqual(scores(), [0, 0], 'the peak-EWMA scores are untouched');
      assert.equal(requests(), 20, "each server's request counter counts the clients sent to it");
      assert.equal([...pool].reduce((n, rt) => n + rt.active, 0), 0);
      // The same pool behind an http listener: each proxied request is acquired, released and measured.
      for (let i = 0; i < 4; i++) assert.equal((await get(p.address('web')!.port, `/p${i}`)).status, 200);
      assert.equal(calls.acquire, 4);
      assert.equal(calls.release.length, 4);
      assert.ok(calls.release.every((r) => r.ok && r.latencyMs !== undefined && r.latencyMs > 0), JSON.stringify(calls.release));
      assert.ok(scores().some((c) => c > 0), 'a served request moves the scores');
      assert.equal(requests(), 24);
    } finally {
      await p.stop(100);
      await Promise.all(origins.map((o) => o.close()));
    }
  });
});
