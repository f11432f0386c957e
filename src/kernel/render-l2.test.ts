import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { Netns, netnsSkip, runsHere } from '../test-helpers/netns.js';
import {
  nftDuration,
  renderDistributed,
  renderDsr,
  renderDsrMaps,
  renderNetdevDelete,
  renderNetdevTable,
  renderOwnership,
  type DistributedSpec,
  type DsrServer,
  type DsrSpec,
} from './render-l2.js';

const DSR: DsrSpec = {
  prefix: 'web',
  protocol: 'tcp',
  vip: '192.0.2.100',
  port: 80,
  device: 'eth0',
  deviceMac: '02:00:00:00:00:02',
  byClient: false,
  slots: 1000,
  flowSize: 65536,
  flowTimeoutMs: 300_000,
};
const SERVERS: DsrServer[] = [
  { name: 's1', counterIn: 'web_in_s1', counterOut: 'web_out_s1', mac: '02:00:00:00:00:11', keepFlows: true },
  { name: 's2', counterIn: 'web_in_s2', counterOut: 'web_out_s2', mac: '02:00:00:00:00:12', keepFlows: true },
  { name: 's3', counterIn: 'web_in_s3', counterOut: 'web_out_s3', mac: undefined, keepFlows: true },
];
const SLOTS = [
  { lo: 0, hi: 499, server: 0 },
  { lo: 500, hi: 799, server: 1 },
  { lo: 800, hi: 999, server: 2 },
];
const NLB: DistributedSpec = { prefix: 'vip', protocol: 'tcp', vip: '192.0.2.200', port: 80, device: 'eth0', clusterMac: '01:00:5e:7f:00:c8', buckets: 16, ownershipMs: 1000 };

describe('netdev rules (dsr, distributed)', () => {
  it('dsr: own MAC as source, the flow map first, then the slots; servers without a MAC take no slot', () => {
    const t = renderDsr(DSR, SERVERS, SLOTS);
    assert.match(t, /type filter hook ingress device "eth0" priority filter; policy accept;/);
    // Only frames sent to this node's MAC: not the copies a switch floods to every port.
    assert.match(t, /ether daddr 02:00:00:00:00:02 ip daddr 192\.0\.2\.100 tcp dport 80 ether saddr set 02:00:00:00:00:02 goto web_pick/);
    assert.match(t, /ether daddr 02:00:00:00:00:02 ip saddr 192\.0\.2\.100 tcp sport 80 counter name ether saddr map @web_ctr_out/);
    assert.match(t, /elements = \{ 0-499 : 02:00:00:00:00:11, 500-799 : 02:00:00:00:00:12 \}/);
    const pick = t.slice(t.indexOf('chain web_pick'));
    assert.ok(pick.indexOf('map @web_flows') < pick.indexOf('map @web_slots'), 'the flow map is consulted first');
    // ... except for a SYN: a new connection on a client port a closed one used is placed again.
    assert.match(pick, /^\s*tcp flags & \(syn \| ack\) != syn ether daddr set ip saddr \. tcp sport map @web_flows /m);
    assert.doesNotMatch(renderDsr({ ...DSR, protocol: 'udp' }, SERVERS, SLOTS), /flags &/);
    assert.match(pick, /jhash ip saddr \. tcp sport mod 1000 seed 0x706f7274 map @web_slots/);
    assert.match(renderDsr({ ...DSR, byClient: true, slots: 4093 }, SERVERS, SLOTS), /jhash ip saddr mod 4093 seed 0x706f7274 map @web_slots/);
    assert.match(t, /timeout 300s; size 65536;/);
  });

  it('dsr maps: a cut server (maint) leaves the in-counter map, so its flows are placed again', () => {
    const cut = SERVERS.map((s, i) => (i === 0 ? { ...s, keepFlows: false } : s));
    const m = renderDsrMaps(DSR, cut, SLOTS.slice(1));
    assert.match(m, /^flush map netdev portico web_slots$/m);
    assert.match(m, /^add element netdev portico web_slots \{ 500-799 : 02:00:00:00:00:12 \}$/m);
    assert.match(m, /^add element netdev portico web_ctr_in \{ 02:00:00:00:00:12 : "web_in_s2" \}$/m);
    assert.match(m, /^add element netdev portico web_ctr_out \{ 02:00:00:00:00:11 : "web_out_s1", 02:00:00:00:00:12 : "web_out_s2" \}$/m);
    assert.doesNotMatch(m, /table|chain/, 'no rule changes at run time');
  });

  it('distributed: the cluster MAC and address jump to the bucket chain; ownership renewal is flush and add', () => {
    const t = renderDistributed(NLB, [1, 5, 9]);
    assert.match(t, /set vip_mine \{ typeof numgen random mod 16; flags timeout; timeout 1000ms; elements = \{ 1, 5, 9 \} \}/);
    assert.match(t, /ether daddr 01:00:5e:7f:00:c8 ip daddr 192\.0\.2\.200 tcp dport 80 jump vip_buckets/);
    assert.match(t, /jhash ip saddr \. tcp sport mod 16 seed 0x706f7274 @vip_mine counter name "vip_kept" meta pkttype set host accept/);
    assert.equal(renderOwnership(NLB, [2, 3]), 'flush set netdev portico vip_mine\nadd element netdev portico vip_mine { 2, 3 }\n');
    assert.equal(renderOwnership(NLB, []), 'flush set netdev portico vip_mine\n');
    assert.equal(renderOwnership(NLB, [2, 3], 912.4), 'flush set netdev portico vip_mine\nadd element netdev portico vip_mine { 2 timeout 913ms, 3 timeout 913ms }\n');
    assert.throws(() => renderOwnership(NLB, [16]), /bucket 16 is outside 0\.\.15/);
    assert.throws(() => renderDistributed({ ...NLB, clusterMac: 'nope' }, []), /not a MAC address/);
  });

  it('durations', () => {
    assert.equal(nftDuration(300_000), '300s');
    assert.equal(nftDuration(1250), '1250ms');
    assert.throws(() => nftDuration(0), /positive/);
  });
});

describe('netdev rules accepted by nft (nft --check in a namespace)', () => {
  const skip = netnsSkip(['nft']);
  if (!runsHere(skip)) return;
  const net = skip === undefined ? new Netns('kr') : undefined;
  after(async () => {
    await net?.destroy();
  });

  it('the whole table, the run-time maps and the renewal apply; the table lists back', { skip }, () => {
    const ns = net!.add('lb');
    net!.run(ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
    const table = renderNetdevTable([renderDsr(DSR, SERVERS, SLOTS), renderDistributed(NLB, [0, 1, 2])]);
    net!.run(ns, ['nft', '-c', '-f', '-'], true, table);
    net!.run(ns, ['nft', '-f', '-'], true, table);
    net!.run(ns, ['nft', '-f', '-'], true, table); // idempotent
    net!.run(ns, ['nft', '-f', '-'], true, renderDsrMaps(DSR, SERVERS, SLOTS.slice(0, 1)));
    net!.run(ns, ['nft', '-f', '-'], true, renderOwnership(NLB, [3, 4]));
    const listed = net!.run(ns, ['nft', 'list', 'table', 'netdev', 'portico']).stdout;
    assert.match(listed, /elements = \{ 3 expires/);
    net!.run(ns, ['nft', '-f', '-'], true, renderOwnership(NLB, [5, 6], 750));
    assert.match(net!.run(ns, ['nft', 'list', 'set', 'netdev', 'portico', 'vip_mine']).stdout, /elements = \{ 5 timeout 7\d\dms expires/);
    net!.run(ns, ['nft', '-f', '-'], true, renderNetdevDelete());
    net!.run(ns, ['nft', '-f', '-'], true, renderNetdevDelete()); // absent: no error
    assert.equal(net!.run(ns, ['nft', 'list', 'table', 'netdev', 'portico'], false).status, 1);
  });
});
