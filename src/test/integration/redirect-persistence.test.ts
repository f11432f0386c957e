import { strict as assert } from 'node:assert';
import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { ConfigError } from '../../config/errors.js';
import { serverId } from '../../core/server.js';
import { MemoryStore } from '../../store/memory-store.js';
import { connect } from 'node:net';

interface Reply {
  status: number;
  location: string;
  setCookie: string | undefined;
}

function get(port: number, headers: Record<string, string> = {}, localAddress = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/f.iso', headers, localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: String(res.headers['location'] ?? ''), setCookie: res.headers['set-cookie']?.[0] }));
    });
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const SERVERS = [
  { name: 'm1', address: '127.0.0.1:9', url: 'http://m1.example.com' },
  { name: 'm2', address: '127.0.0.1:9', url: 'http://m2.example.com' },
  { name: 'm3', address: '127.0.0.1:9', url: 'http://m3.example.com' },
];

function config(persistence: unknown): Record<string, unknown> {
  return {
    admin: { enabled: false },
    log: { level: 'error' },
    stateDir: mkdtempSync(join(tmpdir(), 'portico-state-')),
    listeners: [{ name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web' }],
    pools: [{ name: 'web', balance: 'roundrobin', health: { type: 'none' }, persistence, servers: SERVERS }],
  };
}

async function started(persistence: unknown, store?: MemoryStore): Promise<{ p: Portico; port: number }> {
  const p = createPortico(config(persistence), store === undefined ? {} : { store });
  await p.start();
  return { p, port: p.address('mirror')!.port };
}

const hostOf = (r: Reply): string => new URL(r.location).host;

/** A MemoryStore that counts its reads. */
class CountingStore extends MemoryStore {
  reads = 0;
  override get(key: string): Promise<string | undefined> {
    this.reads++;
    return super.get(key);
  }
}

/** Send `data` from `localAddress`; what came back once the server closed (at most 2 s). */
function raw(port: number, localAddress: string, data: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host: '127.0.0.1', port, localAddress }, () => sock.write(data));
    const timer = setTimeout(() => sock.destroy(), 2000);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

describe('persistence through a redirect listener', () => {
  it('cookie (insert): the first redirect sets a cookie, which keeps the client on its mirror; a down mirror re-pins it', async () => {
    const { p, port } = await started({ type: 'cookie', name: 'MIRROR', secret: 'redirect-test' });
    try {
      const first = await get(port);
      assert.equal(first.status, 302);
      assert.match(first.setCookie ?? '', /^MIRROR=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
      const cookie = first.setCookie!.split(';')[0]!;
      const pinned = hostOf(first);
      for (let i = 0; i < 6; i++) {
        const r = await get(port, { cookie });
        assert.equal(hostOf(r), pinned);
        assert.equal(r.setCookie, undefined); // already pinned there: nothing to set
      }
      // Without the cookie, round robin goes on to the other mirrors.
      const others = new Set<string>();
      for (let i = 0; i < 3; i++) others.add(hostOf(await get(port)));
      assert.equal(others.size, 3);
      // The pinned mirror goes down: the client is sent elsewhere and pinned there.
      p.pools.get('web')!.setOp(serverId('web', pinned.split('.')[0]!), 'down', 'probe');
      const moved = await get(port, { cookie });
      assert.notEqual(hostOf(moved), pinned);
      assert.match(moved.setCookie ?? '', /^MIRROR=/);
      const again = await get(port, { cookie: moved.setCookie!.split(';')[0]! });
      assert.equal(hostOf(again), hostOf(moved));
    } finally {
      await p.stop(100);
    }
  });

  it('source-ip: each client address stays on its mirror', async () => {
    const { p, port } = await started({ type: 'source-ip', ttl: '1m' });
    try {
      const a = hostOf(await get(port, {}, '127.0.0.1'));
      const b = hostOf(await get(port, {}, '127.0.0.2'));
      assert.notEqual(a, b);
      for (let i = 0; i < 4; i++) {
        assert.equal(hostOf(await get(port, {}, '127.0.0.1')), a);
        assert.equal(hostOf(await get(port, {}, '127.0.0.2')), b);
      }
    } finally {
      await p.stop(100);
    }
  });

  it('source-ip through a shared store: a client pinned by one node is sent to the same mirror by another; pipelined requests keep their order', async () => {
    const store = new CountingStore();
    const a = await started({ type: 'source-ip', ttl: '1m' }, store);
    const b = await started({ type: 'source-ip', ttl: '1m' }, store);
    try {
      // Move b's round robin on, so that without the store it would answer differently.
      const bFirst = hostOf(await get(b.port, {}, '127.0.0.3'));
      const pinned = hostOf(await get(a.port, {}, '127.0.0.1'));
      assert.equal(bFirst, pinned); // both round robins started at m1
      for (let i = 0; i < 3; i++) assert.equal(hostOf(await get(b.port, {}, '127.0.0.1')), pinned);
      // Pipelined requests from an address b has not seen: b asks the store before the first
      // answer, and the four are answered in order.
      const reads = store.reads;
      const head = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
      const out = await raw(b.port, '127.0.0.4', head('/1') + head('/2') + head('/3') + 'GET /4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.ok(store.reads > reads);
      const locations = [...out.matchAll(/Location: (\S+)/g)].map((m) => m[1]!);
      assert.equal(locations.length, 4);
      assert.deepEqual(locations.map((l) => new URL(l).pathname), ['/1', '/2', '/3', '/4']);
      assert.equal(new Set(locations.map((l) => new URL(l).host)).size, 1);
    } finally {
      await a.p.stop(100);
      await b.p.stop(100);
    }
  });

  it('cookie persistence in prefix mode behind a redirect listener is refused (the server never answers through it)', () => {
    assert.throws(
      () => createPortico(config({ type: 'cookie', name: 'JSESSIONID', mode: 'prefix', secret: 's' })),
      (err: unknown) => err instanceof ConfigError && err.lines().some((l) => l.includes('listeners.0.pool') && l.includes('prefix')),
    );
  });
});
