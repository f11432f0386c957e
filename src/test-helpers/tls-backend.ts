/**
 * TLS servers that resume sessions by id (TLS 1.2, no tickets), each with its own session
 * cache, for the tests of TLS session-id persistence; and a client that reads their first line.
 */
import { constants } from 'node:crypto';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { TestCert } from './certs.js';

export interface TlsBackend {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** TLS connections accepted, and how many of them resumed a session. */
  handshakes: number;
  resumed: number;
  close(): Promise<void>;
}

/**
 * A TLS server that answers "NAME reused|new\n" and then echoes. Session ids only (no tickets),
 * with its own session cache, as a TLS 1.2 server that resumes by id.
 */
export async function startTlsBackend(name: string, cert: TestCert): Promise<TlsBackend> {
  const cache = new Map<string, Buffer>();
  const server: TlsServer = createTlsServer({ cert: cert.cert, key: cert.key, secureOptions: constants.SSL_OP_NO_TICKET });
  server.on('newSession', (id: Buffer, data: Buffer, cb: () => void) => {
    cache.set(id.toString('hex'), data);
    cb();
  });
  server.on('resumeSession', (id: Buffer, cb: (err: Error | null, data?: Buffer | null) => void) => cb(null, cache.get(id.toString('hex')) ?? null));
  server.on('tlsClientError', () => {});
  const sockets = new Set<TLSSocket>();
  const b = {
    name,
    address: '',
    port: 0,
    handshakes: 0,
    resumed: 0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  server.on('secureConnection', (s: TLSSocket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    b.handshakes++;
    if (s.isSessionReused()) b.resumed++;
    s.write(`${name} ${s.isSessionReused() ? 'reused' : 'new'}\n`);
    s.on('data', (c: Buffer) => s.write(c));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.port = (server.address() as { port: number }).port;
  (b as { address: string }).address = `127.0.0.1:${b.port}`;
  return b;
}

export /** Connect through TLS and read the backend's first line; returns it with the session to resume. */
function hello(opts: ConnectionOptions): Promise<{ line: string; reused: boolean; session: Buffer | undefined; sock: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', rejectUnauthorized: false, ...opts });
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ line: buf.slice(0, nl), reused: s.isSessionReused(), session: s.getSession(), sock: s });
    });
    s.on('error', reject);
    s.setTimeout(5000, () => reject(new Error('no answer')));
  });
}

