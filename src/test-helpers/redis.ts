/**
 * A real redis-server for tests, started from its binary on a free loopback port with no
 * persistence, and stopped after. Where the binary is missing, tests are skipped with the
 * reason (`redisSkip()`), except under CI=true, where that is a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './origins.js';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Kill the server with SIGKILL (a crash) and wait for it to exit. */
  kill(): Promise<void>;
  /** Start it again on the same port (after kill). */
  restart(): Promise<void>;
  /** Freeze the server (SIGSTOP): connections stay open, nothing is answered; resume() undoes it. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER ?? 'redis-server';

/** Why Redis tests cannot run here (undefined: they can). Throws under CI=true instead of skipping. */
export function redisSkip(): string | undefined {
  const r = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (r.error === undefined && r.status === 0) return undefined;
  const why = `${BINARY} not found (install Debian's redis-server package)`;
  if (process.env.CI === 'true') throw new Error(`${why}: CI=true requires it`);
  return `${why}: Redis tests skipped`;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let out = '';
  const launch = async (): Promise<void> => {
    out = '';
    const c = spawn(BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (out += d));
    const until = Date.now() + 10_000;
    for (let i = 0; i < 1000 && Date.now() < until; i++) {
      if (c.exitCode !== null) break;
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    c.kill('SIGKILL');
    throw new Error(`redis-server did not start on port ${port}: ${out}`);
  };
  const exit = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await gone;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill: () => exit('SIGKILL'),
    restart: launch,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    stop: () => exit('SIGTERM'),
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
