import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runsHere } from '../../test-helpers/netns.js';

/**
 * The kernel NAT data plane with real packets (SPEC §10): three network namespaces made here and
 * always deleted: a client (several addresses), the balancer (Portico runs there, `ip netns exec`,
 * and programs nftables) and the servers (three small Node servers naming themselves over TCP, and
 * a UDP echo each). The client reaches the servers only through the virtual address; the servers
 * route their replies through the balancer (snat: none).
 * Addresses are in 198.19.0.0/16 (the benchmarking range) and exist only inside these namespaces;
 * names carry the process id, so parallel runs do not collide.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CI = process.env['CI'] === 'true';
const TAG = `pkn${process.pid % 100_000}`;
const NS = { c: `${TAG}-c`, lb: `${TAG}-lb`, s: `${TAG}-s` } as const;
const NET_C = '198.19.1';
const NET_S = '198.19.2';
const VIP = `${NET_C}.100`;
const CLIENT = `${NET_C}.10`;
const SOURCES = Array.from({ length: 10 }, (_, i) => `${NET_C}.${20 + i}`);
/** Client addresses hashed by the kernel and by a userspace listener over the same pool. */
const HASH_SOURCES = Array.from({ length: 60 }, (_, i) => `${NET_C}.${130 + i}`);
const SERVERS = [
  { name: 's1', ip: `${NET_S}.11`, weight: 5 },
  { name: 's2', ip: `${NET_S}.12`, weight: 3 },
  { name: 's3', ip: `${NET_S}.13`, weight: 2 },
] as const;
const ADMIN = 'http://127.0.0.1:9190';
const INTERVAL_MS = 300;
const FALL = 2;
const RISE = 2;

const which = (names: readonly string[]): string | undefined => names.find((p) => existsSync(p));

function sh(cmd: string, args: readonly string[], timeoutMs = 20_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function ip(...args: string[]): void {
  const r = sh('ip', args);
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function inNs(ns: string, ...argv: string[]): void {
  const r = sh('ip', ['netns', 'exec', ns, ...argv]);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${ns}: ${r.stderr}`);
}

/** Run a command in a namespace without blocking the event loop; its output. */
function inNsAsync(ns: string, argv: readonly string[], input = '', timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

function netnsUnavailable(): string | undefined {
  const probe = `${TAG}-probe`;
  let why = '';
  for (let i = 0; i < 3; i++) {
    const r = sh('ip', ['netns', 'add', probe]);
    if (r.status === 0) {
      sh('ip', ['netns', 'del', probe]);
      return undefined;
    }
    why = r.stderr.trim();
    sh('sleep', ['0.2']);
  }
  return `network namespaces cannot be created here: ${why}`;
}

/** A server naming itself: TCP on port 80 (its name on connect, and again for each line received), UDP echo of its name on 5300. */
const SERVER = `
const net = require('net'), dgram = require('dgram');
const [name, ip] = process.argv.slice(1);
net.createServer((s) => {
  s.on('error', () => {});
  s.write(name + '\\n');
  s.on('data', (b) => { for (const c of b.toString()) if (c === '\\n') s.write(name + '\\n'); });
}).listen(80, ip, () => process.stdout.write('ready\\n'));
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(name, r.port, r.address));
u.bind(5300, ip);
`;

/**
 * The client. \`tcp PORT N SOURCES\`: N fresh connections to the virtual address (10 at a time),
 * each from the next source address, counting the name that answers; \`udp PORT N\`: N datagrams
 * from fresh sockets; \`long PORT\`: one connection, its server's name on the first line, then a
 * ping per line of standard input and its answer (or \`closed\`).
 */
const CLIENT_JS = `
const net = require('net'), dgram = require('dgram');
const [mode, vip, port, n, sources] = process.argv.slice(1);
const src = (sources || '').split(',').filter(Boolean);
const counts = {}, bySource = {}, codes = {}; let errors = 0;
const fail = (c) => { errors++; codes[c] = (codes[c] || 0) + 1; };
const note = (name, from) => { counts[name] = (counts[name] || 0) + 1; if (from) { const m = bySource[from] = bySource[from] || {}; m[name] = (m[name] || 0) + 1; } };
const one = (i) => new Promise((res) => {
  const from = src.length ? src[i % src.length] : undefined;
  const s = net.connect({ host: vip, port: Number(port), localAddress: from });
  let b = '';
  const t = setTimeout(() => { fail('timeout'); s.destroy(); res(); }, 5000);
  s.on('data', (c) => { b += c; const k = b.indexOf('\\n'); if (k >= 0) { clearTimeout(t); note(b.slice(0, k), from); s.end(); s.destroy(); res(); } });
  s.on('error', (e) => { clearTimeout(t); fail(e.code); res(); });
});
const udp = () => new Promise((res) => {
  const s = dgram.createSocket('udp4');
  let tries = 0;
  const send = () => { if (tries++ >= 3) { errors++; s.close(); return res(); } s.send('x', Number(port), vip); t = setTimeout(send, 1000); };
  let t;
  s.on('message', (m) => { clearTimeout(t); note(m.toString()); s.close(); res(); });
  s.on('error', () => { clearTimeout(t); errors++; try { s.close(); } catch {} res(); });
  send();
});
(async () => {
  if (mode === 'long') {
    const s = net.connect({ host: vip, port: Number(port) });
    let b = '';
    s.on('data', (c) => { b += c; let k; while ((k = b.indexOf('\\n')) >= 0) { process.stdout.write(b.slice(0, k) + '\\n'); b = b.slice(k + 1); } });
    s.on('close', () => { process.stdout.write('closed\\n'); process.exit(0); });
    s.on('error', () => {});
    process.stdin.on('data', (c) => { for (const ch of c.toString()) if (ch === '\\n') s.write('ping\\n'); });
    process.stdin.on('end', () => s.end());
    return;
  }
  const total = Number(n);
  let next = 0;
  const worker = async () => { while (next < total) { const i = next++; await (mode === 'udp' ? udp() : one(i)); } };
  await Promise.all(Array.from({ length: mode === 'udp' ? 5 : 10 }, worker));
  process.stdout.write(JSON.stringify({ counts, bySource, errors, codes }) + '\\n');
})();
`;

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  out: string;
}

const procs: Proc[] = [];

function start(name: string, ns: string, argv: string[]): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const p: Proc = { name, child, out: '' };
  child.stdout!.on('data', (c) => (p.out += c));
  child.stderr!.on('data', (c) => (p.out += c));
  procs.push(p);
  return p;
}

async function stopProc(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
  const closed = new Promise<number | null>((r) => p.child.once('close', (code) => r(code)));
  p.child.kill(signal);
  return Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
}

/** Wait until `p` printed something matching `re` (bounded). */
async function waitOut(p: Proc, re: RegExp, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!re.test(p.out)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${p.name} did not print ${re} within ${timeoutMs} ms:\n${p.out.slice(-3000)}`);
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}):\n${p.out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Poll `fn` until true, at most `timeoutMs`. */
async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const args = ['curl', '-s', '--max-time', '10', '-X', method, '-H', 'content-type: application/json'];
  if (body !== undefined) args.push('-d', JSON.stringify(body));
  const r = await inNsAsync(NS.lb, [...args, `${ADMIN}${path}`]);
  const text = r.stdout.trim();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function client(args: string[]): Promise<{ counts: Record<string, number>; bySource: Record<string, Record<string, number>>; errors: number }> {
  const r = await inNsAsync(NS.c, [process.execPath, '-e', CLIENT_JS, ...args]);
  if (r.code !== 0) throw new Error(`client ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** The balancing map of listener vip as nft lists it (undefined when nft failed: never read as "absent"). */
async function slots(): Promise<string | undefined> {
  const r = await inNsAsync(NS.lb, ['nft', 'list', 'map', 'ip', 'portico', 'vip_slots']);
  return r.code === 0 && r.stdout.includes('vip_slots') ? r.stdout : undefined;
}

/** Whether the map sends new flows to `ip` (undefined: could not tell, polled again). */
async function inMap(ip: string): Promise<boolean | undefined> {
  const m = await slots();
  return m === undefined ? undefined : m.includes(`${ip} . `);
}

const pct = (counts: Record<string, number>, name: string, total: number): number => (100 * (counts[name] ?? 0)) / total;

describe('kernel NAT data plane (network namespaces)', { concurrency: false }, () => {
  let skip: string | undefined;
  if (which(['/usr/sbin/nft', '/sbin/nft']) === undefined) skip = 'nft is not installed (Debian package nftables)';
  else if (which(['/usr/sbin/conntrack', '/sbin/conntrack']) === undefined) skip = 'conntrack is not installed (Debian package conntrack)';
  else if (which(['/usr/bin/curl']) === undefined) skip = 'curl is not installed';
  else if (process.getuid?.() !== 0) skip = 'network namespaces and nftables need root';
  else skip = netnsUnavailable();
  if (!runsHere(skip)) return;

  const dir = mkdtempSync(join(tmpdir(), 'portico-kernel-nat-'));
  const servers = new Map<string, Proc>();
  let portico: Proc | undefined;

  const startServer = async (s: (typeof SERVERS)[number]): Promise<void> => {
    const p = start(s.name, NS.s, [process.execPath, '-e', SERVER, s.name, s.ip]);
    servers.set(s.name, p);
    await waitOut(p, /ready/);
  };

  const config = `
admin: { listen: 127.0.0.1:9190 }
cluster: { workers: 1 }
log: { level: info }
listeners:
  - name: vip
    protocol: tcp
    listen: ${VIP}:80
    dataPlane: kernel
    pool: web
  - name: sticky
    protocol: tcp
    listen: ${VIP}:81
    dataPlane: kernel
    pool: web81
    kernel: { persistence: { timeout: 5m } }
  - name: hashed
    protocol: tcp
    listen: ${VIP}:82
    dataPlane: kernel
    pool: webhash
  - name: hashed-userspace
    protocol: tcp
    listen: ${VIP}:83
    pool: webhash
  - name: dns
    protocol: udp
    listen: ${VIP}:53
    dataPlane: kernel
    pool: echo
pools:
  - name: web
    balance: roundrobin
    retries: 0
    health: { type: tcp, interval: ${INTERVAL_MS}ms, timeout: 250ms, rise: ${RISE}, fall: ${FALL} }
    servers:
${SERVERS.map((s) => `      - { name: ${s.name}, address: ${s.ip}:80, weight: ${s.weight} }`).join('\n')}
  - name: web81
    balance: random
    retries: 0
    servers:
${SERVERS.map((s) => `      - { name: ${s.name}, address: ${s.ip}:80 }`).join('\n')}
  - name: webhash
    balance: hash
    hash: { key: source-ip }
    retries: 0
    servers:
${SERVERS.map((s) => `      - { name: ${s.name}, address: ${s.ip}:80 }`).join('\n')}
  - name: echo
    balance: roundrobin
    retries: 0
    servers:
${SERVERS.map((s) => `      - { name: ${s.name}, address: ${s.ip}:5300 }`).join('\n')}
`;

  before(async () => {
    for (const ns of Object.values(NS)) ip('netns', 'add', ns);
    // client <-> balancer
    ip('link', 'add', `${TAG}c`, 'netns', NS.c, 'type', 'veth', 'peer', 'name', `${TAG}l`, 'netns', NS.lb);
    // balancer <-> servers
    ip('link', 'add', `${TAG}m`, 'netns', NS.lb, 'type', 'veth', 'peer', 'name', `${TAG}s`, 'netns', NS.s);
    for (const ns of Object.values(NS)) ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', NS.c, 'addr', 'add', `${CLIENT}/24`, 'dev', `${TAG}c`);
    for (const a of [...SOURCES, ...HASH_SOURCES]) ip('-n', NS.c, 'addr', 'add', `${a}/24`, 'dev', `${TAG}c`);
    ip('-n', NS.c, 'link', 'set', `${TAG}c`, 'up');
    ip('-n', NS.lb, 'addr', 'add', `${NET_C}.1/24`, 'dev', `${TAG}l`);
    ip('-n', NS.lb, 'addr', 'add', `${VIP}/32`, 'dev', `${TAG}l`);
    ip('-n', NS.lb, 'addr', 'add', `${NET_S}.1/24`, 'dev', `${TAG}m`);
    ip('-n', NS.lb, 'link', 'set', `${TAG}l`, 'up');
    ip('-n', NS.lb, 'link', 'set', `${TAG}m`, 'up');
    for (const s of SERVERS) ip('-n', NS.s, 'addr', 'add', `${s.ip}/24`, 'dev', `${TAG}s`);
    ip('-n', NS.s, 'link', 'set', `${TAG}s`, 'up');
    ip('-n', NS.s, 'route', 'add', 'default', 'via', `${NET_S}.1`);
    inNs(NS.lb, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    for (const s of SERVERS) await startServer(s);
    writeFileSync(join(dir, 'portico.yaml'), config);
    portico = start('portico', NS.lb, [process.execPath, join(ROOT, 'bin', 'portico'), 'start', '-c', join(dir, 'portico.yaml')]);
    await until('portico ready', async () => (await admin('GET', '/api/v1/status/ready').catch(() => undefined))?.ready === true || /listening|ready/.test(portico!.out), 60_000).catch((err) => {
      throw new Error(`${String(err)}\n${portico!.out}`);
    });
    await until('kernel table written', async () => (await inNsAsync(NS.lb, ['nft', 'list', 'table', 'ip', 'portico'])).code === 0, 30_000);
    // Every server up by its checks before the spread is measured.
    await until('servers up', async () => {
      const v = await admin('GET', '/api/v1/pools/web');
      return Array.isArray(v?.servers) && v.servers.every((s: { health?: string }) => s.health === 'up');
    }, 30_000);
    // The kernel's map follows a health change after its nft transaction: wait for every server in it.
    await until('every server in the slots map', async () => {
      const r = await inNsAsync(NS.lb, ['nft', 'list', 'map', 'ip', 'portico', 'vip_slots']);
      return r.code === 0 && SERVERS.every((sv) => r.stdout.includes(sv.ip));
    }, 30_000);
  });

  after(async () => {
    try {
      for (const p of procs) await stopProc(p, 'SIGKILL');
    } finally {
      for (const ns of Object.values(NS)) sh('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('spreads 600 connections by weight (5:3:2) within a few points', async (t) => {
    const r = await client(['tcp', VIP, '80', '600', CLIENT]);
    if (r.errors > 0) {
      // Which chain refused them (vip_in counts the flows no slot took), and what Portico did meanwhile.
      const table = (await inNsAsync(NS.lb, ['nft', 'list', 'table', 'ip', 'portico'])).stdout;
      t.diagnostic(`table:\n${table.slice(0, 6000)}\nportico:\n${portico!.out.slice(-4000)}`);
    }
    assert.equal(r.errors, 0, JSON.stringify(r));
    const total = Object.values(r.counts).reduce((a, b) => a + b, 0);
    assert.equal(total, 600);
    for (const s of SERVERS) assert.ok(Math.abs(pct(r.counts, s.name, total) - s.weight * 10) <= 4, `${s.name}: ${JSON.stringify(r.counts)}`);
  });

  it('drain: a long-lived connection keeps its server while every new one avoids it', async () => {
    const long = start('long', NS.c, [process.execPath, '-e', CLIENT_JS, 'long', VIP, '80']);
    try {
      await waitOut(long, /^s\d\n/);
      const victim = long.out.trim().split('\n')[0]!;
      const res = await admin('PATCH', `/api/v1/pools/web/servers/${victim}`, { state: 'drain' });
      assert.equal(res?.state, 'drain', JSON.stringify(res));
      // The map is written within the API call's turn; new connections avoid the drained server.
      await until('drain applied', async () => (await inMap(SERVERS.find((s) => s.name === victim)!.ip)) === false, 10_000);
      const r = await client(['tcp', VIP, '80', '200', CLIENT]);
      assert.equal(r.counts[victim] ?? 0, 0, `new connections reached the drained server: ${JSON.stringify(r.counts)}`);
      assert.equal(r.errors, 0);
      // The kept-alive connection still answers, from the same server.
      const before = long.out.split('\n').length;
      long.child.stdin!.write('\n\n\n');
      await until('long connection answers', async () => long.out.split('\n').length >= before + 3, 10_000);
      assert.deepEqual([...new Set(long.out.trim().split('\n'))], [victim], long.out);
      await admin('PATCH', `/api/v1/pools/web/servers/${victim}`, { state: 'ready' });
    } finally {
      long.child.stdin!.end();
      await stopProc(long, 'SIGKILL');
    }
  });

  it('a stopped server leaves within fall x interval and comes back after rise', async (t) => {
    const s3 = servers.get('s3')!;
    await stopProc(s3, 'SIGKILL');
    try {
      const left = await until('s3 down', async () => (await admin('GET', '/api/v1/pools/web/servers/s3'))?.health === 'down', 20_000);
      t.diagnostic(`s3 seen down after ${left} ms (fall ${FALL} x interval ${INTERVAL_MS} ms)`);
      // fall x interval, plus a probe's timeout, the admin poll's own pace (a curl in the namespace) and a slow machine.
      assert.ok(left <= FALL * INTERVAL_MS + 250 + 5000, `took ${left} ms`);
      await until('s3 out of the map', async () => (await inMap(`${NET_S}.13`)) === false, 10_000);
      // Its flows are cut too: a closed flow's translation (TIME_WAIT) would otherwise take a client reusing its port back to s3.
      await until('s3 flows cut', async () => !(await admin('GET', '/api/v1/listeners/vip/flows')).flows.some((f: { server: string }) => f.server.startsWith(`${NET_S}.13:`)), 20_000);
      const r = await client(['tcp', VIP, '80', '100', CLIENT]);
      if (r.errors > 0) {
        const map = (await inNsAsync(NS.lb, ['nft', 'list', 'table', 'ip', 'portico'])).stdout;
        const ct = (await inNsAsync(NS.lb, ['conntrack', '-L', '-p', 'tcp', '--orig-dst', VIP])).stdout;
        t.diagnostic(`table:\n${map.slice(0, 3000)}\nconntrack:\n${ct.split('\n').filter((l) => l.includes('198.19.2.13')).slice(0, 30).join('\n')}\nportico:\n${portico!.out.slice(-3000)}`);
      }
      assert.equal(r.counts['s3'] ?? 0, 0, JSON.stringify(r));
      assert.equal(r.errors, 0, JSON.stringify(r));
    } finally {
      await startServer(SERVERS[2]);
    }
    await until('s3 up', async () => (await admin('GET', '/api/v1/pools/web/servers/s3'))?.health === 'up', 20_000);
    await until('s3 back in the map', async () => (await inMap(`${NET_S}.13`)) === true, 10_000);
    const back = await client(['tcp', VIP, '80', '100', CLIENT]);
    assert.ok((back.counts['s3'] ?? 0) > 0, JSON.stringify(back));
  });

  it('per-server packet and byte counters both ways, as metrics', async () => {
    let text = '';
    const value = (metric: string, server: string, dir: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes('listener="vip"') && l.includes(`server="${server}"`) && l.includes(`direction="${dir}"`));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    await until('counters read', async () => {
      text = (await inNsAsync(NS.lb, ['curl', '-s', '--max-time', '10', `${ADMIN}/metrics`])).stdout;
      return value('portico_kernel_packets_total', 's1', 'out') > 0;
    }, 15_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${text.split('\n').filter((l) => l.includes('kernel')).join('\n')}`);
    });
    for (const s of ['s1', 's2']) {
      for (const dir of ['in', 'out']) assert.ok(value('portico_kernel_bytes_total', s, dir) > 0, `${s} ${dir}`);
    }
    // Replies carry the servers' names: more bytes out than in for these connections.
    assert.ok(value('portico_kernel_packets_total', 's1', 'in') > 0);
  });

  it('a reload that rewrites the whole table carries the counters: the metrics never go back', async () => {
    const read = async (): Promise<number> => {
      const text = (await inNsAsync(NS.lb, ['curl', '-s', '--max-time', '10', `${ADMIN}/metrics`])).stdout;
      const line = text.split('\n').find((l) => l.startsWith('portico_kernel_packets_total{') && l.includes('listener="vip"') && l.includes('server="s1"') && l.includes('direction="in"'));
      return line === undefined ? -1 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const before = await read();
    assert.ok(before > 0, `s1 has counted packets: ${before}`);
    // Another listener's rules change (its persistence timeout): the whole table is written again.
    writeFileSync(join(dir, 'portico.yaml'), config.replace('persistence: { timeout: 5m }', 'persistence: { timeout: 6m }'));
    const res = await admin('POST', '/api/v1/reload');
    assert.ok(res !== undefined && !/error/i.test(JSON.stringify(res).slice(0, 200)), JSON.stringify(res));
    await until('the table rewritten', async () => /timeout 6m/.test((await inNsAsync(NS.lb, ['nft', 'list', 'map', 'ip', 'portico', 'sticky_sticky'])).stdout), 20_000);
    // Traffic after the rewrite, then a reading that includes it (the counters are read every second).
    const r = await client(['tcp', VIP, '80', '30', CLIENT]);
    assert.equal(r.errors, 0, JSON.stringify(r));
    let after = before;
    await until('a new reading', async () => (after = await read()) !== before, 15_000);
    // Restarted from 0, 30 connections would count far fewer packets than everything before them.
    assert.ok(after > before, `portico_kernel_packets_total went from ${before} to ${after}`);
  });

  it('source-ip persistence holds for 10 addresses x 10 connections', async () => {
    const r = await client(['tcp', VIP, '81', '100', SOURCES.join(',')]);
    assert.equal(r.errors, 0, JSON.stringify(r));
    for (const [src, seen] of Object.entries(r.bySource)) assert.equal(Object.keys(seen).length, 1, `${src} saw ${JSON.stringify(seen)}`);
    assert.equal(Object.keys(r.bySource).length, 10);
    const flows = await admin('GET', '/api/v1/listeners/sticky/flows');
    assert.equal(flows.sticky.length, 10, JSON.stringify(flows.sticky));
    for (const e of flows.sticky) assert.match(e.server, /^198\.19\.2\.1[123]:80$/);
  });

  it('hash (source-ip): each client address on one server through the Maglev buckets, the addresses spread', async () => {
    const r = await client(['tcp', VIP, '82', '100', SOURCES.join(',')]);
    assert.equal(r.errors, 0, JSON.stringify(r));
    for (const [src, seen] of Object.entries(r.bySource)) assert.equal(Object.keys(seen).length, 1, `${src} saw ${JSON.stringify(seen)}`);
    assert.ok(Object.keys(r.counts).length >= 2, `10 addresses over several servers: ${JSON.stringify(r.counts)}`);
    const map = (await inNsAsync(NS.lb, ['nft', 'list', 'map', 'ip', 'portico', 'hashed_slots'])).stdout;
    assert.match(map, /typeof numgen random mod 4093/, 'the default bucket count');
  });

  it('hash (source-ip): the kernel listener and a userspace tcp listener over the same pool send each client address to the same server', async () => {
    const kernel = await client(['tcp', VIP, '82', String(HASH_SOURCES.length), HASH_SOURCES.join(',')]);
    const userspace = await client(['tcp', VIP, '83', String(HASH_SOURCES.length), HASH_SOURCES.join(',')]);
    assert.equal(kernel.errors, 0, JSON.stringify(kernel));
    assert.equal(userspace.errors, 0, `${JSON.stringify(userspace)}\nportico:\n${portico!.out.slice(-3000)}`);
    const one = (m: Record<string, number> | undefined): string => Object.keys(m ?? {}).join('+');
    const differ = HASH_SOURCES.filter((a) => one(kernel.bySource[a]) !== one(userspace.bySource[a]));
    assert.deepEqual(differ.map((a) => `${a}: kernel ${one(kernel.bySource[a])}, userspace ${one(userspace.bySource[a])}`), []);
    for (const a of HASH_SOURCES) assert.match(one(kernel.bySource[a]), /^s[123]$/, a);
    // Every server takes some of the 60 addresses (a table that sent them all to one would agree trivially).
    assert.equal(Object.keys(kernel.counts).length, 3, JSON.stringify(kernel.counts));
  });

  it('spreads UDP datagrams (VIP:53 to the servers\' 5300)', async () => {
    const r = await client(['udp', VIP, '53', '300']);
    assert.equal(r.errors, 0, JSON.stringify(r));
    for (const s of SERVERS) assert.ok(Math.abs(pct(r.counts, s.name, 300) - 100 / 3) <= 5, JSON.stringify(r.counts));
  });

  it('lists flows from conntrack', async () => {
    const long = start('long2', NS.c, [process.execPath, '-e', CLIENT_JS, 'long', VIP, '80']);
    try {
      await waitOut(long, /^s\d\n/);
      const v = await admin('GET', '/api/v1/listeners/vip/flows');
      assert.ok(Array.isArray(v.flows), JSON.stringify(v));
      const est = v.flows.filter((f: { state: string }) => f.state === 'ESTABLISHED');
      assert.ok(est.length >= 1, JSON.stringify(v.flows));
      assert.match(est[0].client, /^198\.19\.1\.10:\d+$/);
      assert.match(est[0].server, /^198\.19\.2\.1[123]:80$/);
      assert.equal(est[0].protocol, 'tcp');
      const ctl = await inNsAsync(NS.lb, [process.execPath, join(ROOT, 'bin', 'portico'), 'ctl', '--admin', ADMIN, 'flows', 'vip']);
      assert.equal(ctl.code, 0, ctl.stderr);
      assert.match(ctl.stdout, /^CLIENT\s+SERVER\s+PROTOCOL\s+STATE\s+AGE\s+TIMEOUT$/m);
      assert.match(ctl.stdout, /198\.19\.1\.10:\d+\s+198\.19\.2\.1[123]:80\s+tcp\s+ESTABLISHED/);
    } finally {
      long.child.stdin!.end();
      await stopProc(long, 'SIGKILL');
    }
  });

  it('maint cuts the server\'s flows', async () => {
    const long = start('long3', NS.c, [process.execPath, '-e', CLIENT_JS, 'long', VIP, '80']);
    try {
      await waitOut(long, /^s\d\n/);
      const victim = long.out.trim().split('\n')[0]!;
      await admin('PATCH', `/api/v1/pools/web/servers/${victim}`, { state: 'maint' });
      // The flow is gone from conntrack: the next packet of the connection finds no translation.
      await until('flow cut', async () => {
        const v = await admin('GET', '/api/v1/listeners/vip/flows');
        return !v.flows.some((f: { server: string; state: string }) => f.server.startsWith(SERVERS.find((s) => s.name === victim)!.ip + ':') && f.state === 'ESTABLISHED');
      }, 10_000);
      await admin('PATCH', `/api/v1/pools/web/servers/${victim}`, { state: 'ready' });
    } finally {
      long.child.stdin!.end();
      await stopProc(long, 'SIGKILL');
    }
  });

  it('deregistration with ?now=true cuts the server\'s flows and forgets its persistence entries', async () => {
    const long = start('long4', NS.c, [process.execPath, '-e', CLIENT_JS, 'long', VIP, '81']);
    try {
      await waitOut(long, /^s\d\n/);
      const victim = long.out.trim().split('\n')[0]!;
      const ip = SERVERS.find((s) => s.name === victim)!.ip;
      const res = await admin('DELETE', `/api/v1/pools/web81/servers/${victim}?now=true`);
      assert.equal(res?.state, 'removed', JSON.stringify(res));
      await until('flows cut', async () => {
        const v = await admin('GET', '/api/v1/listeners/sticky/flows');
        return !v.flows.some((f: { server: string; state: string }) => f.server.startsWith(`${ip}:`) && f.state === 'ESTABLISHED');
      }, 10_000);
      // Its persistence entries went with it: no client is sent to the removed server.
      const v = await admin('GET', '/api/v1/listeners/sticky/flows');
      assert.ok(!v.sticky.some((e: { server: string }) => e.server.startsWith(`${ip}:`)), JSON.stringify(v.sticky));
    } finally {
      long.child.stdin!.end();
      await stopProc(long, 'SIGKILL');
    }
  });

  it('deletes its table on SIGTERM', async () => {
    const code = await stopProc(portico!, 'SIGTERM');
    assert.equal(code, 0, portico!.out.slice(-2000));
    const r = await inNsAsync(NS.lb, ['nft', 'list', 'table', 'ip', 'portico']);
    assert.notEqual(r.code, 0, 'the table is gone');
  });
});

describe('kernel listener: host prerequisites checked before anything is applied', () => {
  const ns = `${TAG}-x`;
  let skip: string | undefined;
  if (which(['/usr/sbin/nft', '/sbin/nft']) === undefined) skip = 'nft is not installed (Debian package nftables)';
  else if (process.getuid?.() !== 0) skip = 'network namespaces and nftables need root';
  else skip = netnsUnavailable();
  if (!runsHere(skip)) return;
  it(`a start without ip_forward and without the virtual address fails, naming both fixes, and writes no rule${skip === undefined ? '' : ` (SKIPPED: ${skip})`}`, { skip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-kernel-pre-'));
    try {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      inNs(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0');
      writeFileSync(
        join(dir, 'portico.yaml'),
        `admin: { enabled: false }\ncluster: { workers: 1 }\nlisteners:\n  - { name: vip, protocol: tcp, dataPlane: kernel, listen: ${VIP}:80, pool: web }\npools:\n  - { name: web, retries: 0, servers: [{ name: s1, address: '${NET_S}.11:80' }] }\n`,
      );
      const r = await inNsAsync(ns, [process.execPath, join(ROOT, 'bin', 'portico'), 'start', '-c', join(dir, 'portico.yaml')], '', 60_000);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /kernel listener vip: net\.ipv4\.ip_forward is off, so NAT cannot forward: sysctl -w net\.ipv4\.ip_forward=1/);
      assert.match(r.stderr, new RegExp(`the virtual address ${VIP.replace(/\./g, '\\.')} is on no interface of this host: ip addr add ${VIP.replace(/\./g, '\\.')}/32 dev`));
      assert.notEqual((await inNsAsync(ns, ['nft', 'list', 'table', 'ip', 'portico'])).code, 0, 'nothing was applied');
    } finally {
      sh('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
