import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { EventHub } from '../../observability/events.js';
import { openSse } from '../../test-helpers/sse.js';
import { AdminServer } from '../admin-server.js';
import { eventsRoute } from './events-route.js';

/** Wait (bounded) until the hub has `n` subscribers. */
async function subscribers(hub: EventHub, n: number): Promise<void> {
  const until = Date.now() + 3000;
  while (hub.subscriberCount !== n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.equal(hub.subscriberCount, n);
}

describe('GET /api/v1/events (server-sent events)', () => {
  const hub = new EventHub({ keep: { stats: 3 } });
  const admin = new AdminServer({ host: '127.0.0.1', port: 0, token: 't' });
  let port = 0;
  before(async () => {
    admin.route('GET', '/api/v1/events', eventsRoute(hub, { info: () => ({ node: 'lb1' }), maxBufferedBytes: 64 * 1024, heartbeatMs: 50 }));
    await admin.start();
    port = admin.address.port;
  });
  after(() => admin.stop(0));

  it('opens with hello (node, recent stats and state changes), then streams events as they are published', async () => {
    for (let i = 1; i <= 5; i++) hub.publish('stats', { n: i, pools: [{ name: 'web', servers: [{ name: 'a', hist: [3, i] }] }] });
    hub.publish('server', { pool: 'web', server: 'a', kind: 'admin', from: 'ready', to: 'drain' });
    const s = await openSse(port, '/api/v1/events');
    try {
      assert.equal(s.status, 200);
      assert.match(String(s.headers['content-type']), /^text\/event-stream/);
      assert.equal(s.headers['cache-control'], 'no-store');
      const hello = JSON.parse((await s.next('hello')).data) as {
        node: string;
        stats: { n: number; pools: { servers: { hist?: number[] }[] }[] }[];
        events: { type: string; to: string }[];
      };
      assert.equal(hello.node, 'lb1');
      assert.deepEqual(
        hello.stats.map((x) => x.n),
        [3, 4, 5],
        'the kept stats frames',
      );
      assert.deepEqual(
        hello.stats.map((x) => x.pools[0]!.servers[0]!.hist),
        [undefined, undefined, [3, 5]],
        'histograms only in the last frame',
      );
      assert.deepEqual(
        hello.events.map((e) => [e.type, e.to]),
        [['server', 'drain']],
      );
      const ev = hub.publish('server', { pool: 'web', server: 'a', kind: 'op', from: 'up', to: 'down' });
      hub.publish('stats', { n: 6 });
      const got = await s.next('server');
      assert.equal(got.id, String(ev.id));
      assert.deepEqual(JSON.parse(got.data), { time: ev.time, pool: 'web', server: 'a', kind: 'op', from: 'up', to: 'down' });
      assert.deepEqual(JSON.parse((await s.next('stats')).data).n, 6);
    } finally {
      s.close();
    }
  });

  it('?types= keeps only those types', async () => {
    const s = await openSse(port, '/api/v1/events?types=server');
    try {
      await s.next('hello');
      hub.publish('stats', { n: 7 });
      hub.publish('server', { to: 'maint' });
      assert.equal(JSON.parse((await s.next('server')).data).to, 'maint');
      assert.equal(s.events.filter((e) => e.event === 'stats').length, 0);
    } finally {
      s.close();
    }
  });

  it('a subscriber that leaves is unsubscribed', async () => {
    await subscribers(hub, 0);
    const s = await openSse(port, '/api/v1/events');
    await s.next('hello');
    assert.equal(hub.subscriberCount, 1);
    s.close();
    await subscribers(hub, 0);
  });

  it('a subscriber that does not read is disconnected instead of buffered without bound', async () => {
    await subscribers(hub, 0);
    const { connect } = await import('node:net');
    const sock = connect(port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    sock.pause(); // never reads
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => {});
    const before = 0;
    await subscribers(hub, 1);
    const big = 'x'.repeat(16 * 1024);
    // Publish until the server gives up on this subscriber (bounded: 4000 events of 16 kB).
    for (let i = 0; i < 4000 && hub.subscriberCount > before; i++) {
      hub.publish('stats', { big });
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(hub.subscriberCount, before, 'the slow subscriber was dropped');
    sock.destroy();
    await closed;
  });

  it('the admin server stopping ends the stream', async () => {
    const s = await openSse(port, '/api/v1/events');
    await s.next('hello');
    const stopping = admin.stop(1000);
    await s.ended;
    await stopping;
    await admin.start();
    port = admin.address.port;
  });
});
