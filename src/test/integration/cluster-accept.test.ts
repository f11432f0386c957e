import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, startOrigin, waitFor } from '../../test-helpers/origins.js';

/**
 * `cluster.accept`: with `primary` (node:cluster's round robin) only the primary holds the
 * listening socket and accepts, handing each connection to a worker; with `shared` every worker
 * holds it and accepts by itself, and the primary, which never polls it, accepts nothing. Both
 * serve every connection. Who holds the socket is read from /proc (Linux).
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function fresh(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
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

/** The inode of the socket listening on 127.0.0.1:port (/proc/net/tcp, state 0A). */
function listeningInode(port: number): string {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A') return f[9]!;
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** Whether process `pid` has the socket `inode` among its open files. */
function holds(pid: number, inode: string): boolean {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}

for (const accept of ['primary', 'shared'] as const) {
  describe(`cluster.accept: ${accept}`, { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
    it(`serves every connection; the listening socket is held by ${accept === 'shared' ? 'the workers, which accept' : 'the primary alone'}`, async () => {
      const origin = await startOrigin('o1');
      const dir = mkdtempSync(join(tmpdir(), 'portico-accept-'));
      let child: ChildProcess | undefined;
      let out = '';
      try {
        const port = await freePort();
        const file = join(dir, 'portico.json');
        writeFileSync(
          file,
          JSON.stringify({
            stateDir: dir,
            admin: { enabled: false },
            cluster: { workers: 2, accept },
            listeners: [{ name: 'web', protocol: 'http', listen: `127.0.0.1:${port}`, routes: [{ pool: 'web' }] }],
            pools: [{ name: 'web', servers: [{ name: 'o1', address: origin.address }] }],
          }),
        );
        const c = spawn(process.execPath, [join(ROOT, 'bin', 'portico'), 'start', '-c', file], { cwd: dir });
        child = c;
        c.stdout!.on('data', (d) => (out += d));
        c.stderr!.on('data', (d) => (out += d));
        await waitFor(() => (out.match(/listener web on/g) ?? []).length >= 2 || c.exitCode !== null, 60_000, 'two workers to listen');
        assert.equal(c.exitCode, null, out);
        assert.match(out, new RegExp(`connections accepted by ${accept === 'shared' ? 'the workers' : 'the primary'}`));

        for (let i = 0; i < 20; i++) assert.deepEqual(await fresh(port), { status: 200, body: 'o1' });

        const inode = listeningInode(port);
        const workers = children(c.pid!);
        assert.equal(workers.length, 2, out);
        const byWorker = workers.map((w) => holds(w, inode));
        if (accept === 'shared') {
          // Each worker accepts from the socket itself: no connection passes through the primary.
          assert.deepEqual(byWorker, [true, true]);
        } else {
          // Only the primary can accept: every connection is handed over.
          assert.deepEqual(byWorker, [false, false]);
          assert.equal(holds(c.pid!, inode), true);
        }
      } finally {
        if (child !== undefined && child.exitCode === null) {
          const pids = children(child.pid!);
          const closed = new Promise((r) => child!.on('close', r));
          child.kill('SIGKILL');
          for (const p of pids) {
            try {
              process.kill(p, 'SIGKILL');
            } catch {
              // already gone
            }
          }
          await closed;
        }
        await origin.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
