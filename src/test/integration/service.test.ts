import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { haveBinary } from '../../test-helpers/certs.js';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { waitFor } from '../../test-helpers/origins.js';
import { startWorkersProcess } from '../../test-helpers/workers.js';

/** Running Portico as a service: how `portico start` fails, the processes it runs and the signals they take. */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'portico');

interface Ended {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Processes of the group left once the command ended (each one its own process group, so this counts the workers too). */
  left: number;
}

/** `portico ARGS` in a process group of its own, until it ends (a hang fails the test after `ms`, and the group is killed). */
function runGroup(args: string[], cwd: string, ms = 60_000): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      reject(new Error(`portico did not end within ${ms} ms: ${stdout}${stderr}`));
    }, ms);
    child.on('close', (code) => {
      clearTimeout(t);
      let left = 0;
      try {
        process.kill(-child.pid!, 0);
        left = 1;
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // no process of the group is left
      }
      resolve({ code, stdout, stderr, left });
    });
  });
}

function listenAny(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

function configFile(dir: string, listener: Record<string, unknown>, workers: number | undefined): string {
  const f = join(dir, `portico-${workers ?? 'auto'}.json`);
  const config = {
    log: { level: 'info' },
    admin: { enabled: false },
    stateDir: join(dir, 'state'),
    ...(workers === undefined ? {} : { cluster: { workers } }),
    listeners: [{ name: 'web', routes: [{ pool: 'web' }], ...listener }],
    pools: [{ name: 'web', servers: [{ name: 'a', address: '127.0.0.1:9' }] }],
  };
  writeFileSync(f, JSON.stringify(config));
  return f;
}

/** Lines of `text` that match `re`. */
const matching = (text: string, re: RegExp): string[] => text.split('\n').filter((l) => re.test(l));

describe('portico start that cannot start', () => {
  for (const workers of [1, 2, undefined]) {
    const mode = workers === undefined ? 'cluster.workers: auto' : `cluster.workers: ${workers}`;

    it(`${mode}: a port in use ends every process with status 1 and one message naming the listener and the address`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
      const busy = await listenAny();
      try {
        const f = configFile(dir, { protocol: 'http', listen: `127.0.0.1:${busy.port}` }, workers);
        const r = await runGroup(['start', '-c', f], dir);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.left, 0, 'no process of the group is left');
        const lines = matching(r.stderr, /EADDRINUSE/);
        assert.deepEqual(lines, [`portico: listener web cannot listen on http://127.0.0.1:${busy.port}: EADDRINUSE (the address is in use by another process)`], r.stderr);
      } finally {
        busy.server.close();
      }
    });

    it(`${mode}: a certificate that cannot be read ends every process with status 1 and one message naming the file`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
      const missing = join(dir, 'nope.pem');
      const f = configFile(dir, { protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: missing, key: missing }] } }, workers);
      const r = await runGroup(['start', '-c', f], dir);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.equal(r.left, 0, 'no process of the group is left');
      const lines = matching(r.stderr, /nope\.pem/);
      assert.equal(lines.length, 1, r.stderr);
      // Refused as the configuration is loaded (before a worker starts), as `portico check` refuses it.
      assert.equal(lines[0]!.replace(/:1:\d+ /, ':1:COL '), `${f}:1:COL listeners.0.tls.certificates.0.cert: ${missing}: cannot be read (ENOENT)`);
    });
  }
});

describe('portico check', () => {
  it('without -c checks ./portico.yaml, as start runs it; it refuses what start refuses (a certificate that cannot be read)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
    const none = await runGroup(['check'], dir);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /^portico\.yaml:0:0 \(file\): cannot read the configuration: no such file/);
    const yaml = (cert: string): string =>
      ['listeners:', '  - name: secure', '    protocol: https', '    listen: 127.0.0.1:0', '    routes: [ { pool: web } ]', `    tls: { certificates: [ { cert: ${cert}, key: ${cert} } ] }`, 'pools:', '  - name: web', '    servers: [ { name: a, address: 127.0.0.1:9101 } ]', ''].join('\n');
    writeFileSync(join(dir, 'portico.yaml'), yaml('missing.pem'));
    const r = await runGroup(['check'], dir);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.stdout, 'portico.yaml:6:30 listeners.0.tls.certificates.0.cert: missing.pem: cannot be read (ENOENT)\n');
  });
});

/** The name a process shows in ps (its process.title). */
const title = (pid: number): string => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!;

describe('the processes of portico start', () => {
  it('with workers: named "portico: primary" and "portico: worker N"; the pid file names the primary; SIGHUP and SIGUSR2 to a worker say where to send them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
    const pidFile = join(dir, 'portico.pid');
    const f = configFile(dir, { protocol: 'http', listen: '127.0.0.1:0' }, 2);
    writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), pidFile }));
    const p = await startWorkersProcess(f, dir, 2);
    try {
      const primary = p.child.pid!;
      assert.equal(readFileSync(pidFile, 'utf8'), `${primary}\n`);
      assert.equal(title(primary), 'portico: primary');
      await waitFor(() => p.workers().length === 2, 10_000, 'two workers');
      const workers = p.workers();
      assert.deepEqual(workers.map(title).map((t) => t.replace(/\d+$/, 'N')), ['portico: worker N', 'portico: worker N']);
      process.kill(workers[0]!, 'SIGHUP');
      await waitFor(() => p.count(new RegExp(`SIGHUP to worker ${workers[0]} ignored: the primary reloads every worker \\(kill -HUP ${primary}\\)`)) === 1, 10_000, 'the worker to say why');
      process.kill(workers[1]!, 'SIGUSR2');
      await waitFor(() => p.count(new RegExp(`SIGUSR2 to worker ${workers[1]} ignored: the primary upgrades every worker \\(kill -USR2 ${primary}\\)`)) === 1, 10_000, 'the worker to say where');
      assert.equal(p.count(/reloading/), 0, p.output());
      assert.deepEqual(p.workers(), workers, 'no process ended');
    } finally {
      await p.stop();
    }
    assert.equal(p.child.exitCode, 0, p.output());
    assert.equal(existsSync(pidFile), false, 'the pid file is removed at exit');
  });

  it('one process: named "portico"; the pid file is written at start and removed at exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
    const pidFile = join(dir, 'portico.pid');
    const f = configFile(dir, { protocol: 'http', listen: '127.0.0.1:0' }, 1);
    writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), pidFile }));
    const p = await startWorkersProcess(f, dir, 1);
    try {
      assert.equal(readFileSync(pidFile, 'utf8'), `${p.child.pid}\n`);
      assert.equal(title(p.child.pid!), 'portico');
      process.kill(p.child.pid!, 'SIGUSR2');
      await waitFor(() => p.count(/SIGUSR2: upgrade not done: .*a single process \(cluster\.workers: 1\) holds its own sockets/) === 1, 10_000, 'the process to say why');
    } finally {
      await p.stop();
    }
    assert.equal(p.child.exitCode, 0, p.output());
    assert.equal(existsSync(pidFile), false, 'the pid file is removed at exit');
  });

  it('a pid file that cannot be written: status 1 and the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
    const pidFile = join(dir, 'no-such-dir', 'portico.pid');
    const f = configFile(dir, { protocol: 'http', listen: '127.0.0.1:0' }, 1);
    writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), pidFile }));
    const r = await runGroup(['start', '-c', f], dir);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `portico: pidFile ${pidFile}: cannot be written (ENOENT)\n`);
  });
});

describe('readiness for systemd (Type=notify)', () => {
  for (const workers of [1, 2]) {
    it(`cluster.workers: ${workers}: systemd-notify --ready names the main process once every listener is up`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
      // A stand-in for systemd-notify on PATH: it records its arguments (Node.js cannot write to the notify socket itself).
      const told = join(dir, 'told');
      const fake = join(dir, 'systemd-notify');
      writeFileSync(fake, `#!/bin/sh\necho "$@" >> ${told}\n`);
      chmodSync(fake, 0o755);
      const f = configFile(dir, { protocol: 'http', listen: '127.0.0.1:0' }, workers);
      const p = await startWorkersProcess(f, dir, workers, { NOTIFY_SOCKET: join(dir, 'notify.sock'), PATH: `${dir}:${process.env['PATH']}` });
      try {
        await waitFor(() => existsSync(told), 20_000, 'systemd-notify to run');
        await waitFor(() => readFileSync(told, 'utf8').endsWith('\n'), 5000, 'its line');
        assert.equal(readFileSync(told, 'utf8'), `--ready --pid=${p.child.pid}\n`);
      } finally {
        await p.stop();
      }
    });
  }
});

/** A port below 1024 that nothing on loopback listens on now (bound and released as root). */
async function freeLowPort(): Promise<number> {
  for (let port = 700 + (process.pid % 200); port < 1024; port++) {
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port below 1024');
}

describe('a port below 1024 without root', () => {
  const skip = process.getuid?.() !== 0 ? 'needs root, to start Portico as another user' : haveBinary('setpriv') ? false : 'needs setpriv (util-linux)';

  it('as nobody: status 1 and the message says which capability it needs; with CAP_NET_BIND_SERVICE (ambient, as the unit gives it) it binds', { skip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-svc-'));
    chmodSync(dir, 0o755); // nobody reads the configuration
    const port = await freeLowPort();
    const f = configFile(dir, { protocol: 'http', listen: `127.0.0.1:${port}` }, 1);
    chmodSync(f, 0o644);
    const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
    const denied = await new Promise<Ended>((resolve) => {
      const child = spawn('setpriv', [...nobody, process.execPath, bin, 'start', '-c', f], { cwd: dir });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (code) => resolve({ code, stdout: '', stderr, left: 0 }));
    });
    assert.equal(denied.code, 1, denied.stderr);
    assert.equal(
      denied.stderr,
      `portico: listener web cannot listen on http://127.0.0.1:${port}: EACCES (permission denied; a port below 1024 needs root or the CAP_NET_BIND_SERVICE capability (see docs/deployment.md))\n`,
    );
    const child = spawn('setpriv', [...nobody, '--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service', process.execPath, bin, 'start', '-c', f], { cwd: dir });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes(`listener web on http://127.0.0.1:${port}`) || child.exitCode !== null, 30_000, 'the listener');
      assert.match(out, new RegExp(`listener web on http://127\\.0\\.0\\.1:${port}`));
      assert.equal(readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1], '65534');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await closed, 0, out);
  });
});
