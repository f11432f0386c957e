import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { describe, it } from 'node:test';
import '../../balancer/index.js';
import { getBalancer } from '../../balancer/registry.js';
import { ManualClock } from '../../core/clock.js';
import { SeededRng } from '../../core/rng.js';
import { serverId, type Server } from '../../core/server.js';
import { Pool } from '../../pool/pool.js';
import type { PoolHandle } from '../http/listener-runtime.js';
import { TcpListener, type TcpListenerSettings } from './tcp-listener.js';
import type { TcpObserver } from '../../observability/records.js';
import type { TcpRoute } from './tcp-runtime.js';

function listenerOver(servers: Server[], maxConnections = 0, observer?: TcpObserver): TcpListener {
  const factory = getBalancer('roundrobin')!;
  const pool = new Pool(
    { name: 'p', factory, balancerOptions: factory.parseOptions(undefined), rng: new SeededRng(1), clock: new ManualClock(0) },
    servers.map((server) => ({ server })),
  );
  const handle: PoolHandle = {
    pool,
    retries: 1,
    connectTimeoutMs: 60_000,
    responseTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    retryAfterSec: 1,
    queueTimeoutMs: 60_000,
    connections: () => {
      throw new Error('not used at L4');
    },
  };
  const route: TcpRoute = { name: 'r', sni: undefined, pool: handle, tls: undefined, sessions: undefined, hashBySource: false };
  const settings: TcpListenerSettings = {
    name: 't',
    host: '127.0.0.1',
    port: 0,
    routes: [route],
    inspectTls: false,
    inspectTimeoutMs: 60_000,
    inspectMaxBytes: 16384,
    sendProxy: false,
    acceptProxy: false,
    maxConnections,
    relayBuffer: 32768,
  };
  return new TcpListener(settings, observer);
}

async function refusedConnection(port: number): Promise<void> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'close');
}

describe('tcp listener', () => {
  it('a connection refused as it opens (no server available) leaves no row in the binding table and frees its slot', async () => {
    const l = listenerOver([], 3);
    await l.start();
    try {
      // More refused connections than maxConnections: each is refused for want of a server, never for the limit.
      for (let i = 0; i < 5; i++) await refusedConnection(l.address.port);
      assert.equal(l.connections.size, 0);
      assert.deepEqual(l.bindings(), []);
    } finally {
      await l.stop(100);
    }
  });

  it('a connection served and closed leaves the binding table too', async () => {
    const srv = createServer((s) => s.end('hi'));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    const s1: Server = { id: serverId('p', 'a'), name: 'a', host: '127.0.0.1', port, weight: 1, backup: false, maxConnections: 0, meta: {} };
    let done!: () => void;
    const closed = new Promise<void>((r) => (done = r));
    const l = listenerOver([s1], 0, { connection: () => {}, rejected: () => {}, connectionDone: () => done() });
    await l.start();
    try {
      const c = connect(l.address.port, '127.0.0.1');
      c.on('error', () => {});
      const parts: Buffer[] = [];
      c.on('data', (b: Buffer) => parts.push(b));
      await once(c, 'end');
      c.end();
      await once(c, 'close');
      assert.equal(Buffer.concat(parts).toString(), 'hi');
      await closed;
      assert.equal(l.connections.size, 0);
      assert.deepEqual(l.bindings(), []);
    } finally {
      await l.stop(100);
      srv.close();
    }
  });
});
