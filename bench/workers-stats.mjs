// How long an admin read and a /metrics scrape take with 1 and with 2 workers (where the answer is
// collected from both over IPC and merged): median and p90 of 40 requests each, on new connections.
//   npm run build && node bench/workers-stats.mjs
// A pool of 50 servers (nothing listens on their ports: the warm-up requests end in 502, which
// gives every server label sets); ports 19601-19612 on 127.0.0.1. Every process it starts is stopped.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'portico-workers-stats-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const get = (port, path) =>
  new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ ms: performance.now() - t0, bytes, workers: res.headers['x-portico-workers'] }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });

const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
for (const workers of [1, 2]) {
  const admin = 19600 + workers;
  const port = 19610 + workers;
  const servers = Array.from({ length: 50 }, (_, i) => ({ name: `s${i}`, address: `127.0.0.1:${20000 + i}` }));
  const file = join(dir, `portico-${workers}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      cluster: { workers },
      admin: { listen: `127.0.0.1:${admin}` },
      log: { level: 'warn' },
      stateDir: dir,
      listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', health: { type: 'none' }, servers }],
    }),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'portico'), 'start', '-c', file], { stdio: 'ignore' });
  children.push(child);
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    try {
      const r = await get(admin, '/metrics');
      up = workers === 1 || r.workers === `${workers}/${workers}`;
    } catch {
      // not listening yet
    }
    if (!up) await sleep(100);
  }
  if (!up) throw new Error(`portico with ${workers} workers did not come up`);
  for (let i = 0; i < 100; i++) await get(port, '/').catch(() => undefined);
  for (const path of ['/metrics', '/api/v1/pools']) {
    const ms = [];
    let bytes = 0;
    for (let i = 0; i < 40; i++) {
      const r = await get(admin, path);
      ms.push(r.ms);
      bytes = r.bytes;
    }
    ms.sort((a, b) => a - b);
    console.log(`workers ${workers}  ${path.padEnd(14)} median ${ms[20].toFixed(1)} ms  p90 ${ms[36].toFixed(1)} ms  (${bytes} bytes)`);
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('close', r));
}
