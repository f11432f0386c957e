import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'portico');

interface Client {
  ok: number;
  failed: string[];
  /** Connections opened to Portico (1 when keep-alive survived every reload). */
  sockets: number;
}

/** Requests one after another on one keep-alive connection until `done()` (and at least `min` of them). */
async function runClient(port: number, done: () => boolean, c: Client, min = 0): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 100_000 && (i < min || !done()); i++) {
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: `/r${i}`, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            if (res.statusCode === 200) c.ok++;
            else c.failed.push(`${res.statusCode} ${body.slice(0, 80)}`);
            resolve();
          });
          res.on('error', (err) => {
            c.failed.push(String(err));
            resolve();
          });
        });
        req.on('socket', () => {
          if (!req.reusedSocket) c.sockets++;
        });
        req.on('error', (err) => {
          c.failed.push(String(err));
          resolve();
        });
        req.end();
      });
    }
  } finally {
    agent.destroy();
  }
}

async function postReload(adminPort: number): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/api/v1/reload`, { method: 'POST' });
  return { status: res.status, body: await res.json() };
}

describe('hot reload under load', () => {
  let origins: Origin[];
  let dir: string;
  let file: string;
  let child: ChildProcess;
  let out = '';
  let webPort = 0;
  let adminPort = 0;

  /** A: two servers, round robin. B: a third server, another algorithm, new limits, one more listener and pool. */
  const configA = (): unknown => ({
    shutdownGrace: '2s',
    admin: { listen: '127.0.0.1:0' },
    stateDir: join(dir, 'state'),
    listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${webPort}`, routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', balance: 'roundrobin', servers: origins.slice(0, 2).map((o) => ({ name: o.name, address: o.address })) }],
  });
  const configB = (): unknown => ({
    shutdownGrace: '2s',
    admin: { listen: '127.0.0.1:0' },
    stateDir: join(dir, 'state'),
    listeners: [
      { name: 'web', protocol: 'http', listen: `127.0.0.1:${webPort}`, limits: { maxHeaders: 90 }, routes: [{ match: { path: '/side/' }, pool: 'extra' }, { pool: 'web' }] },
      { name: 'side', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'extra' }] },
    ],
    pools: [
      { name: 'web', balance: 'leastconn', servers: origins.map((o, i) => ({ name: o.name, address: o.address, weight: i === 0 ? 2 : 1 })) },
      { name: 'extra', servers: [{ name: 'x', address: origins[2]!.address }] },
    ],
  });

  before(async () => {
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-reload-'));
    file = join(dir, 'portico.json');
    webPort = await freePort();
    writeFileSync(file, JSON.stringify(configA()));
    child = spawn(process.execPath, [bin, 'start', '-c', file], { cwd: dir });
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    await waitFor(() => /listener web on/.test(out) || child.exitCode !== null, 60_000, 'portico to start');
    assert.equal(child.exitCode, null, out);
    adminPort = Number(/admin API on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
  });
  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(origins.map((o) => o.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('20 reloads, every 500 ms (SIGHUP and the API in turn), while 8 keep-alive clients send requests: 0 failed', async () => {
    // Driven by counts: 20 reloads, each waited for; the clients run until the last one is done.
    let reloading = true;
    const clients: Client[] = Array.from({ length: 8 }, () => ({ ok: 0, failed: [], sockets: 0 }));
    const running = clients.map((c) => runClient(webPort, () => !reloading, c, 60));
    let reloads = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 500));
      writeFileSync(file, JSON.stringify(i % 2 === 0 ? configB() : configA()));
      if (i % 4 < 2) {
        const before = (out.match(/reload: generation \d+/g) ?? []).length;
        child.kill('SIGHUP');
        await waitFor(() => (out.match(/reload: generation \d+/g) ?? []).length > before, 15_000, `SIGHUP reload ${i}`);
      } else {
        const r = await postReload(adminPort);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      reloads++;
    }
    reloading = false;
    await Promise.all(running);
    const failed = clients.flatMap((c) => c.failed);
    const ok = clients.reduce((n, c) => n + c.ok, 0);
    assert.deepEqual(failed, [], `${failed.length} failed of ${ok + failed.length}`);
    assert.equal(reloads, 20);
    assert.ok(ok >= 8 * 60, `${ok} requests`);
    assert.deepEqual(
      clients.map((c) => c.sockets),
      [1, 1, 1, 1, 1, 1, 1, 1],
      'every client kept its one connection through every reload',
    );
    assert.ok(origins[2]!.seen.length > 0, 'the server that configuration B adds took traffic');
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/status`)).json()) as any;
    assert.equal(status.config.generation, 1 + reloads);
  });

  it('an invalid file is refused (API and SIGHUP) with every error, and traffic is unaffected', async () => {
    const generation = ((await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/status`)).json()) as any).config.generation;
    writeFileSync(file, JSON.stringify({ ...(configA() as object), pools: [{ name: 'web', balance: 'fastest-ever', servers: [{ name: 'a', address: 'nowhere' }] }] }));
    let refusing = true;
    const clients: Client[] = Array.from({ length: 8 }, () => ({ ok: 0, failed: [], sockets: 0 }));
    const running = clients.map((c) => runClient(webPort, () => !refusing, c, 20));
    const r = await postReload(adminPort);
    assert.equal(r.status, 422);
    assert.equal(r.body.error.code, 'LB_CONFIG_INVALID');
    assert.equal(r.body.error.issues.length, 2);
    const refusedBefore = (out.match(/reload refused/g) ?? []).length;
    child.kill('SIGHUP');
    await waitFor(() => (out.match(/reload refused/g) ?? []).length > refusedBefore, 15_000, 'SIGHUP refusal logged');
    assert.match(out, /unknown balancer \\"fastest-ever\\"/);
    refusing = false;
    await Promise.all(running);
    assert.deepEqual(clients.flatMap((c) => c.failed), []);
    assert.ok(clients.every((c) => c.ok > 10));
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/status`)).json()) as any;
    assert.equal(status.config.generation, generation);
    assert.equal(status.config.lastReload.ok, false);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 0);
  });
});
