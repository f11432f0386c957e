import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';

/** The head of a request as Node's parser read it. */
export interface JudgedHead {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  /** Names and values as received, alternating (IncomingMessage.rawHeaders). */
  readonly rawHeaders: readonly string[];
}

/**
 * What Node's own HTTP parser (llhttp, strict: insecureHTTPParser off) made of the first request on
 * a connection: `head` when it accepted the head; `body` (decoded, chunked framing removed) when it
 * also read the body to its end; otherwise `code`, the parser's error (or EOF: the bytes ended first).
 */
export interface Verdict {
  readonly head: JudgedHead | undefined;
  readonly body: Buffer | undefined;
  readonly code: string | undefined;
}

/**
 * Node's HTTP server as an independent judge of HTTP/1.1 bytes: `judge(bytes)` sends them on a new
 * loopback connection, half-closes it, and says whether the strict parser accepted the first request
 * in them, and what it read. No process.binding: a real node:http server on 127.0.0.1.
 */
export class HttpJudge {
  private readonly pending = new Map<number, (v: Verdict) => void>();
  private readonly sockets = new Set<Socket>();
  /** Heads read on connections whose verdict is pending (a body error comes after them). */
  private readonly heads = new Map<number, JudgedHead>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<HttpJudge> {
    const server = createServer({ insecureHTTPParser: false, requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 1 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = server.address();
    const j = new HttpJudge(server, a !== null && typeof a === 'object' ? a.port : 0);
    server.on('connection', (s: Socket) => {
      j.sockets.add(s);
      const port = s.remotePort ?? -1;
      s.on('close', () => {
        j.sockets.delete(s);
        j.settle(port, { head: j.heads.get(port), body: undefined, code: 'EOF' });
      });
    });
    // A request with an Expect other than 100-continue is still a parsed request: without a
    // 'checkExpectation' listener Node would answer 417 itself and never show it.
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      const port = req.socket.remotePort ?? -1;
      const head: JudgedHead = { method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders };
      if (!j.pending.has(port)) return;
      j.heads.set(port, head);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', (e: NodeJS.ErrnoException) => j.settle(port, { head, body: undefined, code: e.code ?? 'ERROR' }));
      req.on('end', () => {
        j.settle(port, { head, body: Buffer.concat(chunks), code: undefined });
        res.end();
      });
    };
    server.on('request', onRequest);
    server.on('checkExpectation', onRequest);
    // CONNECT and upgrades come as their own events: the head was read; the rest is a tunnel.
    const onTunnel = (req: IncomingMessage, s: Socket): void => {
      const port = s.remotePort ?? -1;
      j.settle(port, { head: { method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders }, body: Buffer.alloc(0), code: undefined });
      s.destroy();
    };
    server.on('connect', onTunnel);
    server.on('upgrade', onTunnel);
    server.on('clientError', (err: NodeJS.ErrnoException, s: Socket) => {
      const port = s.remotePort ?? -1;
      j.settle(port, { head: j.heads.get(port), body: undefined, code: err.code ?? 'ERROR' });
      s.destroy();
    });
    return j;
  }

  private settle(port: number, v: Verdict): void {
    const r = this.pending.get(port);
    if (r === undefined) return;
    this.pending.delete(port);
    this.heads.delete(port);
    r(v);
  }

  /** The verdict on `bytes` sent alone on a connection (then half-closed); 'TIMEOUT' after `ms` as a hang guard. */
  judge(bytes: Buffer, ms = 10_000): Promise<Verdict> {
    return new Promise((resolve) => {
      const c = connect(this.port, '127.0.0.1');
      let port = -1;
      const done = (v: Verdict): void => {
        clearTimeout(t);
        c.destroy();
        resolve(v);
      };
      const t = setTimeout(() => {
        this.pending.delete(port);
        this.heads.delete(port);
        done({ head: undefined, body: undefined, code: 'TIMEOUT' });
      }, ms);
      c.on('error', () => undefined);
      c.on('connect', () => {
        port = c.localPort ?? -1;
        this.pending.set(port, done);
        c.end(bytes);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
