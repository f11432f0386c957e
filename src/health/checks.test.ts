import { strict as assert } from 'node:assert';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { serverId, type Server } from '../core/server.js';
import { freePort, startOrigin, type Origin } from '../test-helpers/origins.js';
import type { CheckResult } from './health-check.js';
import { HttpHealthCheck } from './http-check.js';
import { TcpHealthCheck } from './tcp-check.js';

const at = (port: number): Server => ({ id: serverId('p', 's'), name: 's', host: '127.0.0.1', port, weight: 1, backup: false, maxConnections: 0, meta: {} });
const within = (ms: number): AbortSignal => AbortSignal.timeout(ms);

/** A TCP server that accepts and never answers (a hung process). */
async function hungServer(): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<Socket>();
  const srv: NetServer = createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return { port, close: () => new Promise((r) => { for (const s of socks) s.destroy(); srv.close(() => r()); }) };
}

function fails(r: CheckResult, reason: string): void {
  assert.equal(r.ok, false, JSON.stringify(r));
  if (!r.ok) assert.equal(r.reason, reason, JSON.stringify(r));
}

describe('http check', () => {
  let origin: Origin;
  let hung: Awaited<ReturnType<typeof hungServer>>;
  before(async () => {
    origin = await startOrigin('o', (req, res) => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.method === 'HEAD' ? undefined : `status: ready host=${req.headers.host}`);
      } else if (req.url === '/nocontent') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(503);
        res.end('down');
      }
    });
    hung = await hungServer();
  });
  after(async () => {
    await origin.close();
    await hung.close();
  });

  const http = (o: Partial<ConstructorParameters<typeof HttpHealthCheck>[0]>): HttpHealthCheck =>
    new HttpHealthCheck({ method: 'GET', path: '/health', status: [[200, 399]], ...o });

  it('passes on an expected status, with body text and regex', async () => {
    assert.ok((await http({}).check(at(origin.port), within(1000))).ok);
    assert.ok((await http({ body: 'ready' }).check(at(origin.port), within(1000))).ok);
    assert.ok((await http({ bodyRegex: '^status: (ready|warming)' }).check(at(origin.port), within(1000))).ok);
    assert.ok((await http({ method: 'HEAD' }).check(at(origin.port), within(1000))).ok);
    assert.ok((await http({ path: '/nocontent', status: [[200, 200], [204, 204]] }).check(at(origin.port), within(1000))).ok);
  });

  it('sends the configured Host header on a fresh connection each time', async () => {
    const before = origin.heads.length;
    assert.ok((await http({ host: 'health.example', body: 'host=health.example' }).check(at(origin.port), within(1000))).ok);
    assert.ok((await http({ host: 'health.example', body: 'host=health.example' }).check(at(origin.port), within(1000))).ok);
    const heads = origin.heads.slice(before);
    assert.equal(heads.length, 2);
    assert.notEqual(heads[0]!.socket, heads[1]!.socket);
  });

  it('fails on a status out of range, a missing body text, a regex that does not match', async () => {
    fails(await http({ path: '/other' }).check(at(origin.port), within(1000)), 'status');
    fails(await http({ path: '/nocontent', status: [[200, 200]] }).check(at(origin.port), within(1000)), 'status');
    fails(await http({ body: 'sick' }).check(at(origin.port), within(1000)), 'body');
    fails(await http({ bodyRegex: '^down$' }).check(at(origin.port), within(1000)), 'body');
  });

  it('fails with refused on a closed port and timeout on a server that never answers', async () => {
    fails(await http({}).check(at(await freePort()), within(1000)), 'refused');
    const t0 = performance.now();
    fails(await http({}).check(at(hung.port), within(200)), 'timeout');
    const took = performance.now() - t0;
    assert.ok(took >= 190 && took < 1500, `cut at the timeout: ${took}ms`);
  });
});

describe('tcp check', () => {
  let echo: NetServer;
  let echoPort = 0;
  let hung: Awaited<ReturnType<typeof hungServer>>;
  before(async () => {
    echo = createServer((s) => {
      s.on('error', () => {});
      s.on('data', (d) => s.write(`+PONG ${d.toString().trim()}\r\n`));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as { port: number }).port;
    hung = await hungServer();
  });
  after(async () => {
    echo.close();
    await hung.close();
  });

  it('passes when a connection opens, fails with refused when nothing listens', async () => {
    assert.ok((await new TcpHealthCheck().check(at(echoPort), within(1000))).ok);
    assert.ok((await new TcpHealthCheck().check(at(hung.port), within(1000))).ok, 'connect only: a hung process still accepts');
    fails(await new TcpHealthCheck().check(at(await freePort()), within(1000)), 'refused');
  });

  it('with send/expect, the reply must contain the text', async () => {
    assert.ok((await new TcpHealthCheck({ send: 'PING\r\n', expect: '+PONG' }).check(at(echoPort), within(1000))).ok);
    fails(await new TcpHealthCheck({ send: 'PING\r\n', expect: '+OK' }).check(at(echoPort), within(300)), 'timeout');
    fails(await new TcpHealthCheck({ send: 'PING\r\n', expect: '+PONG' }).check(at(hung.port), within(200)), 'timeout');
  });
});
