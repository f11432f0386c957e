import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import type { Portico } from '../../app/app.js';
import { missingBinary } from '../../test-helpers/certs.js';
import { send } from '../../test-helpers/http.js';
import { freePort, rawRequest, startOrigin, spawnPortico, waitFor, type Origin, type PorticoProcess } from '../../test-helpers/origins.js';
import { startPortico } from '../../test-helpers/portico.js';

/**
 * `promtool check metrics` (Prometheus's own linter, Debian package `prometheus`) on a live
 * `/metrics`: Portico's metrics, the process and Node.js runtime metrics, and the merged
 * exposition of a Portico with two worker processes. Any problem it reports fails the test.
 */

const skip = missingBinary('promtool');

/** promtool's verdict on `text`: its exit code and what it printed. */
function promtool(text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const guard = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, out });
    });
    c.stdin.end(text);
  });
}

/** One DNS query over UDP for `name` (type A); resolves on the answer. */
function dnsQuery(port: number, name: string): Promise<void> {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const q = Buffer.concat([Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const guard = setTimeout(() => {
      s.close();
      reject(new Error('no DNS answer'));
    }, 10_000);
    s.on('message', () => {
      clearTimeout(guard);
      s.close();
      resolve();
    });
    s.send(q, port, '127.0.0.1');
  });
}

describe('promtool check metrics on a live /metrics', { skip }, () => {
  let origin: Origin;
  let p: Portico | undefined;
  let child: PorticoProcess | undefined;

  before(async () => {
    origin = await startOrigin('o1');
  });
  after(async () => {
    await p?.stop(100);
    await child?.stop();
    await origin.close();
  });

  it('one process: every listener kind with traffic, health checks and the runtime metrics pass promtool', async () => {
    let port: number;
    ({ p, port } = await startPortico({
      log: { level: 'error' },
      admin: { listen: '127.0.0.1:0' },
      listeners: [
        { name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web', cache: 'main' }] },
        { name: 'dns', protocol: 'dns', listen: '127.0.0.1:0', responseRateLimit: false, zones: [{ name: 'example.com', records: [{ name: 'www', type: 'A', pool: 'web' }] }] },
      ],
      pools: [{ name: 'web', health: { type: 'http', path: '/', interval: '100ms', timeout: '1s', rise: 1, fall: 1 }, servers: [{ name: 'o1', address: origin.address }] }],
      caches: [{ name: 'main', memory: '1MiB', maxObjectSize: '64KiB' }],
    }));
    const admin = p.admin!.address.port;
    for (let i = 0; i < 5; i++) assert.equal((await send(port, `/x${i}`)).status, 200);
    await rawRequest(port, 'BROKEN\r\n\r\n');
    await dnsQuery(p.address('dns')!.port, 'www.example.com');
    await waitFor(async () => /portico_health_checks_total\{/.test((await send(admin, '/metrics')).body), 10_000, 'a health check to be counted');
    const m = await send(admin, '/metrics');
    assert.equal(m.status, 200);
    for (const name of [
      'portico_requests_total',
      'portico_request_duration_seconds_bucket',
      'portico_rejected_total',
      'portico_dns_queries_total',
      'portico_cache_requests_total',
      'portico_cache_bytes',
      'portico_cache_entries',
      'process_cpu_seconds_total',
      'nodejs_active_handles',
    ]) {
      assert.match(m.body, new RegExp(`^${name}[{ ]`, 'm'), `${name} is exposed`);
    }
    const r = await promtool(m.body);
    assert.equal(r.out.trim(), '', `promtool found:\n${r.out}`);
    assert.equal(r.code, 0);
  });

  it('two worker processes: the merged exposition passes promtool', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    child = await spawnPortico(
      {
        cluster: { workers: 2 },
        admin: { listen: `127.0.0.1:${admin}` },
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web', cache: 'main' }] }],
        pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
        caches: [{ name: 'main', memory: '1MiB', maxObjectSize: '64KiB' }],
      },
      2,
    );
    await waitFor(async () => (await send(admin, '/metrics').catch(() => undefined))?.headers['x-portico-workers'] === '2/2', 15_000, 'both workers to report');
    for (let i = 0; i < 5; i++) assert.equal((await send(port, `/y${i}`)).status, 200);
    const m = await send(admin, '/metrics');
    assert.match(m.body, /^portico_requests_total\{/m);
    // Each worker counts the requests it served; the merged exposition sums them.
    const counted = [...m.body.matchAll(/^portico_cache_requests_total\{cache="main",result="\w+"\} (\d+)$/gm)].reduce((n, x) => n + Number(x[1]), 0);
    assert.equal(counted, 5);
    const r = await promtool(m.body);
    assert.equal(r.out.trim(), '', `promtool found:\n${r.out}`);
    assert.equal(r.code, 0);
  });
});
