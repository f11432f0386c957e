import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';
import { startOrigin, spawnPortico, type PorticoProcess } from './origins.js';

/**
 * Black-box mutation fuzzing with zzuf (Debian package `zzuf`): recorded requests, each mutated by
 * `zzuf -s SEED -r RATIO cat FILE`, are sent to a Portico running as its own process (one worker),
 * over HTTP/1.1 (TCP) and DNS (UDP). It watches for the three failures a black box shows: a crash
 * (the process exits), a hang (a connection neither answered nor closed within the listener's
 * deadlines and a margin, or a valid request not served), and memory growth (resident memory at
 * the end against after the warm-up). Used by src/test/integration/zzuf.test.ts (bounded) and by
 * `npm run fuzz` (scripts/fuzz.mjs, under a time budget).
 */

/** Recorded HTTP/1.1 requests: plain, with a body, chunked with an extension and trailers, pipelined, upgrades, PROXY-less junk. */
export const HTTP_CORPUS: readonly string[] = [
  'GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: zzuf\r\nAccept: */*\r\n\r\n',
  'POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nhello=world',
  'POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: example.com\r\n\r\nGET /second HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
  'GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  'PUT /x HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: keep-alive, Content-Length\r\n\r\nbody',
  'GET http://b.example/abs HTTP/1.1\r\nHost: a.example\r\nCookie: a=b; c=d\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n',
];

export const DNS_CORPUS: readonly Buffer[] = [
  dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'www.example.com', type: 'A', class: 'IN' }] }),
  dnsPacket.encode({
    type: 'query',
    id: 8,
    questions: [{ name: 'www.example.com', type: 'AAAA', class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [{ code: 'CLIENT_SUBNET', family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: '10.1.2.0' }] } as unknown as dnsPacket.Answer],
  }),
  dnsPacket.encode({ type: 'query', id: 9, questions: [{ name: 'example.com', type: 'SOA', class: 'IN' }] }),
];

export interface ZzufOptions {
  /** Seeds to use, from this one on. */
  readonly firstSeed: number;
  /** Stop after this many seeds (each seed mutates every corpus entry once). */
  readonly seeds: number;
  /** Stop when this much time has passed, whatever `seeds` says (0: no limit). */
  readonly budgetMs?: number;
  /** zzuf's fuzzing ratio, the fraction of bits changed: a number, or a range `min:max` zzuf draws from per seed. */
  readonly ratio?: string;
  /** A working directory for the corpus files. */
  readonly dir: string;
  /** Called with a line of progress now and then. */
  readonly progress?: (line: string) => void;
}

export interface ZzufReport {
  sent: number;
  /** First status code of each HTTP answer, 'closed' for a close without one, 'dns' for DNS answers. */
  readonly outcomes: Map<string, number>;
  /** Connections still open, unanswered, past the deadlines. */
  readonly hangs: string[];
  /** Valid requests that were not served during the run (checked after every seed). */
  readonly unserved: string[];
  /** Set when the Portico process exited during the run. */
  crashed: string | undefined;
  /** Resident memory (bytes) after the first seed, at the end, and at the peak. */
  rssAfterWarmup: number;
  rssEnd: number;
  rssPeak: number;
  seedsRun: number;
  lastSeed: number;
}

/** The bytes `zzuf -s seed -r ratio cat file` writes. */
export function zzufMutate(file: string, seed: number, ratio: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('zzuf', ['-s', String(seed), '-r', String(ratio), 'cat', file], { encoding: 'buffer', maxBuffer: 1 << 20 }, (err, stdout) => (err !== null ? reject(err) : resolve(stdout)));
  });
}

/** Listener deadlines of the Portico under test: a mutated request that stops short is cut at these. */
const HEADER_TIMEOUT_MS = 500;
/** How long a connection may stay open without an answer before it counts as a hang. */
const HANG_MS = HEADER_TIMEOUT_MS * 2 + 5000;

/**
 * Send `bytes` on a new connection and keep it open (no half-close: Portico drops a request whose
 * client half-closes right after it); resolves with what came back, and whether Portico ended the
 * connection (after its answer and keepAliveTimeout, or at headerTimeout) or left it hanging.
 */
function exchange(port: number, bytes: Buffer): Promise<{ out: Buffer; ended: boolean }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (ended: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ out: Buffer.concat(chunks), ended });
    };
    const t = setTimeout(() => finish(false), HANG_MS);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.on('connect', () => s.write(bytes));
  });
}

function udpExchange(port: number, bytes: Buffer, ms: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, ms);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.on('error', () => undefined);
    s.send(bytes, port, '127.0.0.1');
  });
}

/** Runs the corpora through zzuf against a fresh Portico process; stops it and the origin before returning. */
export async function runZzuf(o: ZzufOptions): Promise<ZzufReport> {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  // From a bit or less per request (most stay valid and are served) to a few (most are refused).
  const ratio = o.ratio ?? '0.0005:0.004';
  const httpFiles = HTTP_CORPUS.map((text, i) => {
    const f = join(o.dir, `http-${i}.txt`);
    writeFileSync(f, text, 'latin1');
    return f;
  });
  const dnsFiles = DNS_CORPUS.map((b, i) => {
    const f = join(o.dir, `dns-${i}.bin`);
    writeFileSync(f, b);
    return f;
  });
  const origin = await startOrigin('zzuf-origin', (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const report: ZzufReport = { sent: 0, outcomes: new Map(), hangs: [], unserved: [], crashed: undefined, rssAfterWarmup: 0, rssEnd: 0, rssPeak: 0, seedsRun: 0, lastSeed: o.firstSeed - 1 };
  let portico: PorticoProcess | undefined;
  try {
    portico = await spawnPortico(
      {
        log: { level: 'info' },
        listeners: [
          {
            name: 'web',
            protocol: 'http',
            listen: '127.0.0.1:0',
            limits: { headerTimeout: `${HEADER_TIMEOUT_MS}ms`, bodyTimeout: `${HEADER_TIMEOUT_MS}ms`, keepAliveTimeout: '200ms' },
            routes: [{ pool: 'web' }],
          },
          {
            name: 'dns',
            protocol: 'dns',
            listen: '127.0.0.1:0',
            responseRateLimit: false,
            zones: [{ name: 'example.com', records: [{ name: 'www', type: 'A', pool: 'web' }, { name: 'www', type: 'AAAA', values: ['2001:db8::1'] }] }],
          },
        ],
        pools: [{ name: 'web', timeouts: { response: '2s' }, servers: [{ name: 'o', address: origin.address, dnsAddress: '192.0.2.1' }] }],
      },
      2,
    );
    const out = portico.output();
    const webPort = Number(/listener web on \S*?:(\d+)/.exec(out)?.[1]);
    const dnsPort = Number(/listener dns on \S*?:(\d+)/.exec(out)?.[1]);
    if (!(webPort > 0 && dnsPort > 0)) throw new Error(`could not read the listener ports from: ${out}`);
    const count = (k: string): void => void report.outcomes.set(k, (report.outcomes.get(k) ?? 0) + 1);
    const t0 = Date.now();
    for (let seed = o.firstSeed; seed < o.firstSeed + o.seeds; seed++) {
      if (o.budgetMs !== undefined && o.budgetMs > 0 && Date.now() - t0 > o.budgetMs) break;
      const inputs = await Promise.all(httpFiles.map((f) => zzufMutate(f, seed, ratio)));
      const results = await Promise.all(inputs.map((b) => exchange(webPort, b)));
      results.forEach((r, i) => {
        report.sent++;
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(r.out.toString('latin1'));
        count(m !== null ? m[1]! : r.out.length === 0 ? 'closed' : 'other');
        if (!r.ended) report.hangs.push(`seed ${seed}, http-${i}: ${JSON.stringify(inputs[i]!.toString('latin1'))}`);
      });
      for (const f of dnsFiles) {
        const b = await zzufMutate(f, seed, ratio);
        report.sent++;
        count((await udpExchange(dnsPort, b, 300)) === undefined ? 'dns-dropped' : 'dns');
      }
      if (portico.exitCode() !== null) {
        report.crashed = `Portico exited (${portico.exitCode()}) at seed ${seed}: ${portico.output().slice(-3000)}`;
        break;
      }
      // Still serving: a valid request on a new connection, and a valid DNS query.
      const ok = await exchange(webPort, Buffer.from(HTTP_CORPUS[0]!, 'latin1'));
      if (!/^HTTP\/1\.1 200 /.test(ok.out.toString('latin1'))) report.unserved.push(`after seed ${seed}: ${JSON.stringify(ok.out.toString('latin1').slice(0, 100))}`);
      if ((await udpExchange(dnsPort, DNS_CORPUS[0]!, 5000)) === undefined) report.unserved.push(`after seed ${seed}: no DNS answer`);
      const mem = portico.memory();
      if (seed === o.firstSeed) report.rssAfterWarmup = mem.rss;
      report.rssEnd = mem.rss;
      report.rssPeak = mem.peak;
      report.seedsRun++;
      report.lastSeed = seed;
      if (report.seedsRun % 50 === 0) o.progress?.(`zzuf: ${report.seedsRun} seeds, ${report.sent} inputs, rss ${(mem.rss / 1048576).toFixed(1)} MB`);
    }
    return report;
  } finally {
    await portico?.stop();
    await origin.close();
  }
}
