import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildL4Topology, hits, Netns, netnsSkip, serverAddr, startNamedServer, VIP, type L4Topology, type NsProc, runsHere } from '../../test-helpers/netns.js';

/**
 * A kernel NAT listener under `cluster.workers: 2` (SPEC §10: only the primary programs the
 * kernel), with real packets: client → router → bridge → balancer (Portico, two workers) → three
 * servers. Every nft and conntrack command runs in the primary; one worker decides what is
 * written, and another takes over when it dies. The metrics are the kernel's counters once, not
 * once per worker.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PORTICO = join(ROOT, 'bin', 'portico');
const ADMIN = 'http://127.0.0.1:9090';
const WEIGHTS = [2, 1, 1] as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` every 200 ms until true, at most `ms`. */
async function until(what: string, fn: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('kernel listener under cluster.workers: 2 (network namespaces)', { concurrency: false }, () => {
  const skip = netnsSkip(['nft', 'conntrack']);
  if (!runsHere(skip)) return;
  let net: Netns | undefined;
  let t: L4Topology;
  let portico: NsProc;
  let dir = '';

  /** The admin API inside the balancer's namespace: status and body. */
  const request = (method: string, path: string, body?: unknown): { status: number; body: string } => {
    const script = `fetch(process.argv[1], { method: process.argv[2], headers: { 'content-type': 'application/json' }, body: process.argv[3] || undefined }).then(async (r) => { console.log(JSON.stringify({ status: r.status, body: await r.text() })); })`;
    const r = net!.run(t.balancer!, [process.execPath, '-e', script, ADMIN + path, method, body === undefined ? '' : JSON.stringify(body)]);
    return JSON.parse(r.stdout) as { status: number; body: string };
  };
  const admin = (method: string, path: string, body?: unknown): any => {
    const r = request(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.body}`);
    return r.body.startsWith('{') ? JSON.parse(r.body) : r.body;
  };
  const slots = (): string => net!.run(t.balancer!, ['nft', 'list', 'map', 'ip', 'portico', 'vip_slots'], false).stdout;
  const tableExists = (): boolean => net!.run(t.balancer!, ['nft', 'list', 'table', 'ip', 'portico'], false).status === 0;
  /** The kernel's own packet counter of a server's `in` direction. */
  const kernelPackets = (server: string): number => {
    const doc = JSON.parse(net!.run(t.balancer!, ['nft', '-j', 'list', 'counters', 'table', 'ip', 'portico']).stdout) as { nftables: { counter?: { name: string; packets: number } }[] };
    return doc.nftables.find((o) => o.counter?.name === `vip_in_${server}`)?.counter?.packets ?? -1;
  };
  const metric = (text: string, server: string): number => {
    const line = text.split('\n').find((l) => l.startsWith('portico_kernel_packets_total{') && l.includes('listener="vip"') && l.includes(`server="${server}"`) && l.includes('direction="in"'));
    return line === undefined ? -1 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  /** The pid of `portico: worker N` in the balancer's namespace. */
  const workerPid = (id: string): number => {
    const pids = spawnSync('ip', ['netns', 'pids', t.balancer!], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(`portico: worker ${id}`)) return Number(pid);
      } catch {
        // gone meanwhile
      }
    }
    throw new Error(`no process 'portico: worker ${id}' among ${pids}`);
  };

  before(async () => {
    if (skip !== undefined) return;
    net = new Netns('kwk');
    t = buildL4Topology(net, { servers: 3 });
    dir = mkdtempSync(join(tmpdir(), 'portico-kernel-workers-'));
    net.run(t.balancer!, ['ip', 'addr', 'add', `${VIP}/32`, 'dev', 'eth0']);
    net.run(t.balancer!, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const servers = t.servers.map((ns, i) => startNamedServer(net!, ns, `s${i + 1}`));
    await until('the servers to listen', () => servers.every((s) => s.out.includes('listening')), 30_000);
    const config = join(dir, 'portico.json');
    writeFileSync(
      config,
      JSON.stringify({
        admin: { listen: '127.0.0.1:9090' },
        cluster: { workers: 2 },
        stateDir: dir,
        // The servers answer through the router: the balancer translates the source too.
        listeners: [{ name: 'vip', protocol: 'tcp', listen: `${VIP}:80`, dataPlane: 'kernel', pool: 'web', kernel: { snat: 'masquerade' } }],
        pools: [
          {
            name: 'web',
            balance: 'roundrobin',
            retries: 0,
            health: { type: 'tcp', interval: '500ms', timeout: '400ms', rise: 1, fall: 2 },
            servers: WEIGHTS.map((weight, i) => ({ name: `s${i + 1}`, address: `${serverAddr(i + 1)}:80`, weight })),
          },
        ],
      }),
    );
    portico = net.spawn('portico', t.balancer!, [process.execPath, PORTICO, 'start', '-c', config], { cwd: dir });
    await until('both workers to run the listener', () => (portico.out.match(/listener vip on/g) ?? []).length >= 2 || portico.child.exitCode !== null, 90_000);
    assert.equal(portico.child.exitCode, null, portico.out);
    await until('every server in the slots map', () => [1, 2, 3].every((i) => slots().includes(`${serverAddr(i)} . 80`)), 60_000);
  });

  after(async () => {
    await net?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('one worker writes, through the primary; 400 connections spread 2:1:1', { skip }, () => {
    assert.equal((portico.out.match(/kernel: worker \d+ writes the kernel's rules/g) ?? []).length, 1, portico.out);
    const status = admin('GET', '/api/v1/status') as { workers?: unknown };
    assert.ok(JSON.stringify(status).includes('workers'), JSON.stringify(status).slice(0, 500));
    const h = hits(net!, t.client, VIP, 80, 400, 8);
    assert.deepEqual(h.errors, []);
    const share = (s: string): number => (h.answers[s] ?? 0) / 400;
    assert.ok(Math.abs(share('s1') - 0.5) <= 0.06, JSON.stringify(h.answers));
    assert.ok(Math.abs(share('s2') - 0.25) <= 0.06, JSON.stringify(h.answers));
    assert.ok(Math.abs(share('s3') - 0.25) <= 0.06, JSON.stringify(h.answers));
  });

  it('/metrics gives the kernel\'s counters once, not once per worker', { skip }, async () => {
    // No traffic now: every worker's reading reaches the kernel's value; a sum over two workers never equals it.
    let text = '';
    await until(
      'portico_kernel_packets_total to equal the kernel counter',
      () => {
        text = admin('GET', '/metrics') as string;
        const k = kernelPackets('s1');
        return k > 0 && metric(text, 's1') === k;
      },
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: metric ${metric(text, 's1')}, kernel ${kernelPackets('s1')}`);
    });
    const kernel = admin('GET', '/api/v1/listeners/vip/kernel') as { servers: { server: string; packetsIn: number }[] };
    assert.ok(kernel.servers.find((s) => s.server === 's1')!.packetsIn > 0, JSON.stringify(kernel));
  });

  it('a drain through the admin API reaches the kernel whichever worker answered', { skip }, async () => {
    admin('PATCH', '/api/v1/pools/web/servers/s1', { state: 'drain' });
    await until('s1 out of the slots map', () => !slots().includes(`${serverAddr(1)} . 80`), 30_000);
    const h = hits(net!, t.client, VIP, 80, 100, 8);
    assert.deepEqual(h.errors, []);
    assert.equal(h.answers['s1'], undefined, JSON.stringify(h.answers));
    admin('PATCH', '/api/v1/pools/web/servers/s1', { state: 'ready' });
    await until('s1 back in the slots map', () => slots().includes(`${serverAddr(1)} . 80`), 30_000);
  });

  it('the writing worker killed: another takes over and writes the next change', { skip }, async () => {
    const writer = /kernel: worker (\d+) writes the kernel's rules/.exec(portico.out)![1]!;
    process.kill(workerPid(writer), 'SIGKILL');
    await until('another worker to take over', () => new RegExp(`kernel: worker ${writer} stopped writing the kernel's rules; worker \\d+ takes over`).test(portico.out), 30_000);
    assert.ok(tableExists(), 'the rules stay while the writer changes');
    admin('PATCH', '/api/v1/pools/web/servers/s2', { state: 'drain' });
    await until('s2 out of the slots map', () => !slots().includes(`${serverAddr(2)} . 80`), 30_000);
    admin('PATCH', '/api/v1/pools/web/servers/s2', { state: 'ready' });
    await until('s2 back in the slots map', () => slots().includes(`${serverAddr(2)} . 80`), 30_000);
    // The replacement worker runs the listener too (it does not write).
    await until('a replacement worker', () => (portico.out.match(/listener vip on/g) ?? []).length >= 3, 60_000);
    const h = hits(net!, t.client, VIP, 80, 100, 8);
    assert.deepEqual(h.errors, []);
  });

  it('SIGTERM to the primary removes the table', { skip }, async () => {
    portico.child.kill('SIGTERM');
    await portico.exited;
    assert.equal(portico.child.exitCode, 0, portico.out.slice(-3000));
    assert.equal(tableExists(), false, 'ip table gone');
  });
});
