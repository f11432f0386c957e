import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import '../app/listener-kinds.js';
import '../balancer/index.js';
import { ConfigError } from '../config/errors.js';
import { parseConfigText } from '../config/load.js';

/** The issues of a YAML text as `portico check` prints them (FILE:LINE:COL path: message), or [] when valid. */
function problems(yaml: string, runnable = false): string[] {
  try {
    parseConfigText(yaml, 'lb.yaml', {}, { runnable });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    return err.lines();
  }
}

const config = (listener: string, pool = '', cluster = 'cluster: { workers: 1 }'): string => `${cluster}
listeners:
  - name: vip
    listen: 192.0.2.100:80
    pool: web
${listener}
pools:
  - name: web
    retries: 0
${pool}    servers:
      - { name: s1, address: 10.0.0.11:80 }
`;

describe('kernel listeners in the configuration', () => {
  it('a tcp and a udp kernel listener with the kernel block of SPEC §10 are valid', () => {
    assert.deepEqual(problems(config('    protocol: tcp\n    dataPlane: kernel\n    forwarding: nat\n    kernel: { snat: [10.0.0.2, 10.0.0.3], persistence: { timeout: 5m }, keepOnExit: true }')), []);
    assert.deepEqual(problems(config('    protocol: udp\n    dataPlane: kernel')), []);
  });

  it('kernel.addressHeldBy: host or keepalived', () => {
    assert.deepEqual(problems(config('    protocol: tcp\n    dataPlane: kernel\n    kernel: { addressHeldBy: keepalived }')), []);
    const p = problems(config('    protocol: tcp\n    dataPlane: kernel\n    kernel: { addressHeldBy: vrrp }'));
    assert.ok(p.some((x) => /^lb\.yaml:\d+:\d+ listeners\.0\.kernel\.addressHeldBy: .*host.*keepalived/.test(x)), p.join('\n'));
  });

  it('what needs the bytes is refused at its key, with the reason', () => {
    const cases: [string, RegExp][] = [
      ['    routes: [{ pool: web }]', /^lb\.yaml:8:5 listeners\.0\.routes: a kernel listener forwards packets and never sees the bytes: routes need them/],
      ['    inspect: tls', /^lb\.yaml:8:5 listeners\.0\.inspect: .*inspect: tls needs them/],
      ['    sendProxy: v2', /^lb\.yaml:8:5 listeners\.0\.sendProxy: .*PROXY protocol/],
      ['    acceptProxy: true', /^lb\.yaml:8:5 listeners\.0\.acceptProxy: .*PROXY protocol/],
    ];
    for (const [line, re] of cases) {
      const yaml = `cluster: { workers: 1 }\nlisteners:\n  - name: vip\n    protocol: tcp\n    dataPlane: kernel\n    listen: 192.0.2.100:80\n    pool: web\n${line}\npools:\n  - name: web\n    retries: 0\n    servers: [{ name: s1, address: '10.0.0.11:80' }]\n`;
      const p = problems(yaml);
      assert.ok(p.some((x) => re.test(x)), `${line}: ${p.join('\n')}`);
    }
  });

  it("the pool's queue and retries are refused, and algorithms the kernel does not run", () => {
    const k = '    protocol: tcp\n    dataPlane: kernel';
    assert.ok(problems(config(k).replace('retries: 0', 'retries: 2')).some((x) => /^lb\.yaml:\d+:\d+ pools\.0\.retries: kernel listener "vip" uses this pool: retries need the bytes/.test(x)));
    assert.ok(problems(config(k, '    queue: { max: 10 }\n')).some((x) => /pools\.0\.queue\.max: .*cannot hold a connection in a queue/.test(x)));
    assert.ok(problems(config(k, '    balance: leastconn\n')).some((x) => /pools\.0\.balance: .*roundrobin, random or hash \(source-ip\), not leastconn/.test(x)));
    assert.ok(problems(config(k, '    balance: hash\n    hash: { key: uri }\n')).some((x) => /pools\.0\.hash\.key: .*hashes the client address only/.test(x)));
    assert.ok(problems(config(k).replace('10.0.0.11:80', 'web.example:80')).some((x) => /servers\.0\.address: .*IPv4 addresses only, not web\.example/.test(x)));
  });

  it('hash: the kernel builds a Maglev table of at most 65537 buckets; a pool it uses defaults to 4093, for userspace too', () => {
    const k = '    protocol: tcp\n    dataPlane: kernel';
    const ring = problems(config(k, '    balance: hash\n    hash: { key: source-ip, method: ring }\n'));
    assert.ok(ring.some((x) => /pools\.0\.hash\.method: .*a Maglev table \(method: maglev\), not ring/.test(x)), ring.join('\n'));
    const big = problems(config(k, '    balance: hash\n    hash: { key: source-ip, tableSize: 655373 }\n'));
    assert.ok(big.some((x) => /pools\.0\.hash\.tableSize: .*at most 65537 buckets/.test(x)), big.join('\n'));
    const size = (yaml: string): number | undefined => parseConfigText(yaml, 'lb.yaml', {}, { runnable: false }).pools[0]!.hash.tableSize;
    // The same pool seen by the kernel and by a userspace listener: one table.
    assert.equal(size(config(k, '    balance: hash\n    hash: { key: source-ip }\n')), 4093);
    assert.equal(size(config(k, '    balance: hash\n    hash: { key: source-ip, tableSize: 65537 }\n')), 65537);
    // A pool no kernel listener uses keeps the userspace default (65537, chosen by the balancer).
    assert.equal(size(config('    protocol: tcp', '    balance: hash\n    hash: { key: source-ip }\n')), undefined);
  });

  it('udp without dataPlane: kernel is refused with the reason', () => {
    const p = problems(config('    protocol: udp'));
    assert.ok(p.some((x) => /listeners\.0\.dataPlane: udp needs dataPlane: kernel \(the userspace listeners do TCP only\)/.test(x)), p.join('\n'));
  });

  it('distributed is accepted with what it needs', () => {
    const nlb = '    protocol: tcp\n    dataPlane: kernel\n    forwarding: distributed\n    kernel: { interface: eth0, distributed: { nodes: [lb1, lb2], buckets: 64, clusterMac: "01:00:5e:7f:00:c8" } }';
    assert.deepEqual(problems(config(nlb), true), []);
    const tight = problems(config(nlb.replace('buckets: 64', 'buckets: 64, heartbeat: 1s, deadAfter: 2s')), true);
    assert.ok(tight.some((x) => /deadAfter must be at least 3 heartbeats/.test(x)), tight.join('\n'));
  });

  it('dsr is accepted with what it needs; several worker processes are accepted (the primary programs the kernel)', () => {
    assert.deepEqual(problems(config('    protocol: tcp\n    dataPlane: kernel\n    forwarding: dsr\n    kernel: { interface: eth0 }'), true), []);
    const noIface = problems(config('    protocol: tcp\n    dataPlane: kernel\n    forwarding: dsr'), true);
    assert.ok(noIface.some((x) => /listeners\.0\.kernel\.interface: forwarding: dsr needs kernel\.interface/.test(x)), noIface.join('\n'));
    const port = problems(config('    protocol: tcp\n    dataPlane: kernel\n    forwarding: dsr\n    kernel: { interface: eth0 }').replace('10.0.0.11:80', '10.0.0.11:8080'), true);
    assert.ok(port.some((x) => /servers\.0\.address: .*a server must take the virtual address's port/.test(x)), port.join('\n'));
    const workers = problems(config('    protocol: tcp\n    dataPlane: kernel', '', 'cluster: { workers: 2 }'), true);
    assert.deepEqual(problems(config('    protocol: tcp\n    dataPlane: kernel'), true), []);
    assert.deepEqual(workers, []);
  });

  it('a userspace tcp listener is unchanged (dataPlane absent or userspace)', () => {
    assert.deepEqual(problems(config('    protocol: tcp')), []);
    assert.deepEqual(problems(config('    protocol: tcp\n    dataPlane: userspace\n    inspect: tls')), []);
    const bad = problems(config('    protocol: tcp\n    dataPlane: ebpf'));
    assert.ok(bad.some((x) => /unknown dataPlane "ebpf".*: one of userspace \| kernel/.test(x)), bad.join('\n'));
  });
});
