import { strict as assert } from 'node:assert';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import '../app/listener-kinds.js';
import { KeepalivedUsageError, listenerPortsOn, parseKeepalivedArgs, readyUrlFor, renderKeepalivedConfig, renderNftRules } from './keepalived.js';
import { runKeepalived } from './keepalived-cli.js';

const base = ['--vip', '198.18.0.100/24', '--interface', 'eth0', '--priority', '150'];

describe('portico keepalived: arguments', () => {
  it('takes the three required options and fills the defaults', () => {
    const { options } = parseKeepalivedArgs(base);
    assert.equal(options.vip, '198.18.0.100/24');
    assert.equal(options.interface, 'eth0');
    assert.equal(options.priority, 150);
    assert.equal(options.routerId, 51);
    assert.equal(options.readyUrl, 'http://127.0.0.1:9090/api/v1/status/ready');
    assert.deepEqual(options.unicastPeers, []);
  });

  it('names every missing required option', () => {
    assert.throws(() => parseKeepalivedArgs(['--interface', 'eth0']), (e: Error) => e instanceof KeepalivedUsageError && /--vip, --priority/.test(e.message));
  });

  it('refuses values that are not what they claim (they are written into a configuration file)', () => {
    const bad: [string, string][] = [
      ['--vip', '198.18.0.300'],
      ['--vip', '198.18.0.1/33'],
      ['--vip', '1.2.3.4 dev lo'],
      ['--interface', 'eth0 }\nvrrp_script x {'],
      ['--priority', '255'],
      ['--priority', '0'],
      ['--priority', '1.5'],
      ['--router-id', '256'],
      ['--ready-url', 'ftp://127.0.0.1/'],
      ['--unicast-peer', 'peer.example'],
      ['--script-user', 'root;id'],
      ['--curl', 'curl'],
      ['--check-interval', '0'],
    ];
    for (const [flag, value] of bad) {
      const argv = [...base.filter((_, i) => base[i - 1] !== flag && base[i] !== flag), flag, value];
      assert.throws(() => parseKeepalivedArgs(argv), KeepalivedUsageError, `${flag} ${JSON.stringify(value)}`);
    }
    assert.throws(() => parseKeepalivedArgs([...base, '--bogus']), /unknown option/);
    // A URL is written percent-encoded: quotes and spaces cannot end the script line.
    const text = renderKeepalivedConfig(parseKeepalivedArgs([...base, '--ready-url', 'http://127.0.0.1:9090/a"; rm -rf /']).options);
    const script = text.split('\n').find((l) => l.trim().startsWith('script '))!;
    assert.equal(script.split('"').length, 3, script);
    assert.match(script, /a%22;%20rm%20-rf%20\/"$/);
    assert.throws(() => parseKeepalivedArgs([...base, '-c', 'x.yaml', '--ready-url', 'http://127.0.0.1:1/']), /not both/);
  });

  it('accepts --flag=value and IPv6', () => {
    const { options } = parseKeepalivedArgs(['--vip=2001:db8::10', '--interface=br0', '--priority=100', '--unicast-peer=2001:db8::2']);
    assert.equal(options.vip, '2001:db8::10');
    assert.deepEqual(options.unicastPeers, ['2001:db8::2']);
  });

  it('readyUrlFor asks a wildcard admin address on loopback', () => {
    assert.equal(readyUrlFor({ host: '0.0.0.0', port: 9191 }), 'http://127.0.0.1:9191/api/v1/status/ready');
    assert.equal(readyUrlFor({ host: '::', port: 9090 }), 'http://[::1]:9090/api/v1/status/ready');
    assert.equal(readyUrlFor({ host: '10.0.0.5', port: 9090 }), 'http://10.0.0.5:9090/api/v1/status/ready');
  });
});

describe('portico keepalived: the configuration', () => {
  it('tracks a vrrp_script that asks the readiness endpoint, on the given interface and priority', () => {
    const text = renderKeepalivedConfig(parseKeepalivedArgs([...base, '--router-id', '7', '--fall', '3']).options);
    assert.match(text, /vrrp_script portico_ready \{\n {4}script "\/usr\/bin\/curl --silent --fail --output \/dev\/null --max-time 1 http:\/\/127\.0\.0\.1:9090\/api\/v1\/status\/ready"\n/);
    assert.match(text, /\n {4}fall 3\n/);
    assert.match(text, /\n {4}interface eth0\n {4}virtual_router_id 7\n {4}priority 150\n {4}advert_int 1\n/);
    assert.match(text, /virtual_ipaddress \{\n {8}198\.18\.0\.100\/24 dev eth0\n/);
    assert.match(text, /track_script \{\n {8}portico_ready\n/);
    assert.match(text, /enable_script_security\n {4}script_user root\n/);
    assert.doesNotMatch(text, /nopreempt|unicast_peer|version 3/);
  });

  it('writes nopreempt, unicast peers, a /32 for a bare address and VRRPv3 for IPv6', () => {
    const v4 = renderKeepalivedConfig(parseKeepalivedArgs(['--vip', '198.18.0.100', '--interface', 'eth0', '--priority', '100', '--nopreempt', '--unicast-peer', '198.18.0.2']).options);
    assert.match(v4, /198\.18\.0\.100\/32 dev eth0/);
    assert.match(v4, /\n {4}nopreempt\n/);
    assert.match(v4, /unicast_peer \{\n {8}198\.18\.0\.2\n {4}\}/);
    const v6 = renderKeepalivedConfig(parseKeepalivedArgs(['--vip', '2001:db8::10', '--interface', 'eth0', '--priority', '100']).options);
    assert.match(v6, /2001:db8::10\/128 dev eth0/);
    assert.match(v6, /\n {4}version 3\n/);
  });

  it('keepalived itself accepts the configuration (keepalived --config-test)', (t) => {
    const bin = ['/usr/sbin/keepalived', '/sbin/keepalived'].find((p) => existsSync(p));
    if (bin === undefined) {
      if (process.env['CI'] === 'true') assert.fail('keepalived is not installed (Debian package keepalived)');
      t.skip('keepalived is not installed (Debian package keepalived)');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'portico-keepalived-'));
    try {
      const cases: string[][] = [base, ['--vip', '2001:db8::10', '--interface', 'eth0', '--priority', '100', '--nopreempt', '--unicast-peer', '2001:db8::2', '--advert-int', '0.5']];
      for (const argv of cases) {
        const file = join(dir, 'keepalived.conf');
        writeFileSync(file, renderKeepalivedConfig(parseKeepalivedArgs(argv).options));
        const r: SpawnSyncReturns<string> = spawnSync(bin, ['--config-test', '-f', file], { encoding: 'utf8', timeout: 10_000 });
        assert.equal(r.status, 0, `keepalived --config-test: ${r.stdout}${r.stderr}`);
      }
      writeFileSync(join(dir, 'broken.conf'), 'vrrp_instance x {\n    priority nope\n');
      const broken = spawnSync(bin, ['--config-test', '-f', join(dir, 'broken.conf')], { encoding: 'utf8', timeout: 10_000 });
      assert.notEqual(broken.status, 0, 'the check itself can fail');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('portico keepalived: nftables rules that hold connection attempts (--nft-out)', () => {
  it('drops only the reset that refuses a SYN from the virtual address, on the given ports', () => {
    const text = renderNftRules('198.18.0.100/24', [8443, 8080, 8080]);
    const rule = text.split('\n').find((l) => l.includes(' drop'))!;
    assert.equal(rule.trim(), 'ip saddr 198.18.0.100 tcp sport { 8080, 8443 } tcp flags & (syn | ack | rst) == (ack | rst) tcp sequence 0 counter drop');
    assert.match(text, /type filter hook output priority filter; policy accept;/);
    // Loaded again, the table is replaced, not doubled.
    assert.match(text, /^table inet portico_vip\ndelete table inet portico_vip\ntable inet portico_vip \{/m);
    assert.match(renderNftRules('2001:db8::10', [80]), /\n {8}ip6 saddr 2001:db8::10 tcp sport \{ 80 \}/);
  });

  it('refuses no ports, a bad port and a bad address', () => {
    assert.throws(() => renderNftRules('198.18.0.100', []), /at least one port/);
    assert.throws(() => renderNftRules('198.18.0.100', [0]), KeepalivedUsageError);
    assert.throws(() => renderNftRules('198.18.0.100 ; flush ruleset', [80]), KeepalivedUsageError);
    assert.throws(() => parseKeepalivedArgs([...base, '--port', '80']), /give --nft-out too/);
    assert.throws(() => parseKeepalivedArgs([...base, '--nft-out', 'x', '--port', '65536']), KeepalivedUsageError);
    assert.throws(() => parseKeepalivedArgs([...base, '--nft-out', 'x', '-o', 'x']), /different files/);
  });

  it('takes the ports of the listeners bound to the virtual address or to a wildcard', () => {
    const l = (listen: string): { listen: { host: string; port: number } } => {
      const i = listen.lastIndexOf(':');
      return { listen: { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) } };
    };
    const listeners = [l('0.0.0.0:8080'), l('198.18.0.100:443'), l('127.0.0.1:9000'), l('10.0.0.1:81'), l('[::]:8443'), l('0.0.0.0:0')];
    assert.deepEqual(listenerPortsOn('198.18.0.100/24', listeners), [443, 8080, 8443]);
    assert.deepEqual(listenerPortsOn('2001:db8::10', listeners), [8443]);
  });

  it('nft itself accepts the rules (nft --check)', (t) => {
    const bin = ['/usr/sbin/nft', '/sbin/nft'].find((p) => existsSync(p));
    const why = bin === undefined ? 'nft is not installed (Debian package nftables)' : process.getuid?.() !== 0 ? 'nft --check needs root' : undefined;
    if (why !== undefined) {
      if (process.env['CI'] === 'true') assert.fail(why);
      t.skip(why);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'portico-nft-'));
    try {
      for (const text of [renderNftRules('198.18.0.100/24', [8080, 8443]), renderNftRules('2001:db8::10/64', [80])]) {
        writeFileSync(join(dir, 'r.nft'), text);
        const r = spawnSync(bin!, ['--check', '-f', join(dir, 'r.nft')], { encoding: 'utf8', timeout: 10_000 });
        assert.equal(r.status, 0, `nft --check: ${r.stdout}${r.stderr}`);
      }
      writeFileSync(join(dir, 'bad.nft'), 'table inet portico_vip { chain output { tcp flags nope drop } }\n');
      assert.notEqual(spawnSync(bin!, ['--check', '-f', join(dir, 'bad.nft')], { timeout: 10_000 }).status, 0, 'the check itself can fail');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('portico keepalived: the command', () => {
  interface Captured {
    out: string;
    err: string;
    io: { out(s: string): void; err(s: string): void };
  }
  const io = (): Captured => {
    const r: Captured = { out: '', err: '', io: { out: (s: string) => void (r.out += s), err: (s: string) => void (r.err += s) } };
    return r;
  };

  it('prints the configuration, or writes it with -o', () => {
    const a = io();
    assert.equal(runKeepalived(base, a.io), 0);
    assert.match(a.out, /vrrp_instance portico/);
    const dir = mkdtempSync(join(tmpdir(), 'portico-keepalived-'));
    try {
      const b = io();
      assert.equal(runKeepalived([...base, '-o', join(dir, 'k.conf')], b.io), 0);
      assert.equal(b.out, '');
      assert.equal(readFileSync(join(dir, 'k.conf'), 'utf8'), a.out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes the readiness URL from the configuration file, and refuses one without the admin API', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-keepalived-'));
    try {
      const pools = [{ name: 'web', servers: [{ name: 'a', address: '127.0.0.1:8081' }] }];
      const listeners = [{ name: 'web', protocol: 'http', listen: '0.0.0.0:8080', routes: [{ pool: 'web' }] }];
      writeFileSync(join(dir, 'on.json'), JSON.stringify({ admin: { listen: '0.0.0.0:9191', token: 'a-token-for-the-test-only' }, listeners, pools }));
      const a = io();
      assert.equal(runKeepalived([...base, '-c', join(dir, 'on.json')], a.io), 0, a.err);
      assert.match(a.out, /http:\/\/127\.0\.0\.1:9191\/api\/v1\/status\/ready/);
      // --nft-out covers the listeners on the address, and the ports named besides.
      const n = io();
      assert.equal(runKeepalived([...base, '-c', join(dir, 'on.json'), '--nft-out', join(dir, 'r.nft'), '--port', '8443'], n.io), 0, n.err);
      assert.match(readFileSync(join(dir, 'r.nft'), 'utf8'), /ip saddr 198\.18\.0\.100 tcp sport \{ 8080, 8443 \}/);
      writeFileSync(join(dir, 'off.json'), JSON.stringify({ admin: { enabled: false }, listeners, pools }));
      const b = io();
      assert.equal(runKeepalived([...base, '-c', join(dir, 'off.json')], b.io), 1);
      assert.match(b.err, /admin\.enabled: false/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a kernel listener on the virtual address that requires the address at start (kernel.addressHeldBy)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-keepalived-'));
    try {
      const pools = [{ name: 'web', balance: 'hash', retries: 0, servers: [{ name: 'a', address: '198.18.0.11:80' }] }];
      const listener = { name: 'vip', protocol: 'tcp', listen: '198.18.0.100:80', dataPlane: 'kernel', forwarding: 'dsr', pool: 'web', kernel: { interface: 'eth0' } };
      const doc = (kernel: object) => JSON.stringify({ cluster: { workers: 1 }, admin: { listen: '127.0.0.1:9191' }, listeners: [{ ...listener, kernel }], pools });
      writeFileSync(join(dir, 'host.json'), doc({ interface: 'eth0' }));
      const a = io();
      assert.equal(runKeepalived([...base, '-c', join(dir, 'host.json'), '-o', join(dir, 'k.conf')], a.io), 1);
      assert.match(a.err, /kernel listener vip is on 198\.18\.0\.100, which keepalived moves: set its kernel\.addressHeldBy: keepalived/);
      assert.equal(existsSync(join(dir, 'k.conf')), false, 'nothing written');
      writeFileSync(join(dir, 'keepalived.json'), doc({ interface: 'eth0', addressHeldBy: 'keepalived' }));
      const b = io();
      assert.equal(runKeepalived([...base, '-c', join(dir, 'keepalived.json')], b.io), 0, b.err);
      assert.match(b.out, /track_script/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 with the usage on a bad argument', () => {
    const a = io();
    assert.equal(runKeepalived(['--vip', 'x'], a.io), 2);
    assert.match(a.err, /--vip must be/);
    assert.match(a.err, /Usage: portico keepalived/);
  });
});
