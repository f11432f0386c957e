import { strict as assert } from 'node:assert';
import { constants } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect as netConnect, createServer as createNetServer } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions, type Server as TlsServer } from 'node:tls';
import { missingBinary, selfSigned } from '../test-helpers/certs.js';
import { parseClientHello, parseServerHello } from './hello.js';

/** The bytes a real node:tls client sends first. */
async function captureClientHello(opts: ConnectionOptions): Promise<Buffer> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  const got = new Promise<Buffer>((resolve) => {
    srv.once('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (parseClientHello(buf).kind !== 'more') {
          s.destroy();
          resolve(buf);
        }
      });
    });
  });
  const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
  c.on('error', () => {});
  const buf = await got;
  c.destroy();
  await new Promise<void>((r) => srv.close(() => r()));
  return buf;
}

/** Re-frame one handshake message into records of at most `size` bytes each. */
function reframe(stream: Buffer, size: number): Buffer {
  const len = stream.readUInt16BE(3);
  const body = stream.subarray(5, 5 + len);
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) {
    const part = body.subarray(at, Math.min(at + size, body.length));
    const h = Buffer.from([22, 3, 1, 0, 0]);
    h.writeUInt16BE(part.length, 3);
    out.push(h, part);
  }
  return Buffer.concat(out);
}

describe('ClientHello from node:tls clients', () => {
  it('finds SNI, ALPN, TLS 1.3 and the session id field', async () => {
    const raw = await captureClientHello({ servername: 'API.Example.com', ALPNProtocols: ['h2', 'http/1.1'] });
    const r = parseClientHello(raw);
    assert.equal(r.kind, 'done');
    if (r.kind !== 'done') return;
    assert.equal(r.length, raw.length);
    assert.equal(r.hello.serverName, 'api.example.com');
    assert.deepEqual(r.hello.alpn, ['h2', 'http/1.1']);
    assert.equal(r.hello.offersTls13, true);
    assert.equal(r.hello.hasPsk, false);
  });

  it('no SNI when the client sends none, and TLS 1.2 only without supported_versions 1.3', async () => {
    const raw = await captureClientHello({ maxVersion: 'TLSv1.2' });
    const r = parseClientHello(raw);
    assert.equal(r.kind, 'done');
    if (r.kind !== 'done') return;
    assert.equal(r.hello.serverName, undefined);
    assert.equal(r.hello.offersTls13, false);
  });

  it('is "more" for every strict prefix (split at any byte), then done', async () => {
    const raw = await captureClientHello({ servername: 'a.example.com' });
    for (let i = 0; i < raw.length; i++) assert.equal(parseClientHello(raw.subarray(0, i)).kind, 'more', `prefix ${i}`);
    assert.equal(parseClientHello(raw).kind, 'done');
  });

  it('reads a hello spread over many TLS records', async () => {
    const raw = await captureClientHello({ servername: 'split.example.com' });
    for (const size of [1, 7, 100]) {
      const framed = reframe(raw, size);
      const r = parseClientHello(framed, 65536);
      assert.equal(r.kind, 'done', `records of ${size}`);
      if (r.kind === 'done') {
        assert.equal(r.hello.serverName, 'split.example.com');
        assert.equal(r.length, framed.length);
      }
    }
  });

  it('keeps bytes after the hello out of its length', async () => {
    const raw = await captureClientHello({ servername: 'x.example.com' });
    const r = parseClientHello(Buffer.concat([raw, Buffer.from([23, 3, 3, 0, 1, 0])]));
    assert.equal(r.kind === 'done' && r.length, raw.length);
  });

  it('refuses garbage, plaintext HTTP, SSLv2 hellos and oversized hellos', async () => {
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')).kind, 'error');
    assert.equal(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02])).kind, 'error');
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0, 0])).kind, 'error'); // empty record
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0x48, 0x01])).kind, 'error'); // record > 2^14
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])).kind, 'error'); // a ServerHello
    const raw = await captureClientHello({ servername: 'big.example.com' });
    assert.equal(parseClientHello(raw, 64).kind, 'error');
    // A declared handshake length beyond the cap fails at once, without waiting for the bytes.
    const huge = Buffer.from([22, 3, 1, 0, 4, 1, 0x10, 0, 0]);
    assert.equal(parseClientHello(huge, 16384).kind, 'error');
  });

  it('refuses hellos whose inner lengths do not add up', async () => {
    const raw = await captureClientHello({ servername: 'len.example.com' });
    // Corrupt the session id length (offset: 5 record + 4 handshake + 2 version + 32 random).
    const bad = Buffer.from(raw);
    bad[43] = 33;
    assert.equal(parseClientHello(bad).kind, 'error');
    // Truncate the handshake message but keep the record consistent.
    const cut = Buffer.from(raw.subarray(0, raw.length - 10));
    cut.writeUInt16BE(cut.length - 5, 3);
    const r = parseClientHello(cut);
    assert.notEqual(r.kind, 'done');
  });
});

describe('ServerHello from a node:tls server', () => {
  let server: TlsServer | undefined;
  let port = 0;
  const skip = missingBinary('openssl');
  before(async () => {
    if (skip !== undefined) return;
    const c = selfSigned(['localhost']);
    // Without tickets, so that a TLS 1.2 server assigns session ids (OpenSSL sends none when it issues a ticket).
    server = createTlsServer({ cert: c.cert, key: c.key, secureOptions: constants.SSL_OP_NO_TICKET });
    server.on('newSession', (_id: Buffer, _data: Buffer, cb: () => void) => cb());
    server.on('tlsClientError', () => {});
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  after(() => server?.close());

  async function serverHelloFor(clientOpts: ConnectionOptions): Promise<Buffer> {
    const hello = await captureClientHello(clientOpts);
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => s.write(hello));
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (parseServerHello(buf, 65536).kind !== 'more') {
          s.destroy();
          resolve(buf);
        }
      });
      s.on('error', reject);
    });
  }

  it('TLS 1.2: a fresh 32-byte session id assigned by the server', { skip }, async () => {
    const raw = await serverHelloFor({ maxVersion: 'TLSv1.2' });
    const r = parseServerHello(raw, 65536);
    assert.equal(r.kind, 'done');
    if (r.kind !== 'done') return;
    assert.equal(r.hello.version, 0x0303);
    assert.equal(r.hello.sessionId.length, 64);
    assert.equal(r.hello.isRetry, false);
    for (let i = 0; i < r.length; i++) assert.equal(parseServerHello(raw.subarray(0, i), 65536).kind, 'more');
  });

  it('TLS 1.3: the version from supported_versions', { skip }, async () => {
    const raw = await serverHelloFor({});
    const r = parseServerHello(raw, 65536);
    assert.equal(r.kind === 'done' && r.hello.version, 0x0304);
  });
});
