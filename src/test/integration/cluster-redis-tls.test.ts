/**
 * TLS sessions shared through Redis (`sessionCache: shared`, `cluster.store: redis://...`):
 * two Portico nodes, each with its own connections to one redis-server started by the test;
 * a session made on one node is resumed on the other, by ticket and by session id.
 */
import { strict as assert } from 'node:assert';
import { constants } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned, type TestCert } from '../../test-helpers/certs.js';
import { startOrigin, type Origin } from '../../test-helpers/origins.js';
import { redisSkip, startRedis, type RedisServer } from '../../test-helpers/redis.js';

const skip = missingBinary('openssl') ?? redisSkip();

/** Handshake only: whether the session was resumed, and the session to offer next time. */
function handshake(port: number, opts: ConnectionOptions): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'www.example.com', ...opts }, () => {
      // A TLS 1.3 ticket arrives after the handshake: give it a moment.
      setTimeout(() => {
        resolve({ reused: s.isSessionReused(), session: s.getSession() });
        s.destroy();
      }, 30);
    });
    s.on('error', reject);
  });
}

describe('TLS sessions shared through Redis', { skip: skip ?? false }, () => {
  let redis: RedisServer;
  let origin: Origin;
  let cert: TestCert;

  before(async () => {
    redis = await startRedis();
    origin = await startOrigin('o1');
    cert = selfSigned(['www.example.com']);
  });
  after(async () => {
    await origin.close();
    await redis.stop();
  });

  function node(name: string, sessionCache: 'local' | 'shared'): Portico {
    return createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      stateDir: mkdtempSync(join(tmpdir(), 'portico-tls-')),
      cluster: { node: name, store: redis.url },
      listeners: [
        { name: 'secure', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }], sessionCache }, routes: [{ pool: 'web' }] },
      ],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
  }

  const variants: [string, ConnectionOptions][] = [
    ['TLS 1.3 ticket', {}],
    ['TLS 1.2 ticket', { maxVersion: 'TLSv1.2' }],
    ['TLS 1.2 session id', { maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET }],
  ];

  for (const sessionCache of ['shared', 'local'] as const) {
    it(`sessionCache: ${sessionCache}: a session made on one node is ${sessionCache === 'shared' ? '' : 'not '}resumed on the other`, async () => {
      const a = node('lb-a', sessionCache);
      const b = node('lb-b', sessionCache);
      await a.start();
      await b.start();
      try {
        const pa = a.address('secure')!.port;
        const pb = b.address('secure')!.port;
        for (const [what, v] of variants) {
          const first = await handshake(pa, v);
          assert.equal(first.reused, false);
          const other = await handshake(pb, { ...v, session: first.session });
          assert.equal(other.reused, sessionCache === 'shared', `${what}: resumed on the other node`);
        }
      } finally {
        await a.stop(100);
        await b.stop(100);
      }
    });
  }
});
