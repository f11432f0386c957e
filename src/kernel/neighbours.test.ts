import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { buildL4Topology, Netns, netnsSkip, serverAddr, type L4Topology, runsHere } from '../test-helpers/netns.js';
import { NeighbourError, NeighbourWatch, parseNeighbours, usableMac } from './neighbours.js';

const TABLE = JSON.stringify([
  { dst: '10.0.0.11', dev: 'eth0', lladdr: '02:AA:00:00:00:11', state: ['REACHABLE'] },
  { dst: '10.0.0.12', dev: 'eth0', lladdr: '02:aa:00:00:00:12', state: ['STALE'] },
  { dst: '10.0.0.13', dev: 'eth0', state: ['FAILED'] },
  { dst: '10.0.0.14', dev: 'eth0', lladdr: '02:aa:00:00:00:14', state: ['INCOMPLETE'] },
  { dst: '10.0.0.15', dev: 'eth1', lladdr: '02:aa:00:00:00:15', state: ['PERMANENT'] },
  { dst: 'fd00::1', dev: 'eth0', lladdr: '02:aa:00:00:00:16', state: ['REACHABLE', 'ROUTER'] },
]);

describe('neighbour table (ip -j neigh)', () => {
  it('reads the MAC of resolved entries, lower case, and none for failed or incomplete ones', () => {
    const rows = parseNeighbours(TABLE);
    assert.equal(rows.length, 6);
    assert.equal(usableMac(rows, '10.0.0.11', 'eth0'), '02:aa:00:00:00:11');
    assert.equal(usableMac(rows, '10.0.0.12', 'eth0'), '02:aa:00:00:00:12');
    assert.equal(usableMac(rows, '10.0.0.13', 'eth0'), undefined);
    assert.equal(usableMac(rows, '10.0.0.14', 'eth0'), undefined);
    assert.equal(usableMac(rows, '10.0.0.15', 'eth0'), undefined, 'another device');
    assert.equal(usableMac(rows, '10.0.0.15', 'eth1'), '02:aa:00:00:00:15');
    assert.equal(usableMac(rows, '10.0.0.99', 'eth0'), undefined);
  });

  it('an empty table is empty; anything but a JSON list of rows with dst is an error', () => {
    assert.deepEqual(parseNeighbours(''), []);
    assert.deepEqual(parseNeighbours('[]\n'), []);
    assert.throws(() => parseNeighbours('10.0.0.1 dev eth0 lladdr ...'), NeighbourError);
    assert.throws(() => parseNeighbours('{}'), /not a list/);
    assert.throws(() => parseNeighbours('[{"dev":"eth0"}]'), /no dst/);
  });

  it('calls onChange when a MAC is learnt, changes or is lost, and provokes missing and stale entries', async () => {
    let table = TABLE;
    const seen: string[][] = [];
    const provoked: string[] = [];
    const w = new NeighbourWatch({
      device: 'eth0',
      intervalMs: 1000,
      read: async () => table,
      provoke: (a) => provoked.push(a),
      onChange: (m) => seen.push([...m].map(([a, mac]) => `${a}=${mac}`)),
    });
    w.setAddresses(['10.0.0.11', '10.0.0.12', '10.0.0.13']);
    assert.equal(await w.refresh(), true);
    assert.deepEqual(seen, [['10.0.0.11=02:aa:00:00:00:11', '10.0.0.12=02:aa:00:00:00:12']]);
    assert.deepEqual(provoked.sort(), ['10.0.0.12', '10.0.0.13']);
    assert.equal(await w.refresh(), false, 'nothing changed');
    table = TABLE.replace('02:AA:00:00:00:11', '02:bb:00:00:00:11');
    assert.equal(await w.refresh(), true);
    assert.deepEqual(seen.at(-1), ['10.0.0.11=02:bb:00:00:00:11', '10.0.0.12=02:aa:00:00:00:12']);
    table = '[]';
    assert.equal(await w.refresh(), true);
    assert.deepEqual(seen.at(-1), []);
    await assert.rejects(w.resolve(100, 20), /no MAC address for 10.0.0.11, 10.0.0.12, 10.0.0.13 on eth0/);
    assert.throws(() => w.setAddresses(['fd00::1']), /not an IPv4 address/);
  });
});

describe('neighbour table in a network namespace', () => {
  const skip = netnsSkip();
  if (!runsHere(skip)) return;
  let net: Netns | undefined;
  let topo: L4Topology | undefined;
  before(() => {
    if (skip !== undefined) return;
    net = new Netns('kn');
    topo = buildL4Topology(net, { servers: 2 });
  });
  after(async () => {
    await net?.destroy();
  });

  it('learns the servers MACs by provoking resolution, and notices a changed one', { skip }, async () => {
    const t = topo!;
    const lb = t.balancer!;
    // The watch runs here and reads the balancer's table through `ip -n`; it provokes resolution
    // from inside the balancer's namespace.
    const w = new NeighbourWatch({
      device: 'eth0',
      intervalMs: 100,
      read: async () => t.net.run(lb, ['ip', '-j', 'neigh', 'show', 'dev', 'eth0']).stdout,
      provoke: (a) => void t.net.run(lb, ['ping', '-c', '1', '-W', '1', a], false),
      onChange: () => undefined,
    });
    w.setAddresses([serverAddr(1), serverAddr(2)]);
    const macs = await w.resolve(20_000, 100);
    assert.equal(macs.get(serverAddr(1)), t.net.mac(t.servers[0]!, 'eth0'));
    assert.equal(macs.get(serverAddr(2)), t.net.mac(t.servers[1]!, 'eth0'));
    // s1 gets a new NIC (MAC) on the same address and announces itself (an ARP request to the
    // balancer carries its new MAC; the balancer updates the entry it has).
    const fresh = '02:5e:00:00:00:01';
    t.net.run(t.servers[0]!, ['ip', 'link', 'set', 'eth0', 'address', fresh]);
    t.net.run(t.servers[0]!, ['ip', 'neigh', 'flush', 'dev', 'eth0']);
    t.net.run(t.servers[0]!, ['ping', '-c', '1', '-W', '1', '198.18.0.2'], false);
    const until = Date.now() + 20_000;
    while (w.current().get(serverAddr(1)) !== fresh && Date.now() < until) {
      await w.refresh();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(w.current().get(serverAddr(1)), fresh);
    assert.equal(w.current().get(serverAddr(2)), t.net.mac(t.servers[1]!, 'eth0'));
  });
});
