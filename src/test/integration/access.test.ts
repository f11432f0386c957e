import { strict as assert } from 'node:assert';
import { connect, createServer, type Server as NetServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import { startOrigin, type Origin } from '../../test-helpers/origins.js';

/**
 * Send `data` from `localAddress` and read until the server closes (at most 2 s): what came back,
 * '' when the connection was closed without an answer.
 */
function exchange(port: number, localAddress: string, data: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host: '127.0.0.1', port, localAddress });
    const timer = setTimeout(() => sock.destroy(), 2000);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      if (Buffer.concat(chunks).includes('\r\n\r\n') || data === 'ping') sock.end();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

const GET = 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';

describe('access lists at accept (http, https, tcp, redirect)', () => {
  let origin: Origin;
  let echo: NetServer;
  let echoPort = 0;
  before(async () => {
    origin = await startOrigin('o1');
    echo = createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as { port: number }).port;
  });
  after(async () => {
    await origin.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  it('http: an allowed address is served, one outside allow or inside deny is closed and counted as rejected "access"', async () => {
    const p = createPortico({
      admin: { enabled: false },
      log: { level: 'error' },
      listeners: [
        { name: 'only1', protocol: 'http', listen: '127.0.0.1:0', access: { allow: ['127.0.0.1/32'] }, routes: [{ pool: 'web' }] },
        { name: 'deny2', protocol: 'http', listen: '127.0.0.1:0', access: { deny: ['127.0.0.2'] }, routes: [{ pool: 'web' }] },
        { name: 'open', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] },
      ],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await p.start();
    try {
      const port = (n: string): number => p.address(n)!.port;
      assert.match(await exchange(port('only1'), '127.0.0.1', GET), /^HTTP\/1\.1 200 /);
      assert.equal(await exchange(port('only1'), '127.0.0.2', GET), '');
      assert.match(await exchange(port('deny2'), '127.0.0.1', GET), /^HTTP\/1\.1 200 /);
      assert.equal(await exchange(port('deny2'), '127.0.0.2', GET), '');
      assert.match(await exchange(port('open'), '127.0.0.2', GET), /^HTTP\/1\.1 200 /);
      assert.equal(p.stats.rejectedFor('only1', 'access'), 1);
      assert.equal(p.stats.rejectedFor('deny2', 'access'), 1);
      assert.equal(p.stats.rejectedFor('open', 'access'), 0);
      assert.equal(origin.seen.length >= 3, true);
    } finally {
      await p.stop(100);
    }
  });

  it('http with acceptProxy: the client named by the PROXY header is checked, not the peer', async () => {
    const p = createPortico({
      admin: { enabled: false },
      log: { level: 'error' },
      listeners: [{ name: 'px', protocol: 'http', listen: '127.0.0.1:0', acceptProxy: true, access: { deny: ['192.0.2.0/24'] }, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await p.start();
    try {
      const port = p.address('px')!.port;
      assert.equal(await exchange(port, '127.0.0.1', 'PROXY TCP4 192.0.2.9 127.0.0.1 4000 80\r\n' + GET), '');
      assert.match(await exchange(port, '127.0.0.1', 'PROXY TCP4 198.51.100.9 127.0.0.1 4000 80\r\n' + GET), /^HTTP\/1\.1 200 /);
      assert.equal(p.stats.rejectedFor('px', 'access'), 1);
    } finally {
      await p.stop(100);
    }
  });

  it('tcp: the connection from a refused address is closed before any server is asked', async () => {
    const p = createPortico({
      admin: { enabled: false },
      log: { level: 'error' },
      listeners: [{ name: 'l4', protocol: 'tcp', listen: '127.0.0.1:0', pool: 'echo', access: { allow: ['127.0.0.0/8'], deny: ['127.0.0.2/32'] } }],
      pools: [{ name: 'echo', health: { type: 'none' }, servers: [{ name: 'e', address: `127.0.0.1:${echoPort}` }] }],
    });
    await p.start();
    try {
      const port = p.address('l4')!.port;
      assert.equal(await exchange(port, '127.0.0.1', 'ping'), 'ping');
      assert.equal(await exchange(port, '127.0.0.2', 'ping'), '');
      assert.equal(await exchange(port, '127.0.0.3', 'ping'), 'ping');
      assert.equal(p.stats.rejectedFor('l4', 'access'), 1);
    } finally {
      await p.stop(100);
    }
  });

  it('a reload changes the access list of a running listener (redirect keeps using the same module)', async () => {
    const base = {
      admin: { enabled: false },
      log: { level: 'error' },
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    };
    const listeners = (access: unknown): unknown[] => [
      { name: 'web', protocol: 'http', listen: '127.0.0.1:0', access, routes: [{ pool: 'web' }] },
      { name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web', access },
    ];
    const p: Portico = createPortico({ ...base, listeners: listeners({ allow: ['127.0.0.1'] }) });
    await p.start();
    try {
      const web = p.address('web')!.port;
      const mirror = p.address('mirror')!.port;
      assert.equal(await exchange(web, '127.0.0.2', GET), '');
      assert.equal(await exchange(mirror, '127.0.0.2', GET), '');
      assert.match(await exchange(mirror, '127.0.0.1', GET), /^HTTP\/1\.1 302 /);
      await p.reload({ ...base, listeners: listeners({ allow: ['127.0.0.2'] }).map((l) => ({ ...(l as object), listen: `127.0.0.1:${(l as { name: string }).name === 'web' ? web : mirror}` })) });
      assert.match(await exchange(web, '127.0.0.2', GET), /^HTTP\/1\.1 200 /);
      assert.equal(await exchange(web, '127.0.0.1', GET), '');
      assert.match(await exchange(mirror, '127.0.0.2', GET), /^HTTP\/1\.1 302 /);
      assert.equal(p.stats.rejectedFor('web', 'access'), 2);
      assert.equal(p.stats.rejectedFor('mirror', 'access'), 1);
    } finally {
      await p.stop(100);
    }
  });

  const noOpenssl = missingBinary('openssl');
  it('https: refused before the TLS handshake', { skip: noOpenssl }, async () => {
    const cert = selfSigned(['localhost']);
    const p = createPortico({
      admin: { enabled: false },
      log: { level: 'error' },
      listeners: [{ name: 'tls', protocol: 'https', listen: '127.0.0.1:0', access: { allow: ['127.0.0.1'] }, tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] }, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
    });
    await p.start();
    try {
      const port = p.address('tls')!.port;
      const get = (localAddress: string): Promise<string> =>
        new Promise((resolve) => {
          const chunks: Buffer[] = [];
          const s = tlsConnect({ socket: connect({ host: '127.0.0.1', port, localAddress }), servername: 'localhost', rejectUnauthorized: false });
          const timer = setTimeout(() => s.destroy(), 2000);
          s.on('secureConnect', () => s.write(GET));
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('error', () => {});
          s.on('close', () => {
            clearTimeout(timer);
            resolve(Buffer.concat(chunks).toString('latin1'));
          });
        });
      assert.match(await get('127.0.0.1'), /^HTTP\/1\.1 200 /);
      assert.equal(await get('127.0.0.2'), '');
      assert.equal(p.stats.rejectedFor('tls', 'access'), 1);
    } finally {
      await p.stop(100);
    }
  });
});
