import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './origins.js';
import { superviseService } from './service.js';

/** A real etcd started from its binary (Debian's etcd-server) with its own data directory. */
export interface EtcdProcess {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly port: number;
  output(): string;
  stop(): Promise<void>;
}

/** The etcd binary, or why there is none (the test is then skipped, or fails under CI=true). */
export function etcdBinary(): { path: string } | { missing: string } {
  for (const p of [process.env.ETCD_BIN, '/usr/bin/etcd', '/usr/local/bin/etcd']) {
    if (p === undefined || p === '') continue;
    const r = spawnSync(p, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return { path: p };
  }
  return { missing: 'etcd is not installed (Debian package etcd-server)' };
}

/** node:test `skip` option: false when etcd is there; the reason when it is not; throws under CI=true. */
export function skipWithoutEtcd(): false | string {
  const b = etcdBinary();
  if ('path' in b) return false;
  if (process.env.CI === 'true') throw new Error(`${b.missing}; CI needs it`);
  return b.missing;
}

export async function startEtcd(): Promise<EtcdProcess> {
  const b = etcdBinary();
  if (!('path' in b)) throw new Error(b.missing);
  const dir = mkdtempSync(join(tmpdir(), 'portico-etcd-'));
  const port = await freePort();
  const peer = await freePort();
  const client = `http://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const child: ChildProcess = spawn(
    b.path,
    [
      '--name', 'test',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `test=${peerUrl}`,
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' } },
  );
  const svc = await superviseService(
    child,
    dir,
    'etcd',
    async () => {
      try {
        return (await fetch(`${client}/health`)).ok;
      } catch {
        return false;
      }
    },
    15_000,
  );
  return { endpoint: client, port, ...svc };
}
