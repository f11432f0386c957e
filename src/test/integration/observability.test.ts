import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Portico } from '../../app/app.js';
import { send, type Reply } from '../../test-helpers/http.js';
import { freePort, rawRequest, startOrigin, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { startPortico } from '../../test-helpers/portico.js';
import { openSse } from '../../test-helpers/sse.js';
import type { StatsFrame } from '../../observability/live-stats.js';

function get(port: number, path = '/', agent?: Agent): Promise<Reply> {
  return send(port, path, { agent });
}

function metric(text: string, line: string): number | undefined {
  for (const l of text.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return undefined;
}

describe('observability on a running Portico', () => {
  let origins: Origin[];
  let slow: Origin;
  let p: Portico;
  let port = 0;
  let admin = 0;
  let logPath = '';

  before(async () => {
    origins = await startOrigins(2);
    slow = await startOrigin('slow', (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('slow');
      }, 40);
    });
    logPath = join(mkdtempSync(join(tmpdir(), 'portico-obs-')), 'access.log');
    ({ p, port } = await startPortico({
      log: { level: 'error', access: { path: logPath, format: 'json' } },
      admin: { listen: '127.0.0.1:0' },
      listeners: [
        {
          name: 'web',
          protocol: 'http',
          listen: '127.0.0.1:0',
          routes: [{ match: { path: '/slow' }, pool: 'slow' }, { match: { path: '/queued' }, pool: 'queued' }, { pool: 'web' }],
        },
      ],
      pools: [
        { name: 'web', servers: origins.map((o) => ({ name: o.name, address: o.address })) },
        { name: 'slow', servers: [{ name: 'slow', address: slow.address, maxConnections: 16 }] },
        { name: 'queued', queue: { max: 10, timeout: '5s' }, servers: [{ name: 'one', address: slow.address, maxConnections: 1 }] },
        {
          name: 'checked',
          health: { type: 'http', path: '/', interval: '100ms', timeout: '1s', rise: 1, fall: 1 },
          servers: [
            { name: 'alive', address: origins[0]!.address },
            { name: 'gone', address: `127.0.0.1:${await freePort()}` },
          ],
        },
      ],
    }));
    admin = p.admin!.address.port;
  });
  after(async () => {
    await p.stop(100);
    await Promise.all([...origins, slow].map((o) => o.close()));
  });

  it('GET /metrics counts requests per server and code, bytes, connections and rejections by reason', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const replies = await Promise.all(Array.from({ length: 40 }, () => get(port, '/m', agent)));
    agent.destroy();
    assert.ok(replies.every((r) => r.status === 200));
    const bad = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /);
    const big = await rawRequest(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);

    const r = await get(admin, '/metrics');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const m = r.body;
    const o1 = metric(m, 'portico_requests_total{listener="web",pool="web",server="o1",code="200"}') ?? 0;
    const o2 = metric(m, 'portico_requests_total{listener="web",pool="web",server="o2",code="200"}') ?? 0;
    assert.equal(o1 + o2, 40);
    assert.equal(o1, 20, 'round robin over two servers');
    assert.equal(metric(m, 'portico_request_duration_seconds_count{listener="web",pool="web",server="o1"}'), 20);
    // Bytes are per request (a keep-alive connection starts each request from zero): every
    // answer of o1 to GET /m has the same size, and the metric is their sum.
    await waitFor(() => readFileSync(logPath, 'utf8').split('\n').length > 40, 15_000, 'the access log');
    const lines = readFileSync(logPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { target: string; server: string; bytesIn: number; bytesOut: number })
      .filter((l) => l.target === '/m' && l.server === 'o1');
    assert.equal(lines.length, 20);
    assert.equal(new Set(lines.map((l) => l.bytesOut)).size, 1, `sizes ${lines.map((l) => l.bytesOut).join(' ')}`);
    assert.equal(new Set(lines.map((l) => l.bytesIn)).size, 1);
    assert.equal(metric(m, 'portico_bytes_total{listener="web",pool="web",server="o1",direction="out"}'), 20 * lines[0]!.bytesOut);
    assert.equal(metric(m, 'portico_bytes_total{listener="web",pool="web",server="o1",direction="in"}'), 20 * lines[0]!.bytesIn);
    assert.ok(metric(m, 'portico_connections_total{listener="web"}')! >= 3);
    assert.equal(metric(m, 'portico_rejected_total{listener="web",reason="bad-request"}'), 1);
    assert.equal(metric(m, 'portico_rejected_total{listener="web",reason="header-too-large"}'), 1);
    assert.equal(metric(m, 'portico_server_up{pool="web",server="o1"}'), 1);
    assert.equal(metric(m, 'portico_server_state{pool="web",server="o1",state="ready"}'), 1);
    assert.equal(metric(m, 'portico_server_weight{pool="web",server="o2"}'), 1);
    assert.equal(metric(m, 'portico_server_active_connections{pool="web",server="o1"}'), 0);
    assert.match(m, /^# TYPE portico_health_checks_total counter$/m);
    assert.match(m, /^process_resident_memory_bytes \d+/m);
  });

  it('the access log has one JSON line per request with the timing breakdown and the request id', async () => {
    const r = await get(port, '/logged?x=1');
    assert.equal(r.status, 200);
    let line: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        const lines = readFileSync(logPath, 'utf8').trim().split('\n');
        line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.target === '/logged?x=1');
        return line !== undefined;
      },
      15_000,
      'the access-log line',
    );
    assert.equal(line!.listener, 'web');
    assert.equal(line!.pool, 'web');
    assert.match(String(line!.server), /^o[12]$/);
    assert.equal(line!.status, 200);
    assert.equal(line!.client, '127.0.0.1');
    assert.equal(line!.method, 'GET');
    assert.equal(line!.route, 'web#2');
    assert.ok((line!.bytesIn as number) > 0 && (line!.bytesOut as number) > 0);
    const c = line!.connectMs as number;
    const fb = line!.firstByteMs as number;
    const t = line!.totalMs as number;
    assert.ok(c >= 0 && c <= fb && fb <= t, `connect ${c} <= first byte ${fb} <= total ${t}`);
    assert.match(String(line!.requestId), /^[0-9a-z]+-[0-9a-z]+-[0-9a-z]+$/);
    assert.ok(Math.abs(Date.parse(String(line!.time)) - Date.now()) < 60_000);
  });

  it("the event stream carries per-second stats whose Little's law holds under load, and state changes", async () => {
    const s = await openSse(admin, '/api/v1/events');
    try {
      await s.next('hello');
      // 8 clients in closed loop on a 40 ms server for ~2.5 s: N is about 8.
      const until = Date.now() + 2500;
      const clients = Array.from({ length: 8 }, async () => {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        let n = 0;
        while (Date.now() < until && n < 500) {
          const r = await get(port, '/slow', agent);
          assert.equal(r.status, 200);
          n++;
        }
        agent.destroy();
        return n;
      });
      const done = (await Promise.all(clients)).reduce((a, b) => a + b, 0);
      assert.ok(done > 100, `${done} requests`);
      // The frame that closes right after the load: every request of the window has finished.
      let frame: StatsFrame | undefined;
      for (let i = 0; i < 3; i++) {
        frame = JSON.parse((await s.next('stats', 3000)).data) as StatsFrame;
      }
      const pool = frame!.pools.find((x) => x.name === 'slow')!;
      const srv = pool.servers[0]!;
      const L = srv.laws;
      assert.ok(L.N > 1, `N ${L.N}`);
      assert.ok(L.XR !== null && Math.abs(L.N - L.XR) / L.XR < 0.1, `N ${L.N} vs X*R ${L.XR}`);
      assert.ok(L.R !== null && L.R >= 40 && L.R < 200, `R ${L.R}`);
      assert.ok(L.U !== null && Math.abs(L.U - L.N / 16) < 1e-3, `U ${L.U}`);
      assert.ok(srv.hist.length > 0);

      p.pools.get('web')!.setAdmin('o2', 'drain');
      const ev = JSON.parse((await s.next('server')).data) as Record<string, unknown>;
      assert.deepEqual({ ...ev, time: 0 }, { time: 0, pool: 'web', server: 'o2', kind: 'admin', from: 'ready', to: 'drain', cause: 'admin' });
      const next = JSON.parse((await s.next('stats', 3000)).data) as StatsFrame;
      assert.equal(next.pools.find((x) => x.name === 'web')!.servers.find((x) => x.name === 'o2')!.admin, 'drain');
    } finally {
      p.pools.get('web')!.setAdmin('o2', 'ready');
      s.close();
    }
  });

  it('the access log separates the time spent in the pool queue', async () => {
    // One slot on a 40 ms server and three requests at once: the second waits ~40 ms, the third ~80 ms.
    const replies = await Promise.all([1, 2, 3].map((i) => get(port, `/queued?n=${i}`)));
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200, 200],
    );
    let lines: { target: string; queueMs: number; connectMs: number; totalMs: number }[] = [];
    await waitFor(
      () => {
        lines = readFileSync(logPath, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as (typeof lines)[number])
          .filter((l) => l.target.startsWith('/queued'));
        return lines.length === 3;
      },
      15_000,
      'three access-log lines',
    );
    const waits = lines.map((l) => l.queueMs).sort((a, b) => a - b);
    assert.equal(waits[0], 0, 'the first request found a free slot');
    assert.ok(waits[1]! >= 30 && waits[2]! >= 70, `queue times ${waits.join(', ')}`);
    for (const l of lines) assert.ok(l.connectMs >= l.queueMs && l.totalMs >= l.connectMs, JSON.stringify(l));
  });

  it('health check results are counted by result and streamed as health events', async () => {
    const s = await openSse(admin, '/api/v1/events?types=health');
    try {
      await s.next('hello');
      const seen = new Set<string>();
      for (let i = 0; i < 20 && seen.size < 2; i++) {
        const ev = JSON.parse((await s.next('health', 3000)).data) as { pool: string; server: string; ok: boolean; reason?: string };
        if (ev.pool !== 'checked') continue;
        seen.add(`${ev.server}:${ev.ok ? 'ok' : ev.reason}`);
      }
      assert.deepEqual([...seen].sort(), ['alive:ok', 'gone:refused']);
    } finally {
      s.close();
    }
    await waitFor(async () => metric((await get(admin, '/metrics')).body, 'portico_server_up{pool="checked",server="gone"}') === 0, 15_000, 'gone to be down');
    const m = (await get(admin, '/metrics')).body;
    assert.ok(metric(m, 'portico_health_checks_total{pool="checked",server="alive",result="success"}')! >= 1);
    assert.ok(metric(m, 'portico_health_checks_total{pool="checked",server="gone",result="refused"}')! >= 1);
    assert.equal(metric(m, 'portico_server_up{pool="checked",server="alive"}'), 1);
  });

  it('GET / serves the dashboard with a strict content security policy, and its files', async () => {
    const page = await get(admin, '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.match(page.body, /<script src="\/dashboard\/dashboard\.js">/);
    for (const f of ['dashboard.js', 'dashboard.css', 'uplot.js', 'uplot.css']) {
      const r = await get(admin, `/dashboard/${f}`);
      assert.equal(r.status, 200, f);
      assert.ok(r.body.length > 500, f);
    }
    assert.equal((await get(admin, '/dashboard/nope.js')).status, 404);
    assert.equal((await get(admin, '/dashboard/..%2Fpackage.json')).status, 400, 'an encoded slash and a dot segment are refused');
  });
});
