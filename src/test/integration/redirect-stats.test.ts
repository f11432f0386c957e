import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { serverId } from '../../core/server.js';
import type { StatsFrame } from '../../observability/live-stats.js';
import { send } from '../../test-helpers/http.js';
import { rawRequest, waitFor } from '../../test-helpers/origins.js';
import { startPortico } from '../../test-helpers/portico.js';
import { openSse } from '../../test-helpers/sse.js';

function metric(text: string, line: string): number | undefined {
  for (const l of text.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return undefined;
}

interface Line {
  listener: string;
  method: string;
  target: string;
  host: string;
  pool: string;
  server: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  requestId: string;
  totalMs: number;
}

describe('redirect listener: requests in the metrics, the access log and the live statistics', () => {
  it('after 30 redirects, a 503 and a 405: portico_requests_total by server and code, one access-log line each', async () => {
    const logPath = join(mkdtempSync(join(tmpdir(), 'portico-redirect-')), 'access.log');
    const { p, port } = await startPortico(
      {
        log: { level: 'error', access: { path: logPath, format: 'json' } },
        admin: { listen: '127.0.0.1:0' },
        listeners: [{ name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web' }],
        pools: [
          {
            name: 'web',
            balance: 'roundrobin',
            servers: [
              { name: 'm1', address: '127.0.0.1:9', url: 'http://mirror1.example.com' },
              { name: 'm2', address: '127.0.0.1:9', url: 'https://mirror2.example.com/pub/' },
              { name: 'm3', address: '127.0.0.1:9', url: 'http://mirror3.example.com' },
            ],
          },
        ],
      },
      'mirror',
    );
    const admin = p.admin!.address.port;
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 3 });
      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => send(port, `/files/${i}.iso?x=1`, { agent })));
      agent.destroy();
      assert.ok(replies.every((r) => r.status === 302));
      const pool = p.pools.get('web')!;
      for (const name of ['m1', 'm2', 'm3']) pool.setOp(serverId('web', name), 'down', 'probe');
      const none = await send(port, '/none');
      assert.equal(none.status, 503);
      const star = await rawRequest(port, 'OPTIONS * HTTP/1.1\r\nHost: lb\r\n\r\n');
      assert.match(star, /^HTTP\/1\.1 405 /);

      const m = (await send(admin, '/metrics')).body;
      for (const s of ['m1', 'm2', 'm3']) {
        assert.equal(metric(m, `portico_requests_total{listener="mirror",pool="web",server="${s}",code="302"}`), 10, `${s}\n${m}`);
        assert.equal(metric(m, `portico_request_duration_seconds_count{listener="mirror",pool="web",server="${s}"}`), 10);
      }
      assert.equal(metric(m, 'portico_requests_total{listener="mirror",pool="web",server="",code="503"}'), 1);
      assert.equal(metric(m, 'portico_requests_total{listener="mirror",pool="",server="",code="405"}'), 1);
      assert.equal(metric(m, 'portico_rejected_total{listener="mirror",reason="method"}'), 1);

      // The admin API's per-server request counter holds the clients sent there.
      const view = JSON.parse((await send(admin, '/api/v1/pools/web')).body) as { servers: { name: string; requests: number }[] };
      assert.deepEqual(
        view.servers.map((s) => [s.name, s.requests]),
        [
          ['m1', 10],
          ['m2', 10],
          ['m3', 10],
        ],
      );

      await waitFor(() => readFileSync(logPath, 'utf8').split('\n').length > 32, 15_000, 'the access log');
      const lines = readFileSync(logPath, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Line);
      assert.equal(lines.length, 32);
      const redirects = lines.filter((l) => l.status === 302);
      assert.equal(redirects.length, 30);
      assert.deepEqual(
        [...new Set(redirects.map((l) => l.server))].sort(),
        ['m1', 'm2', 'm3'],
      );
      for (const l of redirects) {
        assert.equal(l.listener, 'mirror');
        assert.equal(l.method, 'GET');
        assert.match(l.target, /^\/files\/\d+\.iso\?x=1$/);
        assert.equal(l.host, `127.0.0.1`);
        assert.equal(l.pool, 'web');
        assert.ok(l.bytesIn > 0 && l.bytesOut > 0);
        assert.ok(l.totalMs >= 0);
      }
      // The bytes are those of each request and its answer: they add up to the metric.
      const outM1 = metric(m, 'portico_bytes_total{listener="mirror",pool="web",server="m1",direction="out"}');
      assert.equal(outM1, redirects.filter((l) => l.server === 'm1').reduce((a, l) => a + l.bytesOut, 0));
      const unavailable = lines.find((l) => l.status === 503)!;
      assert.deepEqual([unavailable.target, unavailable.pool, unavailable.server], ['/none', 'web', '']);
      assert.equal(unavailable.requestId, none.headers['x-request-id'], 'the request id of the answer');
      const opt = lines.find((l) => l.status === 405)!;
      assert.deepEqual([opt.method, opt.target], ['OPTIONS', '*']);
    } finally {
      await p.stop(100);
    }
  });

  it('a combined-format line names the server; the live statistics count the redirects per second', async () => {
    const logPath = join(mkdtempSync(join(tmpdir(), 'portico-redirect-')), 'access.log');
    const { p, port } = await startPortico(
      {
        log: { level: 'error', access: { path: logPath, format: 'combined' } },
        admin: { listen: '127.0.0.1:0' },
        listeners: [{ name: 'mirror', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'web' }],
        pools: [{ name: 'web', servers: [{ name: 'only', address: '127.0.0.1:9', url: 'http://only.example.com' }] }],
      },
      'mirror',
    );
    const admin = p.admin!.address.port;
    const s = await openSse(admin, '/api/v1/events?types=stats');
    try {
      const r = await send(port, '/a?b=c', { headers: { 'user-agent': 'fetcher/1', referer: 'http://ref.example/' } });
      assert.equal(r.status, 302);
      await waitFor(() => readFileSync(logPath, 'utf8').includes('\n'), 15_000, 'the access log');
      const line = readFileSync(logPath, 'utf8').trim();
      assert.match(line, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/a\?b=c HTTP\/1\.1" 302 \d+ "http:\/\/ref\.example\/" "fetcher\/1" \S+ mirror - web only /);
      // Load for a few seconds: each stats frame gives the listener's rate and the server's.
      let seen = 0;
      const deadline = Date.now() + 8000;
      const agent = new Agent({ keepAlive: true, maxSockets: 2 });
      while (Date.now() < deadline) {
        await Promise.all(Array.from({ length: 20 }, () => send(port, '/x', { agent })));
        const frame = JSON.parse((await s.next('stats', 3000)).data) as StatsFrame;
        const l = frame.listeners.find((x) => x.name === 'mirror')!;
        const srv = frame.pools.find((x) => x.name === 'web')!.servers.find((x) => x.name === 'only')!;
        if (l.rps > 0 && srv.rps > 0) {
          seen++;
          if (seen >= 2) break;
        }
      }
      agent.destroy();
      assert.ok(seen >= 2, 'stats frames with the redirects in their rates');
    } finally {
      s.close();
      await p.stop(100);
    }
  });
});
