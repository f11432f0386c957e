import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { freePort, startOrigin, waitFor } from '../../test-helpers/origins.js';
import { children, startWorkersProcess } from '../../test-helpers/workers.js';

/**
 * Upgrading Portico without dropping a connection (src/cluster/upgrade.ts): a real Portico with
 * two workers, run from a copy of this package so that the code on disk can change under it,
 * under a steady load of keep-alive and new connections; `portico upgrade` and SIGUSR2 replace
 * every worker with one that runs what is on disk now, and not one request fails.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A copy of this package (bin, dist without the tests, package.json; node_modules linked) whose files a test may change. */
function copyPackage(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portico-upgrade-'));
  cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true, filter: (src) => !/\.test\.js$|[/\\]test$|[/\\]test-helpers$/.test(src) });
  cpSync(join(root, 'src', 'admin', 'dashboard', 'public'), join(dir, 'src', 'admin', 'dashboard', 'public'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), readFileSync(join(root, 'package.json')));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Set the version in the copy's package.json (what a new worker's admin API reports). */
function setVersion(pkg: string, version: string): void {
  const p = join(pkg, 'package.json');
  writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), version }, null, 2));
}

interface Outcome {
  readonly ok: boolean;
  /** The request failed on a reused keep-alive connection before any byte of an answer (RFC 9112 §9.3.1: a client may retry it). */
  readonly retryable: boolean;
  readonly why: string;
}

/** GET / through `agent` (false: a new connection); a non-200 answer or an error is a failure. */
function get(port: number, agent: Agent | false): Promise<Outcome> {
  return new Promise((resolve) => {
    let answered = false;
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      answered = true;
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode === 200, retryable: false, why: `status ${res.statusCode}` }));
      res.on('error', (err) => resolve({ ok: false, retryable: false, why: `body: ${err.message}` }));
    });
    req.on('error', (err) => resolve({ ok: false, retryable: !answered && req.reusedSocket, why: `${req.reusedSocket ? 'reused' : 'new'} connection: ${err.message}` }));
    // A bound, so that nothing hangs; far above any answer on loopback.
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.end();
  });
}

/** Clients that each send one request after another (half on keep-alive connections, half on new ones) until stopped. */
function startLoad(port: number, keepAlive: number, fresh: number) {
  const counts: number[] = [];
  const failed: string[] = [];
  let retried = 0;
  let stopping = false;
  const agents: Agent[] = [];
  const loop = async (i: number, agent: Agent | false): Promise<void> => {
    while (!stopping) {
      let r = await get(port, agent);
      // A keep-alive connection the server closed as idle while this request was on its way:
      // sent again on a new connection, as browsers and curl do (and counted).
      if (!r.ok && r.retryable) {
        retried++;
        r = await get(port, false);
      }
      if (!r.ok) failed.push(r.why);
      counts[i]!++;
    }
  };
  const loops: Promise<void>[] = [];
  for (let i = 0; i < keepAlive + fresh; i++) {
    counts.push(0);
    const agent = i < keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
    if (agent !== false) agents.push(agent);
    loops.push(loop(i, agent));
  }
  return {
    failed,
    retried: () => retried,
    total: () => counts.reduce((a, b) => a + b, 0),
    /** Resolves once every client has sent `n` more requests. */
    more: (n: number, what: string) => {
      const base = [...counts];
      return waitFor(() => counts.every((c, i) => c >= base[i]! + n), 120_000, `every client to send ${n} more requests (${what})`);
    },
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      for (const a of agents) a.destroy();
    },
  };
}

/** `portico ARGS` of the copied package; its exit code and output. */
function portico(pkg: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(pkg, 'bin', 'portico'), ...args], { timeout: 180_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, out: stdout + stderr });
    });
  });
}

/** The version and PID a worker's admin API reports, on a new connection (so, in turn, from each worker). */
function workerStatus(adminPort: number): Promise<{ version: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: adminPort, path: '/api/v1/status?scope=worker', agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => {
        try {
          const j = JSON.parse(b) as { version: string; worker: { pid: number } };
          resolve({ version: j.version, pid: j.worker.pid });
        } catch (err) {
          reject(new Error(`status ${res.statusCode}: ${b}`, { cause: err }));
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('no answer')));
    req.end();
  });
}

const disjoint = (a: readonly number[], b: readonly number[]): boolean => a.every((x) => !b.includes(x));

describe('upgrade: new workers from the code on disk, the old ones drain', () => {
  it('under load (keep-alive and new connections): a broken build is refused and the workers go on; portico upgrade and SIGUSR2 replace every worker; no request fails', async () => {
    const pkg = copyPackage();
    const origin = await startOrigin('a');
    const port = await freePort();
    const adminPort = await freePort();
    const file = join(pkg, 'portico.json');
    writeFileSync(
      file,
      JSON.stringify({
        log: { level: 'info', access: { path: join(pkg, 'access.log') } },
        admin: { listen: `127.0.0.1:${adminPort}` },
        stateDir: join(pkg, 'state'),
        shutdownGrace: '30s',
        cluster: { workers: 2 },
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', servers: [{ name: 'a', address: origin.address }] }],
      }),
    );
    mkdirSync(join(pkg, 'state'));
    let p: Awaited<ReturnType<typeof startWorkersProcess>> | undefined;
    let load: ReturnType<typeof startLoad> | undefined;
    try {
      const proc = await startWorkersProcess(file, pkg, 2, {}, join(pkg, 'bin', 'portico'));
      p = proc;
      const primary = proc.child.pid!;
      load = startLoad(port, 4, 4);
      await waitFor(() => proc.workers().length === 2, 30_000, 'two workers');
      await load.more(20, 'before any upgrade');
      const first = p.workers();

      // A build that cannot load: the new workers die at start, the upgrade says so, and the running workers go on.
      const session = join(pkg, 'dist', 'proxy', 'http', 'session.js');
      const good = readFileSync(session);
      writeFileSync(session, 'throw new Error("a broken build");\n');
      const broken = await portico(root, ['upgrade', '--admin', `http://127.0.0.1:${adminPort}`]);
      writeFileSync(session, good);
      assert.equal(broken.code, 1, broken.out);
      assert.match(broken.out, /upgrade not done: new worker \d+ exited while starting \(code 1\); the new workers were stopped and the 2 running workers go on/);
      await waitFor(() => children(primary).length === 2, 60_000, 'the failed new workers to be gone');
      assert.deepEqual(p.workers().sort(), [...first].sort(), 'the running workers are untouched');
      await load.more(20, 'after the refused upgrade');

      // `portico upgrade`: the new workers run the package.json now on disk (its version).
      setVersion(pkg, '0.1.0-upgrade.1');
      const up = await portico(root, ['upgrade', '--admin', `http://127.0.0.1:${adminPort}`]);
      assert.equal(up.code, 0, up.out + p.output());
      const m = /^upgraded: workers (\d+), (\d+) accept; workers (\d+), (\d+) drain and exit$/m.exec(up.out);
      assert.ok(m !== null, up.out);
      const second = [Number(m[1]), Number(m[2])];
      assert.deepEqual([Number(m[3]), Number(m[4])].sort(), [...first].sort());
      await waitFor(() => disjoint(children(primary), first) && children(primary).length === 2, 120_000, 'the old workers to drain and exit');
      assert.deepEqual(p.workers().sort(), [...second].sort());
      await load.more(20, 'after portico upgrade');
      const seen = [await workerStatus(adminPort), await workerStatus(adminPort)];
      assert.deepEqual(seen.map((s) => s.version), ['0.1.0-upgrade.1', '0.1.0-upgrade.1']);
      assert.deepEqual(seen.map((s) => s.pid).sort(), [...second].sort(), 'each worker answered once');

      // SIGUSR2 to the primary (the pid file's PID): the same.
      setVersion(pkg, '0.1.0-upgrade.2');
      process.kill(primary, 'SIGUSR2');
      await waitFor(() => proc.count(/upgrade: workers \d+, \d+ accept; workers \d+, \d+ drain/) === 2, 120_000, 'the second upgrade');
      await waitFor(() => disjoint(children(primary), second) && children(primary).length === 2, 120_000, 'the workers of the first upgrade to exit');
      await load.more(20, 'after SIGUSR2');
      const third = p.workers();
      assert.ok(disjoint(third, first) && disjoint(third, second));
      const again = [await workerStatus(adminPort), await workerStatus(adminPort)];
      assert.deepEqual(again.map((s) => s.version), ['0.1.0-upgrade.2', '0.1.0-upgrade.2']);
      assert.equal(p.count(/exited while starting/), 1, 'only the broken build failed to start');
      assert.equal(p.count(/starting another/), 0, 'no worker was replaced as if it had died');
      await load.stop();
      assert.equal(p.child.exitCode, null);
      if (load.failed.length > 0) console.error(readFileSync(join(pkg, 'access.log'), 'utf8').split('\n').filter((l) => !l.includes('"status":200')).join('\n'), proc.output());
      assert.deepEqual(load.failed, [], `failed requests (of ${load.total()}, ${load.retried()} retried on a new connection)`);
      assert.ok(load.total() >= 8 * 100);
    } finally {
      await load?.stop();
      await p?.stop();
      await origin.close();
      rmSync(pkg, { recursive: true, force: true });
    }
    assert.equal(p!.child.exitCode, 0, p!.output());
  });

  it('one process (cluster.workers: 1): SIGUSR2 and portico upgrade say why nothing is replaced; the process goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-upgrade-'));
    const origin = await startOrigin('a');
    const port = await freePort();
    const adminPort = await freePort();
    const file = join(dir, 'portico.json');
    writeFileSync(
      file,
      JSON.stringify({
        log: { format: 'json' },
        admin: { listen: `127.0.0.1:${adminPort}` },
        stateDir: join(dir, 'state'),
        cluster: { workers: 1 },
        listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', servers: [{ name: 'a', address: origin.address }] }],
      }),
    );
    let p: Awaited<ReturnType<typeof startWorkersProcess>> | undefined;
    try {
      const proc = await startWorkersProcess(file, dir, 1);
      p = proc;
      const r = await portico(root, ['upgrade', '--admin', `http://127.0.0.1:${adminPort}`]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /upgrade not done: an upgrade replaces the workers of cluster\.workers \(2 or more\).*a single process \(cluster\.workers: 1\) holds its own sockets and cannot hand them over: restart it/);
      process.kill(p.child.pid!, 'SIGUSR2');
      await waitFor(() => proc.count(/SIGUSR2: upgrade not done: an upgrade replaces the workers/) === 1, 30_000, 'the process to say why');
      // log.format: json: every line of the process log is one object.
      const lines = proc.output().split('\n').filter((l) => l !== '');
      const warn = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => String(o['msg']).startsWith('SIGUSR2'));
      assert.equal(warn?.['level'], 'warn');
      assert.equal(p.child.exitCode, null);
    } finally {
      await p?.stop();
      await origin.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(p!.child.exitCode, 0, p!.output());
  });
});
