import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { constants } from 'node:crypto';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { selfSigned } from '../test-helpers/certs.js';
import { SessionResumption, sessionVersion } from './session-resumption.js';

/** One handshake with a tls.Server whose session events go to `r`; the sessions it reported. */
async function handshake(r: SessionResumption, version: 'TLSv1.2' | 'TLSv1.3', clientOptions: { secureOptions?: number } = {}): Promise<Buffer[]> {
  const c = selfSigned(['resume.test']);
  const sessions: Buffer[] = [];
  const srv = createServer({ cert: c.cert, key: c.key });
  srv.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
    sessions.push(data);
    r.onNewSession(id, data, done);
  });
  srv.on('resumeSession', r.onResumeSession);
  srv.on('secureConnection', (s: TLSSocket) => s.end('x'));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const port = (srv.address() as { port: number }).port;
    const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false, minVersion: version, maxVersion: version, ...clientOptions });
    s.on('error', () => {});
    s.resume();
    await once(s, 'close');
  } finally {
    srv.close();
  }
  return sessions;
}

describe('TLS session resumption: the session cache', () => {
  it('keeps a TLS 1.2 session (resumed by id) and not the TLS 1.3 ones (resumed only from their tickets)', async () => {
    const r = new SessionResumption({ listener: 't', sessionTimeoutMs: 60_000, cacheSize: 100, rotationMs: 3_600_000, clock: new ManualClock(0) });
    const s13 = await handshake(r, 'TLSv1.3');
    assert.ok(s13.length > 0, 'OpenSSL reports TLS 1.3 sessions, one per ticket');
    for (const d of s13) assert.equal(sessionVersion(d), 0x0304);
    assert.equal(r.size, 0);
    // A client without tickets: the server gives the session an id and keeps it.
    const s12 = await handshake(r, 'TLSv1.2', { secureOptions: constants.SSL_OP_NO_TICKET });
    assert.equal(s12.length, 1);
    assert.equal(sessionVersion(s12[0]!), 0x0303);
    assert.equal(r.size, 1);
  });

  it('sessionVersion: 0 for bytes that are not a session', () => {
    assert.equal(sessionVersion(Buffer.alloc(0)), 0);
    assert.equal(sessionVersion(Buffer.from('3003020101', 'hex')), 0);
    assert.equal(sessionVersion(Buffer.from('300902010202020304040200', 'hex')), 0, 'not version 1 of the layout');
    assert.equal(sessionVersion(Buffer.from('300902010102020304040200', 'hex')), 0x0304);
    assert.equal(sessionVersion(Buffer.from('30810902010102020303040200', 'hex')), 0x0303, 'a long-form length');
  });
});
