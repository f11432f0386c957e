import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../test-helpers/origins.js';
import { buildL4Topology, hits, LONG_CLIENT, Netns, netnsSkip, serverAddr, startNamedServer, VIP, type L4Topology, type NsProc, runsHere } from '../../test-helpers/netns.js';

/**
 * Direct server return for real (SPEC §10): client → router → bridge → balancer (Portico with a
 * `forwarding: dsr` kernel listener) → three servers prepared by `portico dsr-setup --apply`, which
 * answer the client through the router. Counted on the balancer's own nftables counters.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PORTICO = join(ROOT, 'bin', 'portico');
const ADMIN = 'http://127.0.0.1:9090';

interface LongLine {
  readonly n?: number;
  readonly answer?: string;
  readonly error?: string;
  readonly end?: boolean;
  readonly sockets?: number;
}
const lines = (p: NsProc): LongLine[] =>
  p.out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LongLine);

describe('kernel listener, forwarding: dsr (network namespaces)', () => {
  const skip = netnsSkip(['nft']);
  if (!runsHere(skip)) return;
  let net: Netns | undefined;
  let t: L4Topology;
  let portico: NsProc;
  let dir = '';

  /** The admin API inside the balancer's namespace. */
  const admin = (method: string, path: string, body?: unknown): unknown => {
    const script = `fetch(process.argv[1], { method: process.argv[2], headers: { 'content-type': 'application/json' }, body: process.argv[3] || undefined }).then(async (r) => { const t = await r.text(); console.log(JSON.stringify({ status: r.status, body: t })); })`;
    const r = net!.run(t.balancer!, [process.execPath, '-e', script, ADMIN + path, method, body === undefined ? '' : JSON.stringify(body)]);
    const { status, body: text } = JSON.parse(r.stdout) as { status: number; body: string };
    assert.ok(status < 300, `${method} ${path}: ${status} ${text}`);
    return text.startsWith('{') ? JSON.parse(text) : text;
  };
  /** The balancer's netdev counters, by name. */
  const counters = (): Record<string, number> => {
    const doc = JSON.parse(net!.run(t.balancer!, ['nft', '-j', 'list', 'counters', 'table', 'netdev', 'portico']).stdout) as { nftables: { counter?: { name: string; packets: number } }[] };
    return Object.fromEntries(doc.nftables.filter((o) => o.counter !== undefined).map((o) => [o.counter!.name, o.counter!.packets]));
  };

  before(async () => {
    if (skip !== undefined) return;
    net = new Netns('kds');
    t = buildL4Topology(net, { servers: 3 });
    dir = mkdtempSync(join(tmpdir(), 'portico-dsr-'));
    net.run(t.balancer!, ['ip', 'addr', 'add', `${VIP}/32`, 'dev', 'eth0']);
    const servers: NsProc[] = [];
    for (const [i, ns] of t.servers.entries()) {
      const r = net.run(ns, [process.execPath, PORTICO, 'dsr-setup', '--vip', VIP, '--apply']);
      assert.match(r.stdout, /applied/);
      servers.push(startNamedServer(net, ns, `s${i + 1}`));
    }
    await waitFor(() => servers.every((s) => s.out.includes('listening')), 30_000, 'the servers to listen');
    const config = join(dir, 'portico.json');
    writeFileSync(
      config,
      JSON.stringify({
        admin: { listen: '127.0.0.1:9090' },
        cluster: { workers: 1 },
        stateDir: dir,
        listeners: [{ name: 'web', protocol: 'tcp', listen: `${VIP}:80`, dataPlane: 'kernel', forwarding: 'dsr', pool: 'web', kernel: { interface: 'eth0' } }],
        pools: [
          {
            name: 'web',
            balance: 'random',
            retries: 0,
            health: { type: 'tcp', interval: '500ms', timeout: '400ms', rise: 1, fall: 2 },
            servers: [5, 3, 2].map((weight, i) => ({ name: `s${i + 1}`, address: `${serverAddr(i + 1)}:80`, weight })),
          },
        ],
      }),
    );
    portico = net.spawn('portico', t.balancer!, [process.execPath, PORTICO, 'start', '-c', config], { cwd: dir });
    await waitFor(() => /listener web on/.test(portico.out) || portico.child.exitCode !== null, 60_000, 'portico to start');
    assert.equal(portico.child.exitCode, null, portico.out);
  });

  after(async () => {
    await net?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('learns the servers MACs and spreads 600 connections 5:3:2; replies bypass the balancer', { skip }, () => {
    const view = admin('GET', '/api/v1/listeners/web/kernel') as { link: { servers: Record<string, string> } };
    for (let i = 1; i <= 3; i++) assert.equal(view.link.servers[serverAddr(i)], net!.mac(t.servers[i - 1]!, 'eth0'), `s${i}'s MAC`);
    const before = counters();
    const h = hits(net!, t.client, VIP, 80, 600, 8);
    assert.deepEqual(h.errors, []);
    const share = (s: string): number => (h.answers[s] ?? 0) / 600;
    assert.ok(Math.abs(share('s1') - 0.5) < 0.07, JSON.stringify(h.answers));
    assert.ok(Math.abs(share('s2') - 0.3) < 0.07, JSON.stringify(h.answers));
    assert.ok(Math.abs(share('s3') - 0.2) < 0.07, JSON.stringify(h.answers));
    const c = counters();
    const sum = (dir: 'in' | 'out'): number => [1, 2, 3].reduce((a, i) => a + (c[`web_${dir}_s${i}`]! - (before[`web_${dir}_s${i}`] ?? 0)), 0);
    // Each connection is at least SYN, ACK, request, ACK of the answer, FIN, ACK toward the server.
    assert.ok(sum('in') >= 600 * 4, `in: ${sum('in')} packets`);
    assert.equal(sum('out'), 0, 'no reply crossed the balancer');
  });

  it('drain: a long-lived connection keeps its server, new connections avoid it; maint cuts it', { skip }, async () => {
    const long = net!.spawn('long', t.client, [process.execPath, '-e', LONG_CLIENT, VIP, '80']);
    try {
      await waitFor(() => lines(long).some((l) => l.answer !== undefined), 30_000, 'the first answer');
      const server = lines(long).find((l) => l.answer !== undefined)!.answer!;
      admin('PATCH', `/api/v1/pools/web/servers/${server}`, { state: 'drain' });
      // The drain is in the kernel once the slot map no longer names the server's MAC.
      const mac = net!.mac(t.servers[Number(server.slice(1)) - 1]!, 'eth0');
      await waitFor(() => !net!.run(t.balancer!, ['nft', '-j', 'list', 'map', 'netdev', 'portico', 'web_slots']).stdout.includes(mac), 30_000, 'the slots without the drained server');
      const atDrain = lines(long).length;
      const h = hits(net!, t.client, VIP, 80, 150, 8);
      assert.deepEqual(h.errors, []);
      assert.equal(h.answers[server], undefined, `no new connection to the drained ${server}: ${JSON.stringify(h.answers)}`);
      await waitFor(() => lines(long).length >= atDrain + 10, 60_000, 'ten more answers on the long-lived connection');
      assert.deepEqual(
        lines(long).filter((l) => l.error !== undefined || (l.answer !== undefined && l.answer !== server)),
        [],
        'every answer on the long-lived connection came from its server',
      );
      // maint: its flows are cut (the next packet is placed on another server, which resets it)
      admin('PATCH', `/api/v1/pools/web/servers/${server}`, { state: 'maint' });
      const cut = (l: LongLine): boolean => l.error !== undefined || (l.answer !== undefined && l.answer !== server);
      await waitFor(() => lines(long).some(cut), 30_000, 'the connection cut');
      // The client goes on, on a new connection: wait for an answer after the cut before stopping
      // it (stopped at once, it could end before its next request, 100 ms after the error).
      const cutAt = lines(long).findIndex(cut);
      await waitFor(() => lines(long).slice(cutAt + 1).some((l) => l.answer !== undefined), 30_000, 'an answer after the cut');
      long.child.stdin!.end();
      await waitFor(() => lines(long).some((l) => l.end === true), 30_000, 'the long-lived client to end');
      assert.ok(lines(long).find((l) => l.end === true)!.sockets! >= 2, 'the client had to reconnect after maint');
      admin('PATCH', `/api/v1/pools/web/servers/${server}`, { state: 'ready' });
    } finally {
      long.child.kill('SIGKILL');
    }
  });

  it('SIGTERM removes the tables', { skip }, async () => {
    portico.child.kill('SIGTERM');
    await portico.exited;
    assert.equal(net!.run(t.balancer!, ['nft', 'list', 'table', 'netdev', 'portico'], false).status, 1, 'netdev table gone');
    assert.equal(net!.run(t.balancer!, ['nft', 'list', 'table', 'ip', 'portico'], false).status, 1, 'ip table gone');
  });
});
