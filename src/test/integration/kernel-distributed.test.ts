import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../test-helpers/origins.js';
import {
  buildL4Topology,
  CLUSTER_MAC,
  hits,
  holdVipOnLo,
  LONG_CLIENT,
  Netns,
  netnsSkip,
  NLB_VIP,
  nodeAddr,
  ROUTER_LAN,
  startNamedServer,
  which,
  type L4Topology,
  type NsProc,
} from '../../test-helpers/netns.js';

/**
 * The distributed (Microsoft NLB style) mode for real (SPEC §10): three nodes on one bridge share
 * the virtual address and a multicast cluster MAC (the router has a static neighbour entry for
 * it), each runs Portico with the same `forwarding: distributed` listener in front of its own
 * server, and they agree on who is alive through one redis-server (in the router's namespace).
 * Every frame reaches every node; each keeps the flows of its buckets.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PORTICO = join(ROOT, 'bin', 'portico');
const NODES = ['n1', 'n2', 'n3'];
const BUCKETS = 1024;
const REDIS_PORT = 6391;

interface LongLine {
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

describe('kernel listener, forwarding: distributed (three nodes, network namespaces, Redis)', () => {
  const redis = which(['/usr/bin/redis-server', '/usr/sbin/redis-server', '/usr/local/bin/redis-server']);
  // forwarding: distributed is refused at load in this version (src/config/availability.ts):
  // this three-node test has not held end to end (take-over and leave). It is kept for the mode's
  // development: run it with PORTICO_TEST_DISTRIBUTED=1 once that refusal is lifted.
  const optIn = process.env['PORTICO_TEST_DISTRIBUTED'] === '1' ? undefined : 'forwarding: distributed is refused at load in this version; PORTICO_TEST_DISTRIBUTED=1 runs this test for its development';
  const skip = optIn ?? netnsSkip(['nft']) ?? (redis === undefined ? 'redis-server is not installed' : undefined);
  if (skip !== undefined && optIn === undefined && process.env['CI'] === 'true') {
    it('can run here (CI)', () => assert.fail(skip));
    return;
  }
  let net: Netns | undefined;
  let t: L4Topology;
  const porticos: NsProc[] = [];
  let dir = '';

  /** A node's buckets as its kernel holds them now. */
  const mine = (i: number): number[] => {
    const doc = JSON.parse(net!.run(t.nodes[i]!, ['nft', '-j', 'list', 'set', 'netdev', 'portico', 'vip_mine']).stdout) as {
      nftables: { set?: { elem?: (number | { elem: { val: number } })[] } }[];
    };
    const set = doc.nftables.find((o) => o.set !== undefined)!.set!;
    return (set.elem ?? []).map((e) => (typeof e === 'number' ? e : e.elem.val));
  };
  const counters = (i: number): Record<string, number> => {
    const doc = JSON.parse(net!.run(t.nodes[i]!, ['nft', '-j', 'list', 'counters', 'table', 'netdev', 'portico']).stdout) as { nftables: { counter?: { name: string; packets: number } }[] };
    return Object.fromEntries(doc.nftables.filter((o) => o.counter !== undefined).map((o) => [o.counter!.name, o.counter!.packets]));
  };
  const liveLine = (live: string[]): RegExp => new RegExp(`kernel listener vip: live nodes ${live.join(', ')};`);

  before(async () => {
    if (skip !== undefined) return;
    net = new Netns('knl');
    t = buildL4Topology(net, { servers: 0, nodes: 3, balancer: false });
    dir = mkdtempSync(join(tmpdir(), 'portico-nlb-'));
    // The router sends frames for the virtual address to the cluster MAC (as MS NLB's multicast mode requires).
    net.run(t.router, ['ip', 'neigh', 'replace', NLB_VIP, 'lladdr', CLUSTER_MAC, 'dev', 'eth0', 'nud', 'permanent']);
    const rd = net.spawn('redis', t.router, ['nice', '-n', '-10', redis!, '--bind', ROUTER_LAN, '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { cwd: dir });
    await waitFor(() => /Ready to accept connections/.test(rd.out) || rd.child.exitCode !== null, 30_000, 'redis-server to start');
    assert.equal(rd.child.exitCode, null, rd.out);
    const servers = t.nodes.map((ns, i) => {
      holdVipOnLo(net!, ns, NLB_VIP);
      return startNamedServer(net!, ns, NODES[i]!);
    });
    await waitFor(() => servers.every((s) => s.out.includes('listening')), 30_000, 'the servers to listen');
    for (const [i, ns] of t.nodes.entries()) {
      const config = join(dir, `portico-${NODES[i]}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          admin: { listen: '127.0.0.1:9090' },
          cluster: { workers: 1, node: NODES[i], store: `redis://${ROUTER_LAN}:${REDIS_PORT}` },
          stateDir: dir,
          listeners: [
            {
              name: 'vip',
              protocol: 'tcp',
              listen: `${NLB_VIP}:80`,
              dataPlane: 'kernel',
              forwarding: 'distributed',
              pool: 'local',
              kernel: { interface: 'eth0', distributed: { nodes: NODES, buckets: BUCKETS, clusterMac: CLUSTER_MAC } },
            },
          ],
          pools: [{ name: 'local', retries: 0, health: { type: 'tcp', interval: '1s', timeout: '2s', rise: 1, fall: 3 }, servers: [{ name: 'self', address: `${nodeAddr(i + 1)}:80` }] }],
        }),
      );
      // Ahead of the machine's other work (nice -10): the nodes' heartbeats are timed (a 250 ms beat,
      // gone after 1.25 s) and a machine loaded many times over its cores would otherwise starve them.
      porticos.push(net.spawn(`portico-${NODES[i]}`, ns, ['nice', '-n', '-10', process.execPath, PORTICO, 'start', '-c', config], { cwd: dir }));
    }
    await waitFor(() => porticos.every((p) => liveLine(NODES).test(p.out) || p.child.exitCode !== null), 60_000, 'every node to see the three');
    for (const p of porticos) assert.equal(p.child.exitCode, null, p.out);
  });

  after(async () => {
    // The nodes' logs, to read what happened when something failed.
    if (process.env['PORTICO_TEST_LOGS'] === '1') for (const p of porticos) process.stderr.write(`--- ${p.name}\n${p.out}\n`);
    await net?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('every bucket has exactly one node; each connection is answered by exactly one node', { skip }, () => {
    const sets = [0, 1, 2].map(mine);
    const all = sets.flat().sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: BUCKETS }, (_, i) => i), 'the buckets are shared out, none twice');
    const before = [0, 1, 2].map(counters);
    const h = hits(net!, t.client, NLB_VIP, 80, 300, 8);
    assert.deepEqual(h.errors, []);
    for (const n of NODES) assert.ok((h.answers[n] ?? 0) > 40, `${n} answered its share: ${JSON.stringify(h.answers)}`);
    const after = [0, 1, 2].map(counters);
    const delta = (k: string): number => [0, 1, 2].reduce((a, i) => a + after[i]![k]! - before[i]![k]!, 0);
    // Every node saw every packet: what one node kept, the two others dropped.
    assert.ok(delta('vip_kept') >= 300 * 4, `kept ${delta('vip_kept')}`);
    assert.equal(delta('vip_dropped'), 2 * delta('vip_kept'), 'each packet kept by exactly one node');
  });

  it('a node killed: its buckets taken within 2 s, its kernel stops taking flows by itself, flows on survivors untouched', { skip }, async () => {
    const long = net!.spawn('long', t.client, [process.execPath, '-e', LONG_CLIENT, NLB_VIP, '80']);
    try {
      await waitFor(() => lines(long).some((l) => l.answer !== undefined), 30_000, 'the first answer');
      const holder = lines(long).find((l) => l.answer !== undefined)!.answer!;
      const victim = NODES.findIndex((n) => n !== holder);
      const survivors = NODES.filter((_, i) => i !== victim);
      const t0 = Date.now();
      porticos[victim]!.child.kill('SIGKILL');
      // The survivors log the new set once their kernel holds it.
      await waitFor(() => survivors.every((n) => liveLine(survivors).test(porticos[NODES.indexOf(n)]!.out)), 10_000, 'the survivors to take over');
      // When each survivor noticed (its log says, with how long nft then took to apply it).
      const noticed = survivors.map((n) => {
        const line = porticos[NODES.indexOf(n)]!.out.split('\n').filter((l) => liveLine(survivors).test(l)).pop()!;
        const m = / noticed=(\S+) nftMs=(\d+)/.exec(line);
        assert.ok(m !== null, line);
        return { ms: Date.parse(m[1]!) - t0, nft: Number(m[2]) };
      });
      for (const x of noticed) assert.ok(x.ms <= 2000, `noticed ${x.ms} ms after the kill (nft then took ${x.nft} ms): ${JSON.stringify(noticed)}`);
      const union = survivors.map((n) => mine(NODES.indexOf(n)));
      assert.equal(new Set(union.flat()).size, BUCKETS, 'the survivors hold every bucket');
      assert.equal(union[0]!.length + union[1]!.length, BUCKETS, 'and none twice');
      // The killed node's rules stay, but its ownership expired with no Portico to renew it.
      await waitFor(() => mine(victim).length === 0, 10_000, "the killed node's buckets to expire in its kernel");
      const h = hits(net!, t.client, NLB_VIP, 80, 200, 8);
      assert.deepEqual(h.errors, []);
      assert.equal(h.answers[NODES[victim]!], undefined, `no connection answered by the killed node: ${JSON.stringify(h.answers)}`);
      const n = lines(long).length;
      await waitFor(() => lines(long).length >= n + 5, 30_000, 'more answers on the long-lived connection');
      long.child.stdin!.end();
      await waitFor(() => lines(long).some((l) => l.end === true), 30_000, 'the long-lived client to end');
      assert.deepEqual(
        lines(long).filter((l) => l.error !== undefined || (l.answer !== undefined && l.answer !== holder)),
        [],
        `the long-lived connection on ${holder} kept all its answers`,
      );
      assert.equal(lines(long).find((l) => l.end === true)!.sockets, 1);
    } finally {
      long.child.kill('SIGKILL');
    }
  });

  it('SIGTERM: the node leaves (the others take its buckets at once), its tables and cluster MAC go', { skip }, async () => {
    const i = porticos.findIndex((p) => p.child.exitCode === null && p.child.signalCode === null);
    const others = NODES.filter((n, j) => j !== i && porticos[j]!.child.exitCode === null && porticos[j]!.child.signalCode === null);
    porticos[i]!.child.kill('SIGTERM');
    await porticos[i]!.exited;
    await waitFor(() => others.every((n) => liveLine(others).test(porticos[NODES.indexOf(n)]!.out)), 10_000, 'the last node to take everything');
    assert.equal(net!.run(t.nodes[i]!, ['nft', 'list', 'table', 'netdev', 'portico'], false).status, 1, 'netdev table gone');
    assert.doesNotMatch(net!.run(t.nodes[i]!, ['ip', 'maddr', 'show', 'dev', 'eth0']).stdout, new RegExp(CLUSTER_MAC));
    const h = hits(net!, t.client, NLB_VIP, 80, 60, 8);
    assert.deepEqual(h.errors, []);
    assert.deepEqual(Object.keys(h.answers), others);
  });
});
