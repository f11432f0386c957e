import { strict as assert } from 'node:assert';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { ServerResponse } from 'node:http';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import { send } from '../../test-helpers/http.js';
import { startOrigin } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';

/**
 * Capacity behaviours (issue 16): a slowloris, a slow reader and many concurrent h2 streams do not
 * disturb other clients. The figures (memory per connection, 10,000 connections, 1,000 streams)
 * are measured by hand with bench/capacity.mjs and written in docs/limits.md; these tests check
 * the behaviours with bounded counts, driven by events.
 */

const SLOW = 200;
const OTHERS = 50;

/** Open a connection to 127.0.0.1:port; resolves once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.on('error', reject);
  });
}

/** Resolves once `s` has closed (at once if it already has). */
function closed(s: Socket): Promise<void> {
  return s.closed || s.destroyed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

/** Write `data` and resolve once it has been handed to the kernel. */
function write(s: Socket, data: string): Promise<void> {
  return new Promise((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
}

describe('capacity', () => {
  test(`a slowloris of ${SLOW} connections: ${OTHERS} other clients are served, and headerTimeout ends the slow ones`, async () => {
    const origin = await startOrigin('o1');
    const { p, port } = await startPortico(
      webConfig([{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }], { limits: { headerTimeout: '3s', maxConnections: SLOW + OTHERS + 10 } }),
    );
    const slow: Socket[] = [];
    try {
      // Each slow client sends part of a head, then one more header byte after all are open.
      for (let i = 0; i < SLOW; i++) {
        const s = await open(port);
        s.on('error', () => {});
        s.resume();
        slow.push(s);
        await write(s, 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ');
      }
      // On a slow machine headerTimeout may already have cut the first ones: that is the limit working.
      await Promise.all(slow.map((s) => write(s, 'x').catch(() => {})));
      const others = await Promise.all(Array.from({ length: OTHERS }, () => send(port, '/other')));
      assert.deepEqual(
        others.map((r) => r.status),
        Array(OTHERS).fill(200),
      );
      assert.equal(origin.seen.filter((s) => s === 'GET /other').length, OTHERS);
      // No slow client's request reached the server; each is cut by headerTimeout, not left open.
      assert.equal(origin.seen.length, OTHERS);
      await Promise.all(slow.map(closed));
    } finally {
      for (const s of slow) s.destroy();
      await p.stop();
      await origin.close();
    }
  });

  test('slow readers of a large response: back-pressure reaches the server, other clients are served', async () => {
    const READERS = 20;
    const BIG = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    /** Bytes the server has written, per slow response. */
    const written: number[] = [];
    const stalled = new Set<number>();
    let onStall: () => void = () => {};
    const stream = (res: ServerResponse, id: number): void => {
      written[id] = 0;
      const more = (): void => {
        while (written[id]! < BIG) {
          written[id]! += chunk.length;
          const last = written[id]! >= BIG;
          const ok = last ? (res.end(chunk), true) : res.write(chunk);
          if (!ok) {
            stalled.add(id);
            onStall();
            res.once('drain', more);
            return;
          }
        }
      };
      more();
    };
    let next = 0;
    const origin = await startOrigin('o1', (req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
        stream(res, next++);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('small');
    });
    const { p, port } = await startPortico(webConfig([{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }]));
    const readers: Socket[] = [];
    try {
      const allStalled = new Promise<void>((resolve) => {
        onStall = () => {
          if (stalled.size === READERS) resolve();
        };
      });
      for (let i = 0; i < READERS; i++) {
        const s = await open(port);
        s.on('error', () => {});
        s.pause(); // never reads
        readers.push(s);
        await write(s, 'GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
      }
      // Every slow response fills the buffers up to the server, which then waits for drain.
      await allStalled;
      const others = await Promise.all(Array.from({ length: OTHERS }, () => send(port, '/small')));
      assert.deepEqual(
        others.map((r) => [r.status, r.body]),
        Array.from({ length: OTHERS }, () => [200, 'small']),
      );
      // Portico did not read the whole responses into memory: each server is still held back.
      for (let i = 0; i < READERS; i++) assert.ok(written[i]! < BIG, `response ${i} was read to its end by Portico (${written[i]} bytes)`);
    } finally {
      for (const s of readers) s.destroy();
      await p.stop();
      await origin.close();
    }
  });

  test('200 concurrent h2 streams over two connections: every one answered, no error', { skip: missingBinary('openssl') }, async () => {
    const STREAMS = 200;
    const cert = selfSigned(['www.example.com']);
    // The server holds every answer until all the requests are in flight at once.
    const waiting: ServerResponse[] = [];
    const origin = await startOrigin('o1', (_req, res) => {
      waiting.push(res);
      if (waiting.length === STREAMS) {
        for (const r of waiting) {
          r.writeHead(200, { 'content-type': 'text/plain' });
          r.end('ok');
        }
      }
    });
    const { p, port } = await startPortico(
      webConfig([{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }], {
        protocol: 'https',
        tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] },
      }),
    );
    const sessions: ClientHttp2Session[] = [];
    try {
      const errors: string[] = [];
      for (let i = 0; i < 2; i++) {
        const s = h2connect(`https://127.0.0.1:${port}`, { ca: cert.cert, servername: 'www.example.com' });
        s.on('error', (e) => errors.push(`session: ${e.message}`));
        s.on('goaway', (code) => errors.push(`goaway ${code}`));
        sessions.push(s);
      }
      const one = (i: number): Promise<[number, string]> =>
        new Promise((resolve, reject) => {
          const st = sessions[i % 2]!.request({ ':path': `/s${i}`, ':authority': 'www.example.com' });
          let status = 0;
          let body = '';
          st.setEncoding('utf8');
          st.on('response', (h) => (status = Number(h[':status'])));
          st.on('data', (c: string) => (body += c));
          st.on('end', () => resolve([status, body]));
          st.on('error', reject);
          st.end();
        });
      const replies = await Promise.all(Array.from({ length: STREAMS }, (_, i) => one(i)));
      assert.deepEqual(
        replies,
        Array.from({ length: STREAMS }, () => [200, 'ok']),
      );
      assert.deepEqual(errors, []);
      assert.equal(origin.seen.length, STREAMS);
    } finally {
      for (const s of sessions) s.destroy();
      await p.stop();
      await origin.close();
    }
  });
});
