import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { send as fetchText } from '../../test-helpers/http.js';
import { freePort, startOrigin, waitFor } from '../../test-helpers/origins.js';
import { query, read, udpQuery } from '../../dns/testing.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'portico');

function run(args: string[], cwd = root): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function portFree(port: number): Promise<boolean> {
  const srv = createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function waitOutput(child: ChildProcess, re: RegExp, ms = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`no ${re} in output: ${out}`)), ms);
    const on = (c: Buffer): void => {
      out += c.toString();
      if (re.test(out)) {
        clearTimeout(t);
        resolve(out);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
  });
}

describe('portico command line', () => {
  it('check: a valid file exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    const f = join(dir, 'ok.yaml');
    writeFileSync(
      f,
      'listeners:\n  - name: web\n    protocol: http\n    listen: 127.0.0.1:8080\n    routes: [ { pool: web } ]\npools:\n  - name: web\n    servers:\n      - { name: a, address: 127.0.0.1:9101 }\n',
    );
    const r = await run(['check', '-c', f]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('check: every error with FILE:LINE:COL key: message, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(
      f,
      [
        'listeners:',
        '  - name: web',
        '    protocol: http',
        '    listen: 127.0.0.1:99999',
        '    routes: [ { pool: nope } ]',
        'pools:',
        '  - name: web',
        '    balanse: roundrobin',
        '    servers:',
        '      - { name: a, address: 127.0.0.1:9101 }',
        '      - { name: a, address: 127.0.0.1:9102 }',
        '',
      ].join('\n'),
    );
    const r = await run(['check', '-c', f]);
    assert.equal(r.code, 1);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length >= 4, r.stdout);
    for (const l of lines) assert.match(l, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ \\S+: .+`));
    assert.ok(lines.some((l) => l.includes(':4:')), 'port error on line 4');
    assert.ok(lines.some((l) => l.includes(':5:')), 'route pool error on line 5');
    assert.ok(lines.some((l) => l.includes(':8:')), 'unknown key on line 8');
    assert.ok(lines.some((l) => l.includes(':11:')), 'duplicate server on line 11');
  });

  it('start: serves, then SIGTERM lets an in-flight request finish and exits 0', async () => {
    const slow = await startOrigin('slow', (_req, res) => setTimeout(() => res.end('finished'), 800));
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    const f = join(dir, 'portico.yaml');
    writeFileSync(
      f,
      `admin: { listen: 127.0.0.1:0 }\nlisteners:\n  - name: web\n    protocol: http\n    listen: 127.0.0.1:${port}\n    routes: [ { pool: web } ]\npools:\n  - name: web\n    servers:\n      - { name: slow, address: ${slow.address} }\n`,
    );
    const child = spawn(process.execPath, [bin, 'start', '-c', f], { cwd: dir });
    try {
      await waitOutput(child, /listener web on/);
      const pending = fetchText(port, '/slow');
      await waitFor(() => slow.seen.length === 1, 15_000, 'request at origin');
      child.kill('SIGTERM');
      const r = await pending;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'finished');
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      assert.equal(code, 0);
    } finally {
      child.kill('SIGKILL');
      await slow.close();
    }
  });

  it('start without cluster.workers: one worker process per core (availableParallelism), each serving', async () => {
    const n = availableParallelism();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    const f = join(dir, 'portico.yaml');
    writeFileSync(
      f,
      `admin: { listen: 127.0.0.1:0 }\nstateDir: ${dir}\nlisteners:\n  - name: web\n    protocol: http\n    listen: 127.0.0.1:${port}\n    routes: [ { pool: web } ]\npools:\n  - name: web\n    health: { type: none }\n    servers:\n      - { name: a, address: 127.0.0.1:1 }\n`,
    );
    const child = spawn(process.execPath, [bin, 'start', '-c', f], { cwd: dir });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    const kids = (): number[] => {
      try {
        return readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    };
    try {
      await waitFor(() => (out.match(/listener web on/g) ?? []).length >= n || child.exitCode !== null, 60_000, `${n} listener lines`);
      process.stdout.write(`# cli: availableParallelism() = ${n}; portico start without cluster.workers runs ${kids().length} worker processes\n`);
      if (n > 1) {
        assert.match(out, new RegExp(`primary ${child.pid}: ${n} workers`));
        assert.equal(kids().length, n, out);
      } else {
        assert.equal(kids().length, 0, 'one core: Portico runs alone, without a primary');
      }
      assert.equal((out.match(/listener web on/g) ?? []).length, n);
      child.kill('SIGTERM');
      assert.equal(await closed, 0, out);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const pid of kids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });

  it('demo: three servers behind the http listener on :8080', async (t) => {
    for (const p of [8080, 9090, 9101, 9102, 9103, 5353]) {
      if (!(await portFree(p))) {
        if (process.env.CI === 'true') assert.fail(`port ${p} is busy; the demo needs it`);
        t.skip(`port ${p} is busy`);
        return;
      }
    }
    const child = spawn(process.execPath, [bin, 'demo'], { cwd: root });
    try {
      const out = await waitOutput(child, /Stop with Ctrl-C/);
      assert.match(out, /http:\/\/127\.0\.0\.1:8080\//);
      assert.match(out, /http:\/\/127\.0\.0\.1:9090\/api\/v1\/status/);
      const status = (await (await fetch('http://127.0.0.1:9090/api/v1/status')).json()) as { listeners: { name: string }[] };
      assert.ok(status.listeners.some((l) => l.name === 'web'), 'the admin API of the demo answers');
      // the dashboard and the metrics of SPEC §1 are on the admin listener too
      assert.match(out, /dashboard +http:\/\/127\.0\.0\.1:9090\/ /);
      assert.match(out, /metrics +http:\/\/127\.0\.0\.1:9090\/metrics /);
      assert.match(await (await fetch('http://127.0.0.1:9090/')).text(), /<title>Portico<\/title>/);
      assert.match(await (await fetch('http://127.0.0.1:9090/metrics')).text(), /^# TYPE portico_requests_total counter$/m);
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await fetchText(8080);
        assert.equal(r.status, 200);
        seen.add(r.body.split('\n')[0]!);
      }
      assert.deepEqual([...seen].sort(), ['hello from web1', 'hello from web2', 'hello from web3']);
      // the dns listener of SPEC §1 answers for the demo zone from the web pool
      assert.match(out, /127\.0\.0\.1:5353 .*demo\.portico\.test/);
      const srv = read((await udpQuery(5353, query('_http._tcp.demo.portico.test', 'SRV')))!);
      assert.deepEqual(srv.packet.answers!.map((a) => (a as { data: { port: number } }).data.port).sort(), [9101, 9102, 9103]);
      assert.deepEqual(read((await udpQuery(5353, query('www.demo.portico.test', 'A')))!).data('A'), ['127.0.0.1']);
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      assert.equal(code, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
