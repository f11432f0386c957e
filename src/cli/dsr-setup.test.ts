import { strict as assert } from 'node:assert';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { Netns, netnsSkip, runsHere } from '../test-helpers/netns.js';
import { dsrSetupSteps, renderDsrSetup, runDsrSetup } from './dsr-setup.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function capture(argv: string[], interfaces = ['lo', 'eth0', 'eth1']): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runDsrSetup(argv, { out: (s) => (out += s), err: (s) => (err += s) }, () => interfaces);
  return { code, out, err };
}

describe('portico dsr-setup', () => {
  it('prints the sysctls on all, default and every interface but lo, then the loopback alias', () => {
    const r = capture(['--vip', '192.0.2.100']);
    assert.equal(r.code, 0, r.err);
    const cmds = r.out.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(cmds, [
      'sysctl -w net.ipv4.conf.all.arp_ignore=1',
      'sysctl -w net.ipv4.conf.all.arp_announce=2',
      'sysctl -w net.ipv4.conf.default.arp_ignore=1',
      'sysctl -w net.ipv4.conf.default.arp_announce=2',
      'sysctl -w net.ipv4.conf.eth0.arp_ignore=1',
      'sysctl -w net.ipv4.conf.eth0.arp_announce=2',
      'sysctl -w net.ipv4.conf.eth1.arp_ignore=1',
      'sysctl -w net.ipv4.conf.eth1.arp_announce=2',
      'ip addr replace 192.0.2.100/32 dev lo label lo:dsr',
    ]);
  });

  it('holds the address on another interface when asked (a dummy), which must exist', () => {
    const r = capture(['--vip=192.0.2.100/32', '--interface', 'vip0'], ['lo', 'eth0', 'vip0']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^ip addr replace 192\.0\.2\.100\/32 dev vip0$/m);
    assert.match(r.out, /^sysctl -w net\.ipv4\.conf\.vip0\.arp_ignore=1$/m);
    const missing = capture(['--vip', '192.0.2.100', '--interface', 'vip0'], ['lo', 'eth0']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no interface 'vip0' on this host \(make it first, e\.g\. ip link add vip0 type dummy/);
  });

  it('refuses bad input with the reason and the usage', () => {
    for (const [argv, why] of [
      [[], /--vip is required/],
      [['--vip', 'web.example'], /--vip web\.example is not an IPv4 address/],
      [['--vip', '2001:db8::1'], /IPv6 is not supported/],
      [['--vip'], /--vip needs a value/],
      [['--vip', '192.0.2.1', '--bogus'], /unknown argument '--bogus'/],
      [['--vip', '192.0.2.1', '--interface', 'a b'], /is not an interface name/],
    ] as const) {
      const r = capture([...argv]);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, why);
      assert.match(r.err, /Usage: portico dsr-setup/);
    }
    assert.equal(capture(['--help']).code, 0);
  });

  it('the printed text and the applied steps are the same list', () => {
    const steps = dsrSetupSteps('192.0.2.7', 'lo', ['lo', 'eth0']);
    assert.equal(steps.length, 7);
    assert.equal(renderDsrSetup('192.0.2.7', 'lo', steps).split('\n').filter((l) => /^(sysctl|ip) /.test(l)).length, 7);
  });
});

describe('portico dsr-setup --apply in a network namespace', () => {
  const skip = netnsSkip();
  if (!runsHere(skip)) return;
  const net = skip === undefined ? new Netns('kd') : undefined;
  after(async () => {
    await net?.destroy();
  });

  it('puts the address on lo and sets the sysctls, twice without error', { skip }, () => {
    const ns = net!.add('srv');
    net!.run(ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
    for (let round = 0; round < 2; round++) {
      const r = net!.run(ns, [process.execPath, join(ROOT, 'bin', 'portico'), 'dsr-setup', '--vip', '198.18.0.100', '--apply'], false);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /applied: 198\.18\.0\.100\/32 on lo/);
    }
    const addrs = net!.run(ns, ['ip', '-j', '-4', 'addr', 'show', 'dev', 'lo']).stdout;
    const local = (JSON.parse(addrs) as { addr_info: { local: string; prefixlen: number }[] }[])[0]!.addr_info.filter((a) => a.local === '198.18.0.100');
    assert.equal(local.length, 1);
    assert.equal(local[0]!.prefixlen, 32);
    for (const n of ['all', 'default', 'eth0', 'eth1']) {
      assert.equal(net!.run(ns, ['cat', `/proc/sys/net/ipv4/conf/${n}/arp_ignore`]).stdout.trim(), '1', n);
      assert.equal(net!.run(ns, ['cat', `/proc/sys/net/ipv4/conf/${n}/arp_announce`]).stdout.trim(), '2', n);
    }
    // lo is left as it is (it never sends ARP).
    assert.equal(net!.run(ns, ['cat', '/proc/sys/net/ipv4/conf/lo/arp_ignore']).stdout.trim(), '0');
  });
});
