import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, startOrigin, waitFor, type Origin } from '../../test-helpers/origins.js';

/**
 * `cluster.workers: 2` for real: `portico start` forks two workers behind one listening socket.
 * Probes run once (in the primary) and their results reach both workers; a change made through
 * the admin API reaches both (their store is the primary's); SIGHUP reloads both; a worker that
 * is killed is replaced while the other's connections go on; SIGTERM ends them all.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const INTERVAL_MS = 100;

/** One kept-alive client connection: requests in turn, answers read by content-length. */
class Conn {
  private buf = '';
  private waiting: ((body: string | Error) => void) | undefined;
  closed = false;
  private constructor(private readonly sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => {
      this.buf += c;
      this.drain();
    });
    const end = (): void => {
      this.closed = true;
      this.waiting?.(new Error('connection closed'));
      this.waiting = undefined;
    };
    sock.on('close', end);
    sock.on('error', end);
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new Conn(s)));
      s.once('error', reject);
    });
  }

  get(): Promise<string> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error('no answer within 3 s'));
      }, 3000);
      this.waiting = (r) => {
        clearTimeout(t);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.sock.write('GET / HTTP/1.1\r\nHost: portico.test\r\n\r\n');
    });
  }

  private drain(): void {
    const head = this.buf.indexOf('\r\n\r\n');
    if (head < 0) return;
    const m = /\r\ncontent-length: *(\d+)/i.exec(this.buf.slice(0, head));
    const len = m === null ? 0 : Number(m[1]);
    if (this.buf.length < head + 4 + len) return;
    const body = this.buf.slice(head + 4, head + 4 + len);
    this.buf = this.buf.slice(head + 4 + len);
    const w = this.waiting;
    this.waiting = undefined;
    w?.(body);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A request on a new connection (the primary hands each new connection to the next worker). */
function fresh(port: number, method = 'GET', path = '/', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

async function answers(port: number, n: number): Promise<Set<string>> {
  const out = new Set<string>();
  for (let i = 0; i < n; i++) out.add((await fresh(port)).body);
  return out;
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('cluster.workers: 2', () => {
  const health = new Map<string, boolean>([
    ['o1', true],
    ['o2', true],
  ]);
  const probes = new Map<string, number>([
    ['o1', 0],
    ['o2', 0],
  ]);
  let origins: Origin[] = [];
  let child: ChildProcess | undefined;
  let out = '';
  let dir = '';
  let file = '';
  let port = 0;
  let adminPort = 0;
  let exited: Promise<number | null>;
  const conns: Conn[] = [];

  const config = (o1State: 'ready' | 'maint'): unknown => ({
    cluster: { workers: 2 },
    admin: { listen: `127.0.0.1:${adminPort}` },
    listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
    pools: [
      {
        name: 'web',
        health: { type: 'http', path: '/health', interval: `${INTERVAL_MS}ms`, timeout: '2s', rise: 1, fall: 1 },
        servers: origins.map((o) => ({ name: o.name, address: o.address, ...(o.name === 'o1' ? { state: o1State } : {}) })),
      },
    ],
  });

  before(async () => {
    for (const name of ['o1', 'o2']) {
      origins.push(
        await startOrigin(name, (req, res, o) => {
          if (req.url === '/health') {
            probes.set(o.name, probes.get(o.name)! + 1);
            res.writeHead(health.get(o.name) ? 200 : 503).end();
            return;
          }
          res.end(o.name);
        }),
      );
    }
    port = await freePort();
    adminPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-'));
    file = join(dir, 'portico.json');
    writeFileSync(file, JSON.stringify({ ...(config('ready') as object), stateDir: dir }));
    child = spawn(process.execPath, [join(ROOT, 'bin', 'portico'), 'start', '-c', file], { cwd: dir });
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    exited = new Promise((resolve) => child!.on('close', (code) => resolve(code)));
    await waitFor(() => (out.match(/listener web on/g) ?? []).length >= 2 || child!.exitCode !== null, 60_000, 'two workers to listen');
    assert.equal(child.exitCode, null, out);
  });

  after(async () => {
    for (const c of conns) c.close();
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
    await Promise.all(origins.map((o) => o.close()));
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('forks two workers that share the listener, and both answer', async () => {
    assert.equal(children(child!.pid!).length, 2, out);
    assert.deepEqual([...(await answers(port, 8))].sort(), ['o1', 'o2']);
  });

  it('probes run once, in the primary, for all the workers', async () => {
    // Counted, not timed: 10 probes from one prober are at least 9 intervals apart in all (timers
    // never fire early, whatever the machine's speed); three probers would send them in about 3.
    const before = probes.get('o1')!;
    const t0 = performance.now();
    await waitFor(() => probes.get('o1')! - before >= 10, 15_000, '10 probes of o1');
    const ms = performance.now() - t0;
    process.stdout.write(`# workers: 10 probes of o1 took ${ms.toFixed(0)} ms at an interval of ${INTERVAL_MS} ms (three probers would take about ${3 * INTERVAL_MS})\n`);
    assert.ok(ms >= 8 * INTERVAL_MS, `10 probes in ${ms.toFixed(0)} ms: more than one prober`);
  });

  it("a probe's result reaches both workers", async () => {
    health.set('o2', false);
    try {
      await waitFor(async () => (await answers(port, 6)).has('o2') === false, 15_000, 'o2 taken out by every worker');
      assert.deepEqual([...(await answers(port, 20))], ['o1']);
    } finally {
      health.set('o2', true);
    }
    await waitFor(async () => (await answers(port, 6)).has('o2'), 15_000, 'o2 back');
  });

  it('a change through the admin API reaches both workers (their store is the primary\'s)', async () => {
    const r = await fresh(adminPort, 'PATCH', '/api/v1/pools/web/servers/o1', JSON.stringify({ state: 'maint' }));
    assert.equal(r.status, 200, r.body);
    await waitFor(async () => (await answers(port, 6)).has('o1') === false, 15_000, 'o1 in maint on every worker');
    assert.deepEqual([...(await answers(port, 20))], ['o2']);
    const back = await fresh(adminPort, 'PATCH', '/api/v1/pools/web/servers/o1', JSON.stringify({ state: 'ready' }));
    assert.equal(back.status, 200, back.body);
    await waitFor(async () => (await answers(port, 6)).has('o1'), 15_000, 'o1 ready again on every worker');
  });

  it('SIGHUP reloads every worker; a killed worker is replaced and the other keeps its connections', async () => {
    for (let i = 0; i < 10; i++) conns.push(await Conn.open(port));
    for (const c of conns) assert.ok(['o1', 'o2'].includes(await c.get()));
    // The file now puts o1 in maint: after SIGHUP, every kept connection (on either worker) is served by o2.
    writeFileSync(file, JSON.stringify({ ...(config('maint') as object), stateDir: dir }));
    child!.kill('SIGHUP');
    await waitFor(
      async () => {
        for (const c of conns) if ((await c.get()) !== 'o2') return false;
        return true;
      },
      15_000,
      'every connection served by o2 after the reload',
    );
    const [victim, survivor] = children(child!.pid!);
    assert.ok(victim !== undefined && survivor !== undefined);
    process.kill(victim, 'SIGKILL');
    await waitFor(() => conns.filter((c) => c.closed).length > 0, 15_000, "the killed worker's connections to close");
    await new Promise((r) => setTimeout(r, 100));
    const lost = conns.filter((c) => c.closed);
    const kept = conns.filter((c) => !c.closed);
    process.stdout.write(`# workers: SIGKILL of one worker closed ${lost.length} of ${conns.length} kept-alive connections; ${kept.length} went on\n`);
    assert.ok(kept.length > 0, 'the other worker kept its connections');
    for (const c of kept) assert.equal(await c.get(), 'o2');
    await waitFor(() => children(child!.pid!).length === 2 && !children(child!.pid!).includes(victim), 10_000, 'a new worker');
    await waitFor(() => (out.match(/listener web on/g) ?? []).length >= 3, 60_000, 'the new worker to listen');
    assert.ok(children(child!.pid!).includes(survivor), 'the other worker was left alone');
    // The new worker read the reloaded file, and has the probes' results.
    assert.deepEqual([...(await answers(port, 10))], ['o2']);
  });

  it('SIGTERM stops the workers and the primary (exit 0)', async () => {
    const pids = children(child!.pid!);
    child!.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 15_000))]);
    assert.equal(code, 0, out.slice(-2000));
    for (const p of pids) assert.throws(() => process.kill(p, 0), `worker ${p} is gone`);
  });
});
