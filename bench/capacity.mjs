// Capacity and memory of one Portico process under load (issue 16), on 127.0.0.1 only:
//   npm run build && node bench/capacity.mjs [connections=10000]
// Portico runs as its own process (`bin/portico start`, cluster.workers: 1, admin off) with its
// RSS read from /proc/PID/status. Four cases, each printed as a table:
//   idle      N keep-alive connections, one request each, then left idle: RSS over the base, per connection
//   h2        1,000 concurrent streams through an https listener, on 1 and on 8 connections
//   slowloris 1,000 connections sending one header byte a second, while a probe client sends requests
//   slowread  50 clients asking for 64 MB each and reading nothing, while a probe client sends requests
// The file-descriptor limit needs N + 2000: when lower, the script re-runs itself under
// `prlimit --nofile=65536` (which needs CAP_SYS_RESOURCE, or run it under `ulimit -n`). Every loop is bounded in count and time; every process and
// socket it starts is ended before it exits. Figures: docs/limits.md.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.argv[2] ?? 10_000);
const NOFILE = 65_536;

const softNofile = () => Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
// This process holds the N client sockets and the server's; Portico (a child) holds N and its pool's.
if (softNofile() < N + 2000) {
  if (process.env.CAPACITY_RAISED === '1') throw new Error(`open-file limit ${softNofile()} is too low for ${N} connections`);
  const r = spawn('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, CAPACITY_RAISED: '1' },
  });
  r.on('close', (code) => process.exit(code ?? 1));
} else {
  await main();
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'portico-capacity-'));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const children = [];
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  const deadline = (ms, what) => setTimeout(() => (console.error(`gave up: ${what} took more than ${ms} ms`), process.exit(1)), ms).unref();

  // The server: a small answer, or 64 MB streamed with back-pressure for /big.
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const BIG = 64 * 1024 * 1024;
  let bigDone = 0;
  const origin = createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-length': String(BIG) });
      let sent = 0;
      const more = () => {
        while (sent < BIG) {
          sent += chunk.length;
          if (sent >= BIG) return res.end(chunk, () => bigDone++);
          if (!res.write(chunk)) return res.once('drain', more);
        }
      };
      res.on('close', () => res.removeAllListeners('drain'));
      return more();
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  origin.keepAliveTimeout = 600_000;
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const originAddr = `127.0.0.1:${origin.address().port}`;

  const certDir = join(dir, 'tls');
  execFileSync('mkdir', ['-p', certDir]);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=www.example.com',
    '-addext', 'subjectAltName=DNS:www.example.com', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
  const ca = readFileSync(join(certDir, 'cert.pem'));

  /** Start Portico with these listeners (one worker, admin off); resolves with its pid and ports once up. */
  async function portico(listeners) {
    const file = join(dir, `portico-${children.length}.json`);
    writeFileSync(file, JSON.stringify({
      log: { level: 'info' }, // the 'listener NAME on ADDRESS' lines give the ports
      admin: { enabled: false },
      cluster: { workers: 1 },
      listeners,
      pools: [{ name: 'web', servers: [{ name: 'o1', address: originAddr }] }],
    }));
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'portico'), 'start', '-c', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    for (let i = 0; i < 300 && (out.match(/listener \S+ on \S+:(\d+)/g) ?? []).length < listeners.length; i++) {
      if (child.exitCode !== null) throw new Error(`portico exited: ${out}`);
      await sleep(100);
    }
    const ports = [...out.matchAll(/listener \S+ on \S+:(\d+)/g)].map((m) => Number(m[1]));
    if (ports.length < listeners.length) throw new Error(`portico did not start: ${out}`);
    const kb = (f) => Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    return { pid: child.pid, ports, output: () => out, rss: () => kb('VmRSS'), hwm: () => kb('VmHWM'), stop: () => { child.kill('SIGTERM'); return new Promise((r) => child.exitCode !== null ? r() : child.on('close', r)); } };
  }

  const get = (port, path = '/') =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ ok: res.statusCode === 200, ms: performance.now() - t0 }));
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ ok: false, ms: performance.now() - t0 }));
      req.end();
    });

  /** Requests one after another every `every` ms until `stop()`; latency percentiles and failures. */
  function probe(port, every = 50) {
    const lat = [];
    let failed = 0;
    let on = true;
    const done = (async () => {
      while (on) {
        const r = await get(port, '/probe');
        if (r.ok) lat.push(r.ms);
        else failed++;
        await sleep(every);
      }
    })();
    return {
      stop: async () => {
        on = false;
        await done;
        lat.sort((a, b) => a - b);
        const q = (p) => (lat.length === 0 ? NaN : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]);
        return { n: lat.length, failed, p50: q(0.5), p99: q(0.99), max: lat.at(-1) ?? NaN };
      },
    };
  }

  const mb = (b) => (b / 1048576).toFixed(1);
  const table = (title, rows) => {
    console.log(`\n${title}`);
    console.table(rows);
  };
  console.log(`node ${process.version}, ${cpus().length} x ${cpus()[0]?.model}, ${mb(totalmem())} MB, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);

  // ---- (a) idle keep-alive connections ----
  {
    deadline(300_000, 'idle connections');
    const p = await portico([{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }],
      limits: { maxConnections: N + 1000, keepAliveTimeout: '600s' } }]);
    const port = p.ports[0];
    for (let i = 0; i < 200; i++) await get(port); // warm-up: code compiled, pools made
    await sleep(1000);
    const base = p.rss();
    const socks = [];
    const one = () =>
      new Promise((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        let got = '';
        s.setEncoding('latin1');
        s.on('error', reject);
        s.on('data', (c) => {
          got += c;
          if (got.endsWith('\r\n\r\nok')) resolve(s);
        });
        s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
        socks.push(s);
      });
    const t0 = performance.now();
    for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, one));
    const openMs = performance.now() - t0;
    await sleep(2000);
    const loaded = p.rss();
    const open = socks.filter((s) => !s.destroyed).length;
    for (const s of socks) s.destroy();
    await sleep(2000);
    const after = p.rss();
    table(`idle keep-alive connections (http listener, one request each), ${(openMs / 1000).toFixed(1)} s to open`, [{
      connections: N, 'still open': open, 'base RSS MB': mb(base), 'RSS with them MB': mb(loaded),
      'KB per connection': ((loaded - base) / N / 1024).toFixed(2), 'RSS after close MB': mb(after), 'peak RSS MB': mb(p.hwm()),
    }]);
    await p.stop();
  }

  // ---- (b) concurrent h2 streams ----
  {
    deadline(420_000, 'h2 streams');
    const p = await portico([{ name: 's', protocol: 'https', listen: '127.0.0.1:0', routes: [{ pool: 'web' }],
      tls: { certificates: [{ cert: join(certDir, 'cert.pem'), key: join(certDir, 'key.pem') }] } }]);
    const port = p.ports[0];
    const rows = [];
    for (const conns of [1, 8]) {
      const STREAMS = 1000;
      const sessions = Array.from({ length: conns }, () => h2connect(`https://127.0.0.1:${port}`, { ca, servername: 'www.example.com' }));
      const sessionErrors = [];
      let goaway = 0;
      for (const s of sessions) {
        s.on('error', (e) => sessionErrors.push(e.code ?? e.message));
        s.on('goaway', () => goaway++);
      }
      await Promise.all(sessions.map((s) => new Promise((r) => s.once('remoteSettings', r))));
      const peerMax = sessions[0].remoteSettings.maxConcurrentStreams;
      const codes = new Map();
      let ok = 0;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: STREAMS }, (_, i) => new Promise((resolve) => {
        const st = sessions[i % conns].request({ ':path': `/h2/${i}`, ':authority': 'www.example.com' });
        let status = 0;
        st.on('response', (h) => (status = h[':status']));
        st.resume();
        st.on('end', () => { if (status === 200) ok++; });
        st.on('close', () => { if (st.rstCode) codes.set(st.rstCode, (codes.get(st.rstCode) ?? 0) + 1); resolve(); });
        st.on('error', () => {});
        st.end();
      })));
      const ms = performance.now() - t0;
      for (const s of sessions) s.close();
      rows.push({ connections: conns, streams: STREAMS, 'peer SETTINGS_MAX_CONCURRENT_STREAMS': peerMax, 200: ok,
        'RST codes': [...codes].map(([c, n]) => `${c} x${n}`).join(' ') || '-', 'session errors': sessionErrors.join(' ') || '-', goaway, 's': (ms / 1000).toFixed(2), 'RSS MB': mb(p.rss()) });
    }
    table('1,000 concurrent h2 streams (https listener)', rows);
    await p.stop();
  }

  // ---- (c) slowloris and slow reader ----
  {
    deadline(600_000, 'slowloris and slow reader');
    const p = await portico([{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }]);
    const port = p.ports[0];
    for (let i = 0; i < 100; i++) await get(port);
    const rows = [];
    {
      const SLOW = 1000;
      const base = p.rss();
      const quiet = probe(port);
      const quietStats = await sleep(3000).then(() => quiet.stop());
      const slow = [];
      let cut = 0;
      const t0 = performance.now();
      const cutAt = [];
      for (let i = 0; i < SLOW; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.on('close', () => { cut++; cutAt.push(performance.now() - t0); });
        s.resume();
        s.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ');
        slow.push(s);
      }
      const pr = probe(port);
      // one byte a second on each, for 15 s (headerTimeout is 10 s)
      for (let t = 0; t < 15; t++) {
        await sleep(1000);
        for (const s of slow) if (!s.destroyed) s.write('x');
      }
      const st = await pr.stop();
      const peak = p.rss();
      for (const s of slow) s.destroy();
      cutAt.sort((a, b) => a - b);
      rows.push({ case: `slowloris, ${SLOW} conns, 1 byte/s`, 'probe (quiet) p50 ms': quietStats.p50.toFixed(1), 'probe p50 ms': st.p50.toFixed(1), 'probe p99 ms': st.p99.toFixed(1),
        'probe max ms': st.max.toFixed(1), 'probe ok': st.n, 'probe failed': st.failed,
        'slow cut by Portico': `${cut} (first at ${((cutAt[0] ?? NaN) / 1000).toFixed(1)} s)`, 'RSS over base MB': mb(peak - base) });
      await sleep(1000);
    }
    {
      const READERS = 50;
      const base = p.rss();
      const readers = [];
      for (let i = 0; i < READERS; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.pause();
        s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
        readers.push(s);
      }
      const pr = probe(port);
      await sleep(10_000);
      const st = await pr.stop();
      const peak = p.rss();
      for (const s of readers) s.destroy();
      rows.push({ case: `slow reader, ${READERS} x 64 MB unread`, 'probe (quiet) p50 ms': '', 'probe p50 ms': st.p50.toFixed(1), 'probe p99 ms': st.p99.toFixed(1),
        'probe max ms': st.max.toFixed(1), 'probe ok': st.n, 'probe failed': st.failed,
        'slow cut by Portico': `none (${bigDone} of ${READERS} responses sent whole)`, 'RSS over base MB': mb(peak - base) });
    }
    table('slow clients, while a probe sends a request every 50 ms (http listener, default limits)', rows);
    await p.stop();
  }
  origin.closeAllConnections();
  origin.close();
  process.exit(0);
}
