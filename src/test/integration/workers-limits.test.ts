import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';

/**
 * `cluster.workers: 2` and what one file means whatever the number of workers: every limit is the
 * group's (each worker enforces its share), a refused reload is logged once (by the primary), and
 * a worker started after a probe took a server down logs the change with the probe's detail.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** An origin that holds every request until release(): how many it holds now, and at most. */
interface HoldingOrigin {
  readonly origin: Origin;
  held(): number;
  most(): number;
  release(): void;
}

async function holdingOrigin(name: string): Promise<HoldingOrigin> {
  const held: ServerResponse[] = [];
  let most = 0;
  const origin = await startOrigin(name, (req, res) => {
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    held.push(res);
    res.on('close', () => {
      const i = held.indexOf(res);
      if (i >= 0) held.splice(i, 1);
    });
    if (held.length > most) most = held.length;
  });
  return {
    origin,
    held: () => held.length,
    most: () => most,
    release: () => {
      for (const res of held.splice(0)) res.end(name);
    },
  };
}

/** One request on a new connection (the primary hands each new connection to the next worker): its status, or the error. */
function fresh(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
      res.on('error', () => resolve('error'));
    });
    req.on('error', () => resolve('error'));
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** A GET on a new connection (so, in turn, to each worker): the body. */
function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

describe('cluster.workers: 2, limits and logs of the group', () => {
  let capped: HoldingOrigin;
  let open: HoldingOrigin;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null>;
  let out = '';
  let dir = '';
  let file = '';
  let webPort = 0;
  let frontPort = 0;
  let gonePort = 0;

  const config = (): Record<string, unknown> => ({
    cluster: { workers: 2 },
    admin: { listen: '127.0.0.1:0' },
    stateDir: dir,
    listeners: [
      { name: 'web', protocol: 'http', listen: `127.0.0.1:${webPort}`, routes: [{ pool: 'capped' }] },
      { name: 'front', protocol: 'http', listen: `127.0.0.1:${frontPort}`, limits: { maxConnections: 4 }, routes: [{ pool: 'open' }] },
    ],
    pools: [
      { name: 'capped', queue: { max: 0 }, servers: [{ name: 'c', address: capped.origin.address, maxConnections: 4 }] },
      {
        name: 'open',
        health: { type: 'http', path: '/health', interval: '100ms', timeout: '2s', rise: 1, fall: 1 },
        servers: [
          { name: 'o', address: open.origin.address },
          { name: 'gone', address: `127.0.0.1:${gonePort}` },
        ],
      },
    ],
  });

  before(async () => {
    capped = await holdingOrigin('capped');
    open = await holdingOrigin('open');
    webPort = await freePort();
    frontPort = await freePort();
    gonePort = await freePort(); // nothing listens there: its probes fail
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-limits-'));
    file = join(dir, 'portico.json');
    writeFileSync(file, JSON.stringify(config()));
    child = spawn(process.execPath, [join(ROOT, 'bin', 'portico'), 'start', '-c', file], { cwd: dir });
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    exited = new Promise((resolve) => child!.on('close', (code) => resolve(code)));
    await waitFor(() => count(out, /listener front on/g) >= 2 || child!.exitCode !== null, 60_000, 'two workers to listen');
    assert.equal(child.exitCode, null, out);
  });

  after(async () => {
    capped?.release();
    open?.release();
    if (child !== undefined && child.exitCode === null) {
      const pids = children(child.pid!);
      child.kill('SIGKILL');
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
    }
    await Promise.all([capped?.origin.close(), open?.origin.close()]);
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it("a server's maxConnections 4 is the group's: 10 clients on both workers, at most 4 requests reach it at once", async () => {
    const results: Promise<string>[] = [];
    for (let i = 0; i < 10; i++) {
      results.push(fresh(webPort));
      await new Promise((r) => setTimeout(r, 20));
    }
    const refused: string[] = [];
    for (const r of results) void r.then((s) => refused.push(s));
    // Each worker (5 connections each) sends 2 and answers 503 to 3 (no queue).
    await waitFor(() => refused.length === 6 && capped.held() === 4, 15_000, 'six refused, four held at the server');
    process.stdout.write(`# workers-limits: server maxConnections 4, 10 clients: ${capped.held()} held at the server, answers ${refused.join(',')}\n`);
    assert.equal(capped.most(), 4, 'both workers sent their share, and no more');
    assert.deepEqual(refused, ['503', '503', '503', '503', '503', '503']);
    capped.release();
    assert.deepEqual((await Promise.all(results)).filter((s) => s === '200').length, 4);
  });

  it("a listener's maxConnections 4 is the group's: of 10 clients, 4 are served at once", async () => {
    const results: Promise<string>[] = [];
    for (let i = 0; i < 10; i++) {
      results.push(fresh(frontPort));
      await new Promise((r) => setTimeout(r, 20));
    }
    const closed: string[] = [];
    for (const r of results) void r.then((s) => closed.push(s));
    await waitFor(() => closed.length === 6 && open.held() === 4, 15_000, 'six connections refused, four held at the server');
    process.stdout.write(`# workers-limits: listener maxConnections 4, 10 clients: ${open.held()} held at the server\n`);
    assert.equal(open.most(), 4, 'both workers admitted their share, and no more');
    assert.deepEqual(closed, ['error', 'error', 'error', 'error', 'error', 'error']);
    open.release();
    assert.deepEqual((await Promise.all(results)).filter((s) => s === '200').length, 4);
  });

  it('a worker started after a probe took a server down logs the change with its detail', async () => {
    const down = /server open\/gone op starting -> down cause=probe detail=1 probe failed, last: refused/g;
    await waitFor(() => count(out, down) >= 2, 15_000, 'both workers to log gone down');
    const [victim] = children(child!.pid!);
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => count(out, /listener front on/g) >= 3, 60_000, 'a new worker to listen');
    await waitFor(() => count(out, down) >= 3, 15_000, 'the new worker to log gone down with the detail');
    assert.equal(count(out, /server open\/gone op \S+ -> down cause=probe(?! detail=1 probe failed)/g), 0, 'no change to down without its detail');
  });

  it('an invalid file on SIGHUP is refused once, by the primary; a valid one is applied once by each worker', async () => {
    const gens = count(out, /reload: generation \d+/g);
    writeFileSync(file, JSON.stringify({ ...config(), pools: [{ name: 'capped', balance: 'fastest-ever', servers: [{ name: 'a', address: 'nowhere' }] }] }));
    child!.kill('SIGHUP');
    await waitFor(() => count(out, /reload refused/g) >= 1, 15_000, 'the refusal');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(count(out, /reload refused/g), 1, out.slice(-2000));
    assert.equal(count(out, /unknown balancer/g), 1);
    assert.equal(count(out, /reload: generation \d+/g), gens, 'no worker reloaded');
    // Every worker's status shows the refused reload as its last.
    const admin = Number(/admin API on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
    const seen = new Map<number, boolean>();
    for (let i = 0; i < 6; i++) {
      const st = JSON.parse(await getText(admin, '/api/v1/status?scope=worker')) as { pid: number; config: { lastReload: { ok: boolean; errors?: string[] } } };
      seen.set(st.pid, st.config.lastReload.ok === false && (st.config.lastReload.errors ?? []).some((e) => e.includes('fastest-ever')));
    }
    assert.deepEqual([...seen.values()], [true, true], JSON.stringify([...seen]));
    writeFileSync(file, JSON.stringify(config()));
    child!.kill('SIGHUP');
    await waitFor(() => count(out, /reload: generation \d+/g) >= gens + 2, 15_000, 'both workers to reload');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(count(out, /reload: generation \d+/g), gens + 2);
    assert.equal(count(out, /reload refused/g), 1);
  });

  it('POST /api/v1/reload through one worker reloads every worker; an invalid file is refused once, with every issue', async () => {
    const admin = Number(/admin API on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
    const post = async (): Promise<{ status: number; body: any }> => {
      const res = await fetch(`http://127.0.0.1:${admin}/api/v1/reload`, { method: 'POST' });
      return { status: res.status, body: await res.json() };
    };
    const gens = count(out, /reload: generation \d+/g);
    const ok = await post();
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(typeof ok.body.generation, 'number');
    await waitFor(() => count(out, /reload: generation \d+/g) >= gens + 2, 15_000, 'both workers to reload');
    const refused = count(out, /reload refused/g);
    writeFileSync(file, JSON.stringify({ ...config(), pools: [{ name: 'capped', balance: 'fastest-ever', servers: [{ name: 'a', address: 'nowhere' }] }] }));
    const bad = await post();
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.equal(bad.body.error.code, 'LB_CONFIG_INVALID');
    // The balancer, the address, and the pool 'open' the listener 'front' routes to.
    assert.equal(bad.body.error.issues.length, 3, JSON.stringify(bad.body));
    assert.ok(bad.body.error.issues.some((i: { message: string }) => /fastest-ever/.test(i.message)));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(count(out, /reload refused/g), refused + 1, 'refused once, by the primary');
    assert.equal(count(out, /reload: generation \d+/g), gens + 2, 'no worker reloaded');
    writeFileSync(file, JSON.stringify(config()));
  });
});
