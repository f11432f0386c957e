/**
 * The TLS session-id stick table of tcp listeners (`inspect: tls`, `persistence: tls-session`)
 * shared by two Portico processes through one real redis-server (cluster.store: redis://...):
 * a TLS 1.2 session made through one node is resumed through the other, on the server that
 * holds it. Each node is a process of its own with its own Redis connection.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import { spawnPortico, type PorticoProcess } from '../../test-helpers/origins.js';
import { redisSkip, startRedis, type RedisServer } from '../../test-helpers/redis.js';
import { hello, startTlsBackend, type TlsBackend } from '../../test-helpers/tls-backend.js';
import { RedisStore } from '../../store/redis-store.js';

const skip = redisSkip() ?? missingBinary('openssl');

async function startNode(name: string, store: string, backends: readonly TlsBackend[]): Promise<{ proc: PorticoProcess; port: number }> {
  const proc = await spawnPortico({
    cluster: { node: name, store },
    log: { level: 'info' },
    listeners: [{ name: 'l4', protocol: 'tcp', listen: '127.0.0.1:0', inspect: 'tls', pool: 'tls' }],
    pools: [
      {
        name: 'tls',
        balance: 'roundrobin',
        health: { type: 'none' },
        persistence: { type: 'tls-session', ttl: '10m' },
        servers: backends.map((b) => ({ name: b.name, address: b.address })),
      },
    ],
  });
  const m = /listener l4 on \S*?127\.0\.0\.1:(\d+)/.exec(proc.output());
  assert.ok(m !== null, `address not found in: ${proc.output()}`);
  return { proc, port: Number(m[1]) };
}

describe('cluster.store: redis shares the TLS session-id table of tcp listeners', { skip: skip ?? false }, () => {
  let redis: RedisServer;
  const backends: TlsBackend[] = [];
  const procs: PorticoProcess[] = [];

  before(async () => {
    redis = await startRedis();
    const cert = selfSigned(['localhost']);
    for (const n of ['x', 'y', 'z']) backends.push(await startTlsBackend(n, cert));
  });
  after(async () => {
    for (const p of procs) await p.stop();
    for (const b of backends) await b.close();
    await redis?.stop();
  });

  it('a session made through node 1 is resumed through node 2 on the server that holds it', async () => {
    const one = await startNode('n1', redis.url, backends);
    procs.push(one.proc);
    const two = await startNode('n2', redis.url, backends);
    procs.push(two.proc);
    const opts = { servername: 'localhost', maxVersion: 'TLSv1.2' } as const;
    // Several sessions, so that they are made on more than one server.
    const made: { home: string; session: Buffer }[] = [];
    for (let i = 0; i < 3; i++) {
      const first = await hello({ ...opts, port: one.port });
      first.sock.destroy();
      assert.equal(first.reused, false);
      assert.ok(first.session !== undefined);
      made.push({ home: first.line.split(' ')[0]!, session: first.session });
    }
    assert.equal(new Set(made.map((m) => m.home)).size, 3, 'round-robin put the three sessions on three servers');
    // The id is in Redis under the pool's namespace (written in the background: wait a little).
    const store = new RedisStore({ url: redis.url });
    await store.connect();
    try {
      const deadline = Date.now() + 3000;
      let keys = 0;
      while (Date.now() < deadline) {
        keys = 0;
        for (const m of made) {
          const id = sessionIdOf(m.session);
          if ((await store.get(`stick:tls:tls-session:${id}`)) !== undefined) keys++;
        }
        if (keys === made.length) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(keys, made.length, 'every session id is in the store');
    } finally {
      await store.close();
    }
    // Node 2 has never seen these ids: it finds them in Redis. Round-robin alone would spread
    // these 9 reconnects over the three servers, and 2 of 3 would not resume.
    for (let round = 0; round < 3; round++) {
      for (const m of made) {
        const r = await hello({ ...opts, port: two.port, session: m.session });
        r.sock.destroy();
        assert.equal(r.line, `${m.home} reused`, `round ${round}: resumed through node 2`);
        assert.equal(r.reused, true);
      }
    }
  });
});

/**
 * The session id inside a TLS 1.2 session as node serialises it (OpenSSL's i2d_SSL_SESSION, DER):
 * SEQUENCE { version INTEGER, sslVersion INTEGER, cipher OCTET STRING, sessionId OCTET STRING, ... }.
 */
function sessionIdOf(der: Buffer): string {
  let i = 0;
  const readLen = (): number => {
    let len = der[i++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let k = 0; k < n; k++) len = (len << 8) | der[i++]!;
    }
    return len;
  };
  assert.equal(der[i++], 0x30, 'a DER SEQUENCE');
  readLen();
  for (let field = 0; field < 4; field++) {
    const tag = der[i++]!;
    const len = readLen();
    if (field === 3) {
      assert.equal(tag, 0x04, 'the session id is an OCTET STRING');
      return der.subarray(i, i + len).toString('hex');
    }
    i += len;
  }
  throw new Error('unreachable');
}
