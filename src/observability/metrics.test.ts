import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { getBalancer } from '../balancer/registry.js';
import '../balancer/index.js';
import { ManualClock } from '../core/clock.js';
import { SeededRng } from '../core/rng.js';
import { serverId, type Server } from '../core/server.js';
import { Pool } from '../pool/pool.js';
import { HealthCheckCounters, Metrics } from './metrics.js';
import { RequestStats } from './request-stats.js';
import { exchange } from './testing.js';
import { TrafficCounters } from './traffic.js';

function server(name: string, weight: number): Server {
  return { id: serverId('web', name), name, host: '127.0.0.1', port: 1, weight, backup: false, maxConnections: 0, meta: {} };
}

/** The value of one sample line `name{labels} value` (labels in the order written). */
function sample(text: string, line: string): number | undefined {
  for (const l of text.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return undefined;
}

it('renders the SPEC names from the live counters at scrape time', async () => {
  const pool = new Pool(
    { name: 'web', factory: getBalancer('roundrobin')!, balancerOptions: undefined, rng: new SeededRng(1), clock: new ManualClock() },
    [{ server: server('a', 3) }, { server: server('b', 1), admin: 'drain' }],
  );
  const traffic = new TrafficCounters();
  const stats = new RequestStats();
  stats.onRequest(traffic.record);
  const health = new HealthCheckCounters();
  const m = new Metrics({ traffic, stats, pools: new Map([['web', pool]]), health, processMetrics: false });

  for (let i = 0; i < 5; i++) stats.requestDone(exchange({ server: 'a', status: 200, totalMs: 0.7, bytesIn: 10, bytesOut: 20 }));
  stats.requestDone(exchange({ server: 'a', status: 502, totalMs: 3000 }));
  stats.requestDone(exchange({ listener: 'other', server: 'a', status: 200, totalMs: 1 }));
  stats.connection('web');
  stats.connection('web');
  stats.rejected('web', 'header-too-large');
  health.add('web', 'a', 'success');
  health.add('web', 'b', 'timeout');
  health.add('web', 'b', 'timeout');
  pool.setOp(serverId('web', 'b'), 'down', 'probe');
  pool.setEffectiveWeight(serverId('web', 'a'), 1.5);
  pool.acquire(pool.byName('a')!.server);

  const text = await m.render();
  const L = 'listener="web",pool="web",server="a"';
  assert.equal(sample(text, `portico_requests_total{${L},code="200"}`), 5);
  assert.equal(sample(text, `portico_requests_total{${L},code="502"}`), 1);
  assert.equal(sample(text, `portico_requests_total{listener="other",pool="web",server="a",code="200"}`), 1);
  assert.equal(sample(text, `portico_request_duration_seconds_bucket{${L},le="0.0005"}`), 0);
  assert.equal(sample(text, `portico_request_duration_seconds_bucket{${L},le="0.001"}`), 5);
  assert.equal(sample(text, `portico_request_duration_seconds_bucket{${L},le="2.5"}`), 5);
  assert.equal(sample(text, `portico_request_duration_seconds_bucket{${L},le="5"}`), 6);
  assert.equal(sample(text, `portico_request_duration_seconds_bucket{${L},le="+Inf"}`), 6);
  assert.equal(sample(text, `portico_request_duration_seconds_count{${L}}`), 6);
  assert.ok(Math.abs(sample(text, `portico_request_duration_seconds_sum{${L}}`)! - 3.0035) < 1e-9);
  assert.equal(sample(text, `portico_bytes_total{${L},direction="in"}`), 5 * 10 + 100);
  assert.equal(sample(text, `portico_bytes_total{${L},direction="out"}`), 5 * 20 + 200);
  assert.equal(sample(text, 'portico_server_up{pool="web",server="a"}'), 1);
  assert.equal(sample(text, 'portico_server_up{pool="web",server="b"}'), 0);
  assert.equal(sample(text, 'portico_server_state{pool="web",server="b",state="drain"}'), 1);
  assert.equal(sample(text, 'portico_server_state{pool="web",server="b",state="ready"}'), 0);
  assert.equal(sample(text, 'portico_server_weight{pool="web",server="a"}'), 1.5);
  assert.equal(sample(text, 'portico_server_weight{pool="web",server="b"}'), 1);
  assert.equal(sample(text, 'portico_server_active_connections{pool="web",server="a"}'), 1);
  assert.equal(sample(text, 'portico_health_checks_total{pool="web",server="b",result="timeout"}'), 2);
  assert.equal(sample(text, 'portico_health_checks_total{pool="web",server="a",result="success"}'), 1);
  assert.equal(sample(text, 'portico_connections_total{listener="web"}'), 2);
  assert.equal(sample(text, 'portico_rejected_total{listener="web",reason="header-too-large"}'), 1);
  assert.match(text, /# TYPE portico_request_duration_seconds histogram/);
  assert.match(text, /# TYPE portico_requests_total counter/);
  assert.doesNotMatch(text, /process_cpu/, 'process metrics were turned off');

  // Counters keep counting between scrapes (a scrape resets nothing).
  stats.requestDone(exchange({ server: 'a', status: 200, totalMs: 0.7 }));
  assert.equal(sample(await m.render(), `portico_requests_total{${L},code="200"}`), 6);

  // A server that leaves its pool leaves the metrics.
  traffic.forget('web', 'a');
  health.forget('web', 'a');
  pool.remove('a');
  assert.doesNotMatch(await m.render(), /server="a"/);
});

it('includes the process and runtime metrics by default', async () => {
  const m = new Metrics({ traffic: new TrafficCounters(), stats: new RequestStats(), pools: new Map() });
  const text = await m.render();
  assert.match(text, /^process_cpu_user_seconds_total \d/m);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.equal(m.contentType.split(';')[0], 'text/plain');
});

it('tcp-listener connections add their bytes, with no request series', async () => {
  const traffic = new TrafficCounters();
  const stats = new RequestStats();
  stats.onConnectionDone(traffic.recordConnection);
  const m = new Metrics({ traffic, stats, pools: new Map(), processMetrics: false });
  const conn = { listener: 'db', clientAddress: '127.0.0.1', route: '', pool: 'mysql', server: 'm1', durationMs: 5, tries: 1, error: '' };
  stats.connectionDone({ ...conn, bytesIn: 100, bytesOut: 2000 });
  stats.connectionDone({ ...conn, bytesIn: 1, bytesOut: 2 });
  const text = await m.render();
  assert.equal(sample(text, 'portico_bytes_total{listener="db",pool="mysql",server="m1",direction="in"}'), 101);
  assert.equal(sample(text, 'portico_bytes_total{listener="db",pool="mysql",server="m1",direction="out"}'), 2002);
  assert.doesNotMatch(text, /portico_request(s_total|_duration_seconds_count)\{listener="db"/);
  assert.equal(traffic.serverTraffic('mysql', 'm1').bytes, 2103, 'the live statistics see the bytes too');
});
