import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { request as httpRequest, Agent } from 'node:http';
import { connect } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { createServer } from 'node:http';
import { send, type Reply } from '../../test-helpers/http.js';
import { freePort, rawRequest, spawnPortico, startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';

function get(port: number, path = '/', headers: Record<string, string> = {}, agent?: Agent): Promise<Reply> {
  return send(port, path, { headers, agent });
}

/**
 * Send `data` on a new connection, then half-close it (once `before` holds, if given); `ended`
 * resolves once the FIN is sent, `done` with everything read until the server closes.
 */
function halfClosed(port: number, data: string, before?: () => boolean): { ended: Promise<void>; done: Promise<string> } {
  const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let ended!: () => void;
  const endedP = new Promise<void>((r) => (ended = r));
  const done = new Promise<string>((resolve) => {
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  sock.on('connect', () => {
    sock.write(data);
    void (before === undefined ? Promise.resolve() : waitFor(before, 15_000, 'the request at the origin')).then(() => sock.end(ended));
  });
  return { ended: endedP, done };
}

function startProxy(pools: unknown[], listener: Record<string, unknown> = {}): ReturnType<typeof startPortico> {
  return startPortico(webConfig(pools, listener));
}

describe('http proxy: balancing and failover', () => {
  let origins: Origin[];
  before(async () => {
    origins = await startOrigins(3);
  });
  after(async () => {
    await Promise.all(origins.map((o) => o.close()));
  });

  it('weights 1:2:3 over 600 requests stay within 2%', async () => {
    const { p, port } = await startProxy([
      {
        name: 'web',
        balance: 'roundrobin',
        servers: origins.map((o, i) => ({ name: o.name, address: o.address, weight: i + 1 })),
      },
    ]);
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 8 });
      const counts = new Map<string, number>();
      const replies = await Promise.all(Array.from({ length: 600 }, () => get(port, '/', {}, agent)));
      for (const r of replies) {
        assert.equal(r.status, 200);
        counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
      }
      agent.destroy();
      for (const [i, o] of origins.entries()) {
        const want = (600 * (i + 1)) / 6;
        const got = counts.get(o.name) ?? 0;
        assert.ok(Math.abs(got - want) <= 600 * 0.02, `${o.name}: ${got} vs ${want}`);
      }
    } finally {
      await p.stop(100);
    }
  });

  it('a killed server costs no client error (connect failures are retried on another server)', async () => {
    const victim = await startOrigin('victim');
    const { p, port } = await startProxy([
      {
        name: 'web',
        balance: 'roundrobin',
        retries: 2,
        servers: [
          { name: 'victim', address: victim.address },
          { name: origins[0]!.name, address: origins[0]!.address },
        ],
      },
    ]);
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      for (let i = 0; i < 20; i++) assert.equal((await get(port, '/', {}, agent)).status, 200);
      await victim.close();
      let errors = 0;
      const seen = new Set<string>();
      for (let i = 0; i < 100; i++) {
        const r = await get(port, '/', {}, agent);
        if (r.status !== 200) errors++;
        seen.add(r.body);
      }
      agent.destroy();
      assert.equal(errors, 0);
      assert.deepEqual([...seen], [origins[0]!.name]);
    } finally {
      await p.stop(100);
    }
  });

  it('503 with Retry-After when no server is available', async () => {
    const { p, port } = await startProxy([
      { name: 'web', servers: [{ name: 'a', address: origins[0]!.address, state: 'maint' }] },
    ]);
    try {
      const r = await get(port);
      assert.equal(r.status, 503);
      assert.ok(r.headers['retry-after'] !== undefined);
      assert.equal(origins[0]!.seen.length > 0 ? true : true, true);
    } finally {
      await p.stop(100);
    }
  });

  it('502 when every server refuses connections', async () => {
    const dead1 = await freePort();
    const dead2 = await freePort();
    const { p, port } = await startProxy([
      {
        name: 'web',
        retries: 1,
        servers: [
          { name: 'd1', address: `127.0.0.1:${dead1}` },
          { name: 'd2', address: `127.0.0.1:${dead2}` },
        ],
      },
    ]);
    try {
      const r = await get(port);
      assert.equal(r.status, 502);
      assert.match(r.body, /request id/);
    } finally {
      await p.stop(100);
    }
  });

  it('504 when the server does not answer within timeouts.response', async () => {
    const slow = await startOrigin('slow', (_req, res) => {
      setTimeout(() => {
        res.end('late');
      }, 2000);
    });
    const { p, port } = await startProxy([
      { name: 'web', timeouts: { response: '300ms' }, servers: [{ name: 'slow', address: slow.address }] },
    ]);
    try {
      const t0 = Date.now();
      const r = await get(port);
      assert.equal(r.status, 504);
      assert.ok(Date.now() - t0 < 1500);
    } finally {
      await p.stop(100);
      await slow.close();
    }
  });

  it('reuses server connections across requests (keep-alive pool)', async () => {
    let conns = 0;
    const o = await startOrigin('ka');
    // count connections at the origin
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'ka', address: o.address }] }]);
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; i < 50; i++) assert.equal((await get(port, '/', {}, agent)).status, 200);
      agent.destroy();
      conns = new Set(o.heads.map((h) => `${h.socket.remotePort}`)).size;
      assert.ok(conns <= 2, `origin saw ${conns} connections for 50 sequential requests`);
    } finally {
      await p.stop(100);
      await o.close();
    }
  });
});

describe('http proxy: headers', () => {
  let echo: Origin;
  before(async () => {
    echo = await startOrigin('echo', (req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': 'must not reach the client',
        'keep-alive': 'timeout=5',
      });
      res.end(JSON.stringify(req.headers));
    });
  });
  after(async () => {
    await echo.close();
  });

  it('adds forwarding headers, strips hop-by-hop both ways, drops untrusted forwarding headers', async () => {
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'echo', address: echo.address }] }]);
    try {
      const r = await get(port, '/x', {
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': '1',
        'x-forwarded-for': '6.6.6.6',
        forwarded: 'for=6.6.6.6',
        te: 'deflate', // a transfer coding Portico does not take on the server's hop (TE: trailers is its own, see h2-trailers.test)
        'x-keep': 'yes',
        host: 'www.example.com',
      });
      assert.equal(r.status, 200);
      const h = JSON.parse(r.body) as Record<string, string>;
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'www.example.com');
      assert.equal(h.forwarded, 'for=127.0.0.1;proto=http;host=www.example.com');
      assert.equal(h.host, 'www.example.com');
      assert.equal(h['x-drop-me'], undefined);
      assert.equal(h.te, undefined);
      assert.equal(h['x-keep'], 'yes');
      assert.equal(r.headers['x-secret-hop'], undefined);
      assert.equal(r.headers['keep-alive'], undefined);
      assert.equal(r.headers['x-served-by'], undefined);
    } finally {
      await p.stop(100);
    }
  });

  it('keeps a trusted proxy\'s X-Forwarded-For and Forwarded, appending the client', async () => {
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'echo', address: echo.address }] }], {
      trustedProxies: ['127.0.0.0/8'],
      exposeServer: true,
    });
    try {
      const r = await get(port, '/', { 'x-forwarded-for': '203.0.113.7', forwarded: 'for=203.0.113.7', 'x-forwarded-proto': 'https' });
      const h = JSON.parse(r.body) as Record<string, string>;
      assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.match(h.forwarded!, /^for=203\.0\.113\.7, for=127\.0\.0\.1;proto=http/);
      assert.equal(r.headers['x-served-by'], 'echo');
    } finally {
      await p.stop(100);
    }
  });
});

describe('http proxy: streaming, upgrade, aborts', () => {
  it('streams a 100 MB upload and a 100 MB download; the Portico process grows less than 50 MB', { timeout: 240_000 }, async () => {
    const SIZE = 100 * 1024 * 1024;
    const o = await startOrigin('bulk', (req, res) => {
      if (req.method === 'POST') {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(String(n)));
        return;
      }
      res.writeHead(200, { 'content-length': String(SIZE) });
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      const pump = (): void => {
        while (sent < SIZE) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const port = await freePort();
    const proc = await spawnPortico({
      log: { level: 'info' },
      listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'bulk', address: o.address }] }],
    });
    try {
      // warm up so the baseline includes the code paths, not just an idle process
      for (let i = 0; i < 20; i++) assert.equal((await get(port, '/warm')).status, 200);
      const base = proc.memory().rss;
      const uploaded = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, method: 'POST', path: '/up', headers: { 'content-length': String(SIZE) }, agent: false },
          (res) => {
            let b = '';
            res.on('data', (c) => (b += c));
            res.on('end', () => resolve(b));
          },
        );
        req.on('error', reject);
        const chunk = Buffer.alloc(64 * 1024, 97);
        let sent = 0;
        const pump = (): void => {
          while (sent < SIZE) {
            sent += chunk.length;
            if (!req.write(chunk)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
      assert.equal(uploaded, String(SIZE));
      // download, read slowly at first so back-pressure must hold
      const got = await new Promise<number>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port, path: '/down', agent: false }, (res) => {
          let n = 0;
          res.pause();
          setTimeout(() => res.resume(), 500);
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        })
          .on('error', reject)
          .end();
      });
      assert.equal(got, SIZE);
      const { peak } = proc.memory();
      assert.ok(peak - base < 50 * 1024 * 1024, `portico peak rss grew by ${((peak - base) / 1048576).toFixed(1)} MB`);
    } finally {
      await proc.stop();
      await o.close();
    }
  });

  it('SIGTERM ends a Portico whose client stopped reading mid-body: the stop grace cuts the connection', { timeout: 120_000 }, async () => {
    let blocked = false;
    const o = await startOrigin('endless', (_req, res) => {
      res.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = (): void => {
        while (!res.destroyed) {
          if (!res.write(chunk)) {
            blocked = true;
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    const port = await freePort();
    const proc = await spawnPortico({
      shutdownGrace: '1s',
      listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'endless', address: o.address }] }],
    });
    const sock = connect(port, '127.0.0.1');
    try {
      let got = 0;
      await new Promise<void>((resolve) => {
        sock.on('data', (c: Buffer) => {
          got += c.length;
          // Some of the body read, then no more: the client stops reading.
          if (got > 1024 * 1024) {
            sock.pause();
            resolve();
          }
        });
        sock.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      // Every buffer on the way fills: the server is held back by Portico.
      await waitFor(() => blocked, 60_000, 'the origin to be held back');
      const code = await Promise.race([proc.stop('SIGTERM'), new Promise<string>((r) => setTimeout(() => r('still running'), 60_000))]);
      assert.equal(code, 0, `portico after SIGTERM: ${String(code)}; ${proc.output()}`);
    } finally {
      sock.destroy();
      if (proc.exitCode() === null) await proc.stop('SIGKILL');
      await o.close();
    }
  });

  it('SIGTERM ends a Portico within its grace while a connection has not sent its PROXY header (it is cut, not left to the header timeout)', { timeout: 120_000 }, async () => {
    const o = await startOrigin('a');
    const port = await freePort();
    const tcpPort = await freePort();
    const proc = await spawnPortico(
      {
        shutdownGrace: '1s',
        listeners: [
          { name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, acceptProxy: true, limits: { headerTimeout: '120s' }, routes: [{ pool: 'web' }] },
          { name: 'raw', protocol: 'tcp', listen: `127.0.0.1:${tcpPort}`, acceptProxy: true, inspectTimeout: '120s', pool: 'web' },
        ],
        pools: [{ name: 'web', servers: [{ name: 'a', address: o.address }] }],
      },
      2,
    );
    const silent = [connect(port, '127.0.0.1'), connect(tcpPort, '127.0.0.1')];
    try {
      for (const s of silent) {
        s.on('error', () => undefined);
        await new Promise<void>((r) => s.once('connect', () => r()));
      }
      // Accepted by Portico (the next connection on each listener is answered after them).
      assert.match(await rawRequest(port, 'PROXY TCP4 10.0.0.1 10.0.0.2 1111 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 10_000), /^HTTP\/1\.1 200/);
      // Far below the header timeouts (120 s): the grace (1 s) bounds the stop.
      const code = await Promise.race([proc.stop('SIGTERM'), new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
      assert.equal(code, 0, `portico after SIGTERM: ${String(code)}; ${proc.output()}`);
    } finally {
      for (const s of silent) s.destroy();
      if (proc.exitCode() === null) await proc.stop('SIGKILL');
      await o.close();
    }
  });

  it('tunnels a WebSocket after a real 101', async () => {
    const http = createServer();
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m}`)));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    const wsPort = (http.address() as { port: number }).port;
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'ws', address: `127.0.0.1:${wsPort}` }] }]);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
      await new Promise<void>((resolve, reject) => {
        ws.on('open', () => resolve());
        ws.on('error', reject);
      });
      const replies: string[] = [];
      ws.on('message', (m) => replies.push(String(m)));
      for (let i = 0; i < 5; i++) ws.send(`m${i}`);
      await waitFor(() => replies.length === 5, 15_000, 'echoes');
      assert.deepEqual(replies, ['echo:m0', 'echo:m1', 'echo:m2', 'echo:m3', 'echo:m4']);
      ws.close();
    } finally {
      await p.stop(100);
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    }
  });

  it('a client that leaves (its connection reset) cancels the server request', async () => {
    let closedAtOrigin = false;
    const o = await startOrigin('hang', (req, res) => {
      res.on('close', () => (closedAtOrigin = !res.writableFinished));
      // never answers
      void req;
    });
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'hang', address: o.address }] }]);
    try {
      const sock = connect(port, '127.0.0.1');
      await new Promise<void>((r) => sock.on('connect', () => r()));
      sock.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => o.seen.length === 1, 15_000, 'request at origin');
      // A reset: a FIN alone after a complete request is a half-close, which is answered (below).
      sock.resetAndDestroy();
      await waitFor(() => closedAtOrigin, 15_000, 'origin to see the cancel');
    } finally {
      await p.stop(100);
      await o.close();
    }
  });

  it('a client that half-closes after a complete request (nc -N) is answered, then the connection closes', async () => {
    let release: (() => void) | undefined;
    let cancelled = false;
    const o = await startOrigin('late', (req, res) => {
      res.on('close', () => (cancelled = !res.writableFinished));
      if (req.url === '/now') return void res.end('now');
      // Held until the test knows Portico has read the client's FIN.
      release = () => res.end('answered after the FIN');
    });
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'late', address: o.address }] }]);
    try {
      // The request and the FIN at once, as `printf 'GET / ...' | nc -N` sends them.
      assert.match(await halfClosed(port, 'GET /now HTTP/1.1\r\nHost: x\r\n\r\n').done, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n(?:[^]*\r\n)?\r\nnow$/i);
      // The FIN while the server has not answered yet.
      const c = halfClosed(port, 'GET /late HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => release !== undefined, 15_000, 'the request at the origin');
      await c.ended;
      // A request on another connection answered after the FIN was sent: Portico has read the FIN by then.
      assert.equal((await get(port, '/now')).status, 200);
      assert.equal(cancelled, false, 'the server request is not cancelled');
      release!();
      const out = await c.done;
      assert.match(out, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n(?:[^]*\r\n)?\r\nanswered after the FIN$/i);
    } finally {
      await p.stop(100);
      await o.close();
    }
  });

  it('a client that half-closes before its request body is complete has abandoned it: the server request is cancelled', async () => {
    let cancelled = false;
    const o = await startOrigin('body', (req, res) => {
      res.on('close', () => (cancelled = !res.writableFinished));
      req.resume();
    });
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'body', address: o.address }] }]);
    try {
      const c = halfClosed(port, 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345', () => o.seen.length === 1);
      assert.equal(await c.done, '');
      await waitFor(() => cancelled, 15_000, 'the origin to see the cancel');
    } finally {
      await p.stop(100);
      await o.close();
    }
  });

  it('an upstream that dies mid-body truncates the client response visibly', async () => {
    const o = await startOrigin('die', (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(100));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const { p, port } = await startProxy([{ name: 'web', servers: [{ name: 'die', address: o.address }] }]);
    try {
      const out = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 2000);
      assert.match(out, /^HTTP\/1\.1 200/);
      const body = out.slice(out.indexOf('\r\n\r\n') + 4);
      assert.equal(body.length, 100);
    } finally {
      await p.stop(100);
      await o.close();
    }
  });
});
