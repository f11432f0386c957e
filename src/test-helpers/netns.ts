/**
 * Network namespaces for tests of the kernel data plane (real packets): a run's namespaces carry a
 * tag unique to the run, every process started in them is recorded, and `destroy()` (call it in
 * `finally`/`after`) ends those processes by PID and deletes exactly those namespaces.
 *
 * `buildL4Topology` makes the shape SPEC §10 describes, all addresses in 198.18.0.0/15 (the
 * benchmarking range) and existing only inside the namespaces:
 *
 *   client 198.18.1.10 ── router 198.18.1.1 / 198.18.0.1 ── bridge (switch ns, mcast_snooping 0)
 *                                                              ├─ balancer 198.18.0.2 (eth0)
 *                                                              ├─ servers s1..sN 198.18.0.11.. (eth0)
 *                                                              └─ nodes n1..nM 198.18.0.21.. (eth0)
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { it } from 'node:test';
import { existsSync } from 'node:fs';

export const CLIENT_ADDR = '198.18.1.10';
export const ROUTER_LAN = '198.18.0.1';
export const BALANCER_ADDR = '198.18.0.2';
export const VIP = '198.18.0.100';
export const NLB_VIP = '198.18.0.200';
export const CLUSTER_MAC = '01:00:5e:7f:00:c8';
export const serverAddr = (i: number): string => `198.18.0.${10 + i}`;
export const nodeAddr = (i: number): string => `198.18.0.${20 + i}`;

/**
 * Whether a suite that needs namespaces (or another host facility) runs here, given why it
 * cannot (`skip`, undefined when it can). When it cannot, one test says why: failed under CI=true
 * (a missing binary or permission must not pass unseen), skipped elsewhere. Call it at the top of
 * the suite's `describe` and return when it is false.
 */
export function runsHere(skip: string | undefined): boolean {
  if (skip === undefined) return true;
  if (process.env['CI'] === 'true') it('can run here (CI)', () => assert.fail(skip));
  else it(`SKIPPED: ${skip}`, { skip }, () => {});
  return false;
}

/** Why namespace tests cannot run here (undefined: they can). Under CI=true the caller fails instead of skipping. */
export function netnsSkip(needs: readonly string[] = []): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const bin of ['ip', ...needs]) {
    const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
    if (r.status !== 0) return `${bin} is not installed`;
  }
  const probe = `nsprobe${process.pid % 100_000}`;
  let why = '';
  for (let i = 0; i < 3; i++) {
    const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) {
      spawnSync('ip', ['netns', 'del', probe], { timeout: 10_000 });
      return undefined;
    }
    why = r.stderr.trim();
    spawnSync('sleep', ['0.2']);
  }
  return `network namespaces cannot be created here: ${why}`;
}

export interface NsProc {
  readonly name: string;
  readonly child: ChildProcess;
  out: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let counter = 0;

export class Netns {
  /** Prefix of every namespace of this run: short (interface names are limited to 15 bytes) and unique. */
  readonly tag: string;
  private readonly made: string[] = [];
  private readonly procs: NsProc[] = [];

  constructor(prefix = 'kt') {
    this.tag = `${prefix}${process.pid % 100_000}${(counter++).toString(36)}${Math.floor(Math.random() * 36 * 36).toString(36)}`;
  }

  /** Make the namespace `name` of this run (lo up) and return its full name. */
  add(name: string): string {
    const ns = `${this.tag}-${name}`;
    mustRun('ip', ['netns', 'add', ns]);
    this.made.push(ns);
    mustRun('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Run a command inside `ns` to its end; throws with its output when it fails, unless `check` is false. */
  run(ns: string, argv: readonly string[], check = true, input?: string): RunResult {
    const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: 300_000, input, maxBuffer: 64 << 20 });
    const res = { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error !== undefined ? String(r.error) : '') };
    if (check && res.status !== 0) throw new Error(`in ${ns}: ${argv.join(' ')} exited ${res.status}: ${res.stderr}${res.stdout}`);
    return res;
  }

  /** Start a process inside `ns`; it is ended by destroy(). */
  spawn(name: string, ns: string, argv: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): NsProc {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let done!: () => void;
    const exited = new Promise<void>((r) => (done = r));
    child.once('close', () => done());
    const p: NsProc = { name, child, out: '', exited };
    child.stdout!.on('data', (c) => (p.out += c));
    child.stderr!.on('data', (c) => (p.out += c));
    this.procs.push(p);
    return p;
  }

  /** Connect `ns` to the bridge `br` of `switchNs` with a veth whose end in `ns` is called `ifname`. */
  plug(switchNs: string, br: string, ns: string, ifname: string): void {
    const host = `p${this.made.indexOf(ns)}x${ifname}`.slice(0, 15);
    mustRun('ip', ['-n', switchNs, 'link', 'add', host, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    mustRun('ip', ['-n', switchNs, 'link', 'set', host, 'master', br, 'up']);
    mustRun('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
  }

  /** MAC address of `ifname` in `ns`. */
  mac(ns: string, ifname: string): string {
    return this.run(ns, ['cat', `/sys/class/net/${ifname}/address`]).stdout.trim();
  }

  /** End the processes (TERM, then KILL after 5 s), anything else left in these namespaces, then delete them. */
  async destroy(): Promise<void> {
    const alive = (p: NsProc): boolean => p.child.exitCode === null && p.child.signalCode === null;
    for (const p of [...this.procs].reverse()) if (alive(p)) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(this.procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000))]);
    for (const p of this.procs) if (alive(p)) p.child.kill('SIGKILL');
    await Promise.race([Promise.all(this.procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000))]);
    // What the processes above started (nginx workers, a child of `ip netns exec`) is still in the
    // namespaces: end it by PID, namespace by namespace.
    for (const ns of this.made) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter((s) => /^\d+$/.test(s))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const ns of [...this.made].reverse()) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
    this.made.length = 0;
  }
}

function mustRun(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}${r.error ?? ''}`);
}

export interface L4Topology {
  readonly net: Netns;
  readonly client: string;
  readonly router: string;
  readonly sw: string;
  /** The balancer (undefined in the distributed shape). */
  readonly balancer: string | undefined;
  /** The real servers' namespaces, s1..sN, each with eth0 on the bridge. */
  readonly servers: readonly string[];
  /** The distributed mode's nodes n1..nM, each with eth0 on the bridge. */
  readonly nodes: readonly string[];
}

/** Build the topology above in `net` (the caller destroys it). */
export function buildL4Topology(net: Netns, o: { servers: number; nodes?: number; balancer?: boolean }): L4Topology {
  const sw = net.add('sw');
  mustRun('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
  mustRun('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
  const client = net.add('c');
  const router = net.add('rt');
  mustRun('ip', ['-n', client, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', router]);
  mustRun('ip', ['-n', client, 'addr', 'add', `${CLIENT_ADDR}/24`, 'dev', 'eth0']);
  mustRun('ip', ['-n', client, 'link', 'set', 'eth0', 'up']);
  mustRun('ip', ['-n', client, 'route', 'add', 'default', 'via', '198.18.1.1']);
  mustRun('ip', ['-n', router, 'addr', 'add', '198.18.1.1/24', 'dev', 'eth1']);
  mustRun('ip', ['-n', router, 'link', 'set', 'eth1', 'up']);
  net.plug(sw, 'br0', router, 'eth0');
  mustRun('ip', ['-n', router, 'addr', 'add', `${ROUTER_LAN}/24`, 'dev', 'eth0']);
  net.run(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  let balancer: string | undefined;
  if (o.balancer !== false) {
    balancer = net.add('lb');
    net.plug(sw, 'br0', balancer, 'eth0');
    mustRun('ip', ['-n', balancer, 'addr', 'add', `${BALANCER_ADDR}/24`, 'dev', 'eth0']);
    mustRun('ip', ['-n', balancer, 'route', 'add', 'default', 'via', ROUTER_LAN]);
  }
  const servers: string[] = [];
  for (let i = 1; i <= o.servers; i++) {
    const ns = net.add(`s${i}`);
    net.plug(sw, 'br0', ns, 'eth0');
    mustRun('ip', ['-n', ns, 'addr', 'add', `${serverAddr(i)}/24`, 'dev', 'eth0']);
    mustRun('ip', ['-n', ns, 'route', 'add', 'default', 'via', ROUTER_LAN]);
    servers.push(ns);
  }
  const nodes: string[] = [];
  for (let i = 1; i <= (o.nodes ?? 0); i++) {
    const ns = net.add(`n${i}`);
    net.plug(sw, 'br0', ns, 'eth0');
    mustRun('ip', ['-n', ns, 'addr', 'add', `${nodeAddr(i)}/24`, 'dev', 'eth0']);
    mustRun('ip', ['-n', ns, 'route', 'add', 'default', 'via', ROUTER_LAN]);
    nodes.push(ns);
  }
  return { net, client, router, sw, balancer, servers, nodes };
}

/**
 * The real server's side of direct server return, as `portico dsr-setup --apply` does it, for
 * tests that do not exercise that command: the address on lo, no ARP for it.
 */
export function holdVipOnLo(net: Netns, ns: string, vip: string): void {
  net.run(ns, ['sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2', 'net.ipv4.conf.eth0.arp_ignore=1', 'net.ipv4.conf.eth0.arp_announce=2']);
  net.run(ns, ['ip', 'addr', 'replace', `${vip}/32`, 'dev', 'lo']);
}

/** An HTTP server on 0.0.0.0:`port` answering its `name` (keep-alive), inside `ns`. */
export function startNamedServer(net: Netns, ns: string, name: string, port = 80): NsProc {
  const script = `require('http').createServer((q, s) => s.end(process.argv[1])).listen(Number(process.argv[2]), '0.0.0.0', () => console.log('listening'))`;
  return net.spawn(`server-${name}`, ns, [process.execPath, '-e', script, name, String(port)]);
}

/**
 * A client script for `node -e` (argv: host port count concurrency): `count` requests each on a
 * fresh connection, `concurrency` at a time, 5 s each; prints {"answers":{name:n},"errors":[...]}.
 */
export const HITS_CLIENT = `
const http = require('http');
const [host, port, count, conc] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4] || 8)];
const answers = {}; const errors = []; let started = 0; let done = 0;
function one() {
  if (started >= count) return;
  started++;
  let fin = false;
  const end = (what, ok) => { if (fin) return; fin = true; if (ok) answers[what] = (answers[what] || 0) + 1; else errors.push(what); if (++done === count) { console.log(JSON.stringify({ answers, errors })); } else one(); };
  const req = http.get({ host, port, path: '/', agent: false, timeout: 5000 }, (res) => {
    let b = ''; res.setEncoding('utf8'); res.on('data', (c) => (b += c)); res.on('end', () => end(b, true)); res.on('error', (e) => end(e.code || String(e), false));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => end(e.code || String(e), false));
}
for (let i = 0; i < conc; i++) one();
`;

/**
 * A client script for `node -e` (argv: host port): one keep-alive connection, a request every
 * 100 ms, one line per answer ({"n":i,"answer":name} or {"n":i,"error":code}); it ends when its
 * standard input ends, printing {"end":true,"sockets":k} (k: connections used, 1 when kept).
 */
export const LONG_CLIENT = `
const http = require('http');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const sockets = new Set(); let n = 0; let stop = false;
function next() {
  if (stop) { console.log(JSON.stringify({ end: true, sockets: sockets.size })); agent.destroy(); return; }
  const i = n++;
  const req = http.get({ host, port, path: '/', agent, timeout: 5000 }, (res) => {
    sockets.add(res.socket);
    let b = ''; res.setEncoding('utf8'); res.on('data', (c) => (b += c));
    res.on('end', () => { console.log(JSON.stringify({ n: i, answer: b })); setTimeout(next, 100); });
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => { console.log(JSON.stringify({ n: i, error: e.code || String(e) })); setTimeout(next, 100); });
}
process.stdin.on('end', () => (stop = true)); process.stdin.resume();
next();
`;

export interface Hits {
  readonly answers: Record<string, number>;
  readonly errors: string[];
}

/** Run HITS_CLIENT in `ns` to its end. */
export function hits(net: Netns, ns: string, host: string, port: number, count: number, concurrency = 8): Hits {
  const r = net.run(ns, [process.execPath, '-e', HITS_CLIENT, host, String(port), String(count), String(concurrency)]);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Hits;
}

export function which(names: readonly string[]): string | undefined {
  return names.find((p) => existsSync(p));
}
