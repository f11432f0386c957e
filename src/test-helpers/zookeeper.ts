import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './origins.js';
import { superviseService } from './service.js';

/** A real ZooKeeper (Debian's zookeeper package) started in the foreground with its own dataDir and port. */
export interface ZookeeperProcess {
  readonly port: number;
  output(): string;
  stop(): Promise<void>;
}

const ZK_SERVER = process.env.ZK_SERVER_SH ?? '/usr/share/zookeeper/bin/zkServer.sh';

/** zkServer.sh and java, or why they are missing (the test is then skipped, or fails under CI=true). */
export function zookeeperScript(): { path: string } | { missing: string } {
  if (!existsSync(ZK_SERVER)) return { missing: `ZooKeeper is not installed (${ZK_SERVER}; Debian package zookeeperd)` };
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.status !== 0) return { missing: 'java is not installed (ZooKeeper needs it; Debian package zookeeperd brings it)' };
  return { path: ZK_SERVER };
}

/** node:test `skip` option: false when ZooKeeper is there; the reason when it is not; throws under CI=true. */
export function skipWithoutZookeeper(): false | string {
  const z = zookeeperScript();
  if ('path' in z) return false;
  if (process.env.CI === 'true') throw new Error(`${z.missing}; CI needs it`);
  return z.missing;
}

/** Ask a four-letter word; the answer, or '' when there is none. */
export function fourLetterWord(port: number, word: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = connect({ host: '127.0.0.1', port }, () => s.write(word));
    const t = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (c) => (out += String(c)));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

/**
 * Start ZooKeeper with a generated zoo.cfg (tick 500 ms, so sessions may be as short as 1 s;
 * admin server off; ruok and srvr allowed) and wait until it answers `ruok` with `imok`. A JVM
 * takes seconds to start on a busy machine: the bound is generous.
 */
export async function startZookeeper(): Promise<ZookeeperProcess> {
  const z = zookeeperScript();
  if (!('path' in z)) throw new Error(z.missing);
  const dir = mkdtempSync(join(tmpdir(), 'portico-zk-'));
  const port = await freePort();
  const cfg = join(dir, 'zoo.cfg');
  writeFileSync(
    cfg,
    [
      'tickTime=500',
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr',
      'minSessionTimeout=1000',
      'maxSessionTimeout=20000',
      'initLimit=10',
      'syncLimit=5',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('bash', [z.path, 'start-foreground', cfg], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, JMXDISABLE: 'true', ZOO_LOG_DIR: join(dir, 'log'), SERVER_JVMFLAGS: '-Xmx128m -XX:TieredStopAtLevel=1' },
  });
  const svc = await superviseService(
    child,
    dir,
    'ZooKeeper',
    async () => (await fourLetterWord(port, 'ruok')) === 'imok' && /Mode: standalone/.test(await fourLetterWord(port, 'srvr')),
    90_000,
  );
  return { port, ...svc };
}
