import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type Socket } from 'node:net';

export interface Origin {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** Requests this origin received (method url). */
  readonly seen: string[];
  /** Raw request heads received, for strictness tests. */
  readonly heads: IncomingMessage[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, origin: Origin) => void;

const defaultHandler: Handler = (req, res, origin) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': origin.name });
  res.end(origin.name);
};

/** An origin's behaviour for one path. */
export type PathHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * An origin answering each path with its handler (404 for the others), counting the requests by
 * path (the query left out) in `hits`.
 */
export async function startRoutedOrigin(routes: Record<string, PathHandler>): Promise<{ origin: Origin; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const origin = await startOrigin('o', (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const r = routes[path];
    if (r === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    r(req, res);
  });
  return { origin, hits };
}

/** Start an HTTP origin on 127.0.0.1 at a free port that answers with its name (or runs `handler`). */
export async function startOrigin(name: string, handler: Handler = defaultHandler, port = 0): Promise<Origin> {
  const seen: string[] = [];
  const heads: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer();
  const origin = {
    name,
    port: 0,
    address: '',
    seen,
    heads,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('request', (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    heads.push(req);
    handler(req, res, origin);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const a = server.address();
  origin.port = a !== null && typeof a === 'object' ? a.port : 0;
  origin.address = `127.0.0.1:${origin.port}`;
  return origin;
}

export async function startOrigins(n: number, handler?: Handler): Promise<Origin[]> {
  const out: Origin[] = [];
  for (let i = 0; i < n; i++) out.push(await startOrigin(`o${i + 1}`, handler));
  return out;
}

/**
 * A port with nothing listening (bound, then released), taken below the kernel's ephemeral range
 * (`ip_local_port_range`). A port from that range could be handed to another process's `listen(0)`
 * or to an outgoing connection the moment it is released: a test's "dead" server would then
 * answer, or a port a test meant to bind would be taken. Below the range only another caller of
 * this function can land on the same port, one chance in some thousands, and the bind here
 * proves it free at the time.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const top = Math.min(low, 65536);
  const bottom = 10_000;
  if (top - bottom >= 1_000) {
    for (let i = 0; i < 64; i++) {
      const port = bottom + Math.floor(Math.random() * (top - bottom));
      if (await bindsFree(port)) return port;
    }
  }
  // No room below the range (or all tries taken): a port from the kernel.
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const a = srv.address();
  const port = a !== null && typeof a === 'object' ? a.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

let range: [number, number] | undefined;

function ephemeralRange(): [number, number] {
  if (range !== undefined) return range;
  range = [32768, 60999];
  try {
    const parts = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (parts.length === 2 && parts.every((n) => Number.isInteger(n) && n > 0)) range = [parts[0]!, parts[1]!];
  } catch {
    // Not Linux: the IANA dynamic range starts at 49152, above the default kept here.
  }
  return range;
}

function bindsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createNetServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A TCP server whose every byte the test sees (a server that answers as a test wants, framing anomalies included). */
export interface RawServer {
  readonly port: number;
  /** Its open connections. */
  readonly sockets: Set<Socket>;
  /** Stops listening and destroys the connections left. */
  close(): Promise<void>;
}

/** Starts a TCP server on 127.0.0.1 at a free port that hands each connection to `onSocket`; socket errors are ignored. */
export async function startRawServer(onSocket: (s: Socket) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  return {
    port: a !== null && typeof a === 'object' ? a.port : 0,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Send raw bytes on a new connection and collect everything until the server closes or `ms` pass. */
export function rawRequest(port: number, data: string | Buffer | (string | Buffer)[], ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const end = (): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const t = setTimeout(end, ms);
    sock.on('data', (c) => chunks.push(c));
    sock.on('close', end);
    sock.on('error', end);
    sock.on('connect', async () => {
      const parts = Array.isArray(data) ? data : [data];
      for (const p of parts) {
        if (sock.destroyed) break;
        sock.write(p);
        if (parts.length > 1) await new Promise((r) => setTimeout(r, 5));
      }
    });
  });
}

/** Wait until `fn` returns true, polling; throws after `ms`. */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface PorticoProcess {
  readonly pid: number;
  readonly output: () => string;
  /** The exit code once the process has exited; null while it runs. */
  exitCode(): number | null;
  /** Resident memory now and at its peak, in bytes (Linux /proc). */
  memory(): { rss: number; peak: number };
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `config` with `cluster.workers: 1` unless it sets cluster.workers. The default is one worker per
 * core; the tests that start Portico as a process test one process's behaviour (exact balancing
 * sequences across connections, one process's counters, logs and memory), so they run one worker
 * unless they ask for more. The default itself is tested in src/test/integration/cli.test.ts.
 */
export function oneWorker(config: unknown): unknown {
  if (typeof config !== 'object' || config === null) return config;
  const cluster = (config as { cluster?: unknown }).cluster;
  if (typeof cluster === 'object' && cluster !== null && 'workers' in cluster) return config;
  return { ...config, cluster: { ...(typeof cluster === 'object' && cluster !== null ? cluster : {}), workers: 1 } };
}

/** Run `bin/portico start` in a child process with `config` (written as JSON); resolves once every listener is up. */
export async function spawnPortico(config: unknown, listeners = 1): Promise<PorticoProcess> {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, dirname } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = mkdtempSync(join(tmpdir(), 'portico-'));
  const file = join(dir, 'portico.json');
  // The admin API binds 127.0.0.1:9090 by default; tests run side by side, so it takes a free port unless the test says otherwise.
  const withAdmin = typeof config === 'object' && config !== null && !('admin' in config) ? { ...config, admin: { listen: '127.0.0.1:0' } } : config;
  writeFileSync(file, JSON.stringify(oneWorker(withAdmin)));
  const child = spawn(process.execPath, [join(root, 'bin', 'portico'), 'start', '-c', file], { cwd: dir });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    await waitFor(() => (out.match(/listener \S+ on/g) ?? []).length >= listeners || child.exitCode !== null, 60_000, 'portico to start');
  } catch (e) {
    // Not started in time: the process must not outlive the test that gave up on it.
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${(e as Error).message}; its output: ${out}`);
  }
  if (child.exitCode !== null) throw new Error(`portico exited: ${out}`);
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  };
  return {
    pid: child.pid!,
    output: () => out,
    exitCode: () => child.exitCode ?? (child.signalCode !== null ? -1 : null),
    memory: () => ({ rss: kb('VmRSS'), peak: kb('VmHWM') }),
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
