import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { serverId, type Server } from '../../core/server.js';
import { IcmpHealthCheck } from '../../health/icmp-check.js';
import { waitFor } from '../../test-helpers/origins.js';

/**
 * ICMP probes run iputils ping. The unreachable case runs inside a network namespace that the test
 * creates (iproute2, root): a veth link on 192.0.2.1/24 with no host behind it, so echo requests to
 * 192.0.2.2 leave and nothing answers. No probe goes to an address outside that namespace or loopback.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const has = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const pingReason = has('ping', ['-n', '-c', '1', '-W', '1', '127.0.0.1']) ? undefined : 'ping (iputils-ping) is missing or cannot send ICMP here';
const nsName = `portico-icmp-${process.pid}`;
let nsReason: string | undefined = pingReason;
if (nsReason === undefined) {
  if (!has('ip', ['-V'])) nsReason = 'ip (iproute2) is missing';
  else if (process.getuid?.() !== 0) nsReason = 'creating a network namespace needs root';
}
if (process.env.CI === 'true') {
  // Under CI a missing dependency is a failure, not a skip.
  it('ICMP test dependencies are present', () => assert.equal(nsReason, undefined, nsReason));
}

const at = (host: string): Server => ({ id: serverId('p', host), name: host, host, port: 80, weight: 1, backup: false, maxConnections: 0, meta: {} });

describe('icmp health check', { skip: pingReason }, () => {
  it('an echo request to 127.0.0.1 is answered', async () => {
    const r = await new IcmpHealthCheck({ timeoutMs: 1000 }).check(at('127.0.0.1'), AbortSignal.timeout(2000));
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(r.latencyMs >= 0 && r.latencyMs < 1000);
  });

  it('a probe is cut when its signal aborts, and the ping process is killed', async () => {
    // 127.0.0.1 answers at once, so abort before the start: the check must give up immediately.
    const ac = new AbortController();
    ac.abort();
    const r = await new IcmpHealthCheck({ timeoutMs: 1000 }).check(at('127.0.0.1'), ac.signal);
    assert.deepEqual([r.ok, r.ok ? '' : r.reason], [false, 'timeout']);
  });
});

describe('icmp health check against an address with no host (test network namespace)', { skip: nsReason }, () => {
  before(() => {
    const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
    ip('netns', 'add', nsName);
    const inNs = (...args: string[]): void => ip('netns', 'exec', nsName, 'ip', ...args);
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'add', 'pv0', 'type', 'veth', 'peer', 'name', 'pv1');
    inNs('addr', 'add', '192.0.2.1/24', 'dev', 'pv0');
    inNs('link', 'set', 'pv0', 'up');
    inNs('link', 'set', 'pv1', 'up');
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', nsName], { stdio: 'ignore' });
  });

  it('the probe fails with a timeout, at the configured timeout', () => {
    const script = `
      import { IcmpHealthCheck } from ${JSON.stringify(join(root, 'dist', 'health', 'icmp-check.js'))};
      const c = new IcmpHealthCheck({ timeoutMs: 300 });
      const s = (host) => ({ id: host, name: host, host, port: 80, weight: 1, backup: false, maxConnections: 0, meta: {} });
      const t0 = performance.now();
      const gone = await c.check(s('192.0.2.2'), AbortSignal.timeout(2000));
      const ms = performance.now() - t0;
      const local = await c.check(s('127.0.0.1'), AbortSignal.timeout(2000));
      process.stdout.write(JSON.stringify({ gone, ms, local }));
    `;
    const out = execFileSync('ip', ['netns', 'exec', nsName, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    const r = JSON.parse(out) as { gone: { ok: boolean; reason?: string }; ms: number; local: { ok: boolean } };
    assert.deepEqual([r.gone.ok, r.gone.reason], [false, 'timeout']);
    // At least the probe's timeout; the upper bound only says it did not wait for something else.
    assert.ok(r.ms >= 280 && r.ms < 5000, `failed after ${r.ms}ms`);
    assert.ok(r.local.ok, 'loopback inside the namespace answers');
  });

  it('Portico started inside the namespace marks the unreachable server down and the other up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-icmp-'));
    const file = join(dir, 'portico.json');
    writeFileSync(
      file,
      JSON.stringify({
        admin: { enabled: false },
        cluster: { workers: 1 },
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
        pools: [
          {
            name: 'web',
            health: { type: 'icmp', interval: '200ms', timeout: '300ms', rise: 1, fall: 2 },
            servers: [
              { name: 'here', address: '127.0.0.1:9' },
              { name: 'gone', address: '192.0.2.2:80' },
            ],
          },
        ],
      }),
    );
    const child = spawn('ip', ['netns', 'exec', nsName, process.execPath, join(root, 'bin', 'portico'), 'start', '-c', file], { cwd: dir });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    try {
      await waitFor(() => /server web\/gone op starting -> down/.test(out) && /server web\/here op starting -> up/.test(out), 60_000, `both decided: ${out}`);
      assert.match(out, /server web\/gone op starting -> down cause=probe detail=1 probe failed, last: timeout/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
    }
  });
});

describe('icmp at config load', { skip: pingReason }, () => {
  it('is refused with a clear error when ping cannot be found', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-icmp-'));
    const file = join(dir, 'portico.yaml');
    writeFileSync(
      file,
      ['listeners: [{ name: web, protocol: http, listen: "127.0.0.1:0", routes: [{ pool: web }] }]', 'pools:', '  - name: web', '    health: { type: icmp }', '    servers: [{ name: a, address: "127.0.0.1:9" }]', ''].join('\n'),
    );
    const r = spawnSync(process.execPath, [join(root, 'bin', 'portico'), 'check', '-c', file], { encoding: 'utf8', env: { ...process.env, PATH: dir } });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /portico\.yaml:4:\d+ pools\.0\.health\.type: ICMP probes need the ping program \(Debian package iputils-ping\)/);
    const ok = spawnSync(process.execPath, [join(root, 'bin', 'portico'), 'check', '-c', file], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  });
});
