import { connect as tcpConnect, type Socket } from 'node:net';

/**
 * A small ZooKeeper client: one session over one TCP connection, speaking the jute protocol of
 * ZooKeeper 3.4 and later (connect, getChildren2, getData, exists, create, delete, ping,
 * closeSession, watch events). It never reconnects: a lost connection ends the session's use,
 * and whoever holds it (the discovery loop) opens a new one after a back-off. That is what
 * discovery needs and all it needs; no library in the registry is both pure JavaScript and
 * maintained.
 */

/** Operation codes (org.apache.zookeeper.ZooDefs.OpCode). */
const OP = { create: 1, delete: 2, exists: 3, getData: 4, getChildren2: 12, ping: 11, closeSession: -11 } as const;
const XID_WATCH = -1;
const XID_PING = -2;

/** Error codes a caller may want to tell apart (org.apache.zookeeper.KeeperException.Code). */
export const ZK_NONODE = -101;
export const ZK_NODEEXISTS = -110;

const ERROR_NAMES: Record<number, string> = {
  [-4]: 'CONNECTIONLOSS',
  [-100]: 'APIERROR',
  [-101]: 'NONODE',
  [-102]: 'NOAUTH',
  [-103]: 'BADVERSION',
  [-108]: 'NOCHILDRENFOREPHEMERALS',
  [-110]: 'NODEEXISTS',
  [-111]: 'NOTEMPTY',
  [-112]: 'SESSIONEXPIRED',
  [-114]: 'INVALIDACL',
};

export class ZkError extends Error {
  constructor(
    readonly code: number,
    readonly path: string,
  ) {
    super(`${ERROR_NAMES[code] ?? `error ${code}`} (${path})`);
  }
}

/** A watch event: 1 created, 2 deleted, 3 data changed, 4 children changed. */
export interface ZkWatchEvent {
  readonly type: number;
  readonly state: number;
  readonly path: string;
}

export interface ZkStat {
  readonly version: number;
  readonly cversion: number;
  /** The session that owns an ephemeral node; 0n for a persistent one. */
  readonly ephemeralOwner: bigint;
  readonly numChildren: number;
}

export interface ZkClientOptions {
  /** `host:port` pairs, tried in order until one accepts the session. */
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  /** Session timeout asked for (the server bounds it; default 10 s). */
  readonly sessionTimeoutMs?: number;
  /** Time to connect and get a session from one host (default 3 s). */
  readonly connectTimeoutMs?: number;
  /** Largest frame accepted (default 16 MiB; ZooKeeper's jute.maxbuffer is about 1 MiB). */
  readonly maxFrameBytes?: number;
}

/** Jute serialization of a request body. */
class Writer {
  private parts: Buffer[] = [];
  int(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  long(v: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(v);
    this.parts.push(b);
    return this;
  }
  bool(v: boolean): this {
    this.parts.push(Buffer.from([v ? 1 : 0]));
    return this;
  }
  buffer(v: Buffer | null): this {
    if (v === null) return this.int(-1);
    this.int(v.length);
    this.parts.push(v);
    return this;
  }
  string(v: string): this {
    return this.buffer(Buffer.from(v, 'utf8'));
  }
  /** The body with its length in front. */
  frame(): Buffer {
    const body = Buffer.concat(this.parts);
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(body.length);
    return Buffer.concat([len, body]);
  }
}

/** Jute deserialization of a reply body; throws RangeError past the end. */
class Reader {
  private at = 0;
  constructor(private readonly b: Buffer) {}
  int(): number {
    const v = this.b.readInt32BE(this.at);
    this.at += 4;
    return v;
  }
  long(): bigint {
    const v = this.b.readBigInt64BE(this.at);
    this.at += 8;
    return v;
  }
  bool(): boolean {
    if (this.at >= this.b.length) throw new RangeError('short frame');
    return this.b[this.at++] !== 0;
  }
  buffer(): Buffer | null {
    const n = this.int();
    if (n < 0) return null;
    if (this.at + n > this.b.length) throw new RangeError('short frame');
    const v = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  string(): string {
    return (this.buffer() ?? Buffer.alloc(0)).toString('utf8');
  }
  remaining(): number {
    return this.b.length - this.at;
  }
  stat(): ZkStat {
    this.long(); // czxid
    this.long(); // mzxid
    this.long(); // ctime
    this.long(); // mtime
    const version = this.int();
    const cversion = this.int();
    this.int(); // aversion
    const ephemeralOwner = this.long();
    this.int(); // dataLength
    const numChildren = this.int();
    this.long(); // pzxid
    return { version, cversion, ephemeralOwner, numChildren };
  }
}

interface Pending {
  readonly path: string;
  readonly resolve: (r: Reader) => void;
  readonly reject: (e: Error) => void;
}

/**
 * One ZooKeeper session. `connect()` opens it; requests are pipelined and answered in order;
 * watch events go to `onWatch`; `closed` resolves with the reason once the connection is gone
 * (after which every call rejects).
 */
export class ZkClient {
  /** Called for each watch event the server sends. */
  onWatch: (event: ZkWatchEvent) => void = () => undefined;
  /** The session id, once connected. */
  sessionId = 0n;
  /** The session timeout the server granted (ms). */
  sessionTimeoutMs = 0;
  /** Resolves with why the connection ended (a clean close() gives an Error 'closed'). */
  readonly closed: Promise<Error>;
  private socket: Socket | undefined;
  private readonly pending: Pending[] = [];
  private xid = 1;
  private inbox: Buffer = Buffer.alloc(0);
  private onFrame: ((frame: Buffer) => void) | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  private ended: Error | undefined;
  private markClosed!: (e: Error) => void;
  private readonly opts: ZkClientOptions;

  constructor(opts: ZkClientOptions) {
    this.opts = opts;
    this.closed = new Promise<Error>((resolve) => (this.markClosed = resolve));
  }

  /** Open a session on the first host that grants one; rejects with every host's failure. */
  async connect(): Promise<void> {
    const errors: string[] = [];
    for (const h of this.opts.hosts) {
      try {
        await this.connectTo(h.host, h.port);
        return;
      } catch (err) {
        errors.push(`${h.host}:${h.port}: ${(err as Error).message}`);
      }
    }
    const e = new Error(`no ZooKeeper session: ${errors.join('; ')}`);
    this.end(e);
    throw e;
  }

  private connectTo(host: string, port: number): Promise<void> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 3000;
    const asked = this.opts.sessionTimeoutMs ?? 10_000;
    return new Promise<void>((resolve, reject) => {
      const socket = tcpConnect({ host, port });
      const timer = setTimeout(() => fail(new Error(`no session within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.removeAllListeners();
        socket.on('error', () => undefined);
        socket.destroy();
        this.inbox = Buffer.alloc(0);
        reject(err);
      };
      socket.setNoDelay(true);
      socket.on('error', fail);
      socket.on('close', () => fail(new Error('connection closed during the handshake')));
      socket.on('data', (chunk) => this.receive(chunk));
      socket.on('connect', () => {
        // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
        socket.write(new Writer().int(0).long(0n).int(asked).long(0n).buffer(Buffer.alloc(16)).bool(false).frame());
      });
      this.onFrame = (frame) => {
        try {
          const r = new Reader(frame);
          r.int(); // protocolVersion
          const timeout = r.int();
          const sessionId = r.long();
          if (timeout <= 0) throw new Error('session refused (expired)');
          clearTimeout(timer);
          socket.removeAllListeners('error');
          socket.removeAllListeners('close');
          this.sessionId = sessionId;
          this.sessionTimeoutMs = timeout;
          this.socket = socket;
          this.onFrame = (f) => this.reply(f);
          socket.on('error', (err) => this.end(err));
          socket.on('close', () => this.end(new Error('connection closed')));
          this.startPings();
          resolve();
        } catch (err) {
          fail(err instanceof Error ? err : new Error(String(err)));
        }
      };
    });
  }

  /** Ping at a third of the session timeout; a silence of two thirds of it ends the connection. */
  private startPings(): void {
    this.lastHeard = Date.now();
    const every = Math.max(100, Math.floor(this.sessionTimeoutMs / 3));
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > (this.sessionTimeoutMs * 2) / 3) {
        this.end(new Error(`no answer from ZooKeeper for ${Date.now() - this.lastHeard} ms`));
        return;
      }
      this.socket?.write(new Writer().int(XID_PING).int(OP.ping).frame());
    }, every);
    this.pingTimer.unref();
  }

  private receive(chunk: Buffer): void {
    this.lastHeard = Date.now();
    this.inbox = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk]);
    const max = this.opts.maxFrameBytes ?? 16 * 1024 * 1024;
    while (this.inbox.length >= 4) {
      const n = this.inbox.readInt32BE(0);
      if (n < 0 || n > max) {
        this.end(new Error(`bad frame length ${n}`));
        return;
      }
      if (this.inbox.length < 4 + n) return;
      const frame = this.inbox.subarray(4, 4 + n);
      this.inbox = this.inbox.subarray(4 + n);
      this.onFrame?.(frame);
    }
  }

  private reply(frame: Buffer): void {
    try {
      const r = new Reader(frame);
      const xid = r.int();
      r.long(); // zxid
      const err = r.int();
      if (xid === XID_PING) return;
      if (xid === XID_WATCH) {
        const type = r.int();
        const state = r.int();
        const path = r.string();
        this.onWatch({ type, state, path });
        return;
      }
      const p = this.pending.shift();
      if (p === undefined) throw new Error(`reply ${xid} to no request`);
      if (err !== 0) p.reject(new ZkError(err, p.path));
      else p.resolve(r);
    } catch (err) {
      this.end(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private request<T>(op: number, path: string, body: (w: Writer) => Writer, read: (r: Reader) => T): Promise<T> {
    if (this.ended !== undefined) return Promise.reject(this.ended);
    const socket = this.socket;
    if (socket === undefined) return Promise.reject(new Error('not connected'));
    const xid = this.xid++;
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        path,
        resolve: (r) => {
          try {
            resolve(read(r));
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
        reject,
      });
      socket.write(body(new Writer().int(xid).int(op)).frame());
    });
  }

  /** The children of `path` (names, not paths), leaving a watch when `watch`. */
  getChildren(path: string, watch: boolean): Promise<{ children: string[]; stat: ZkStat }> {
    return this.request(OP.getChildren2, path, (w) => w.string(path).bool(watch), (r) => {
      const n = r.int();
      const children: string[] = [];
      for (let i = 0; i < n; i++) children.push(r.string());
      return { children, stat: r.stat() };
    });
  }

  /** The data of `path`, leaving a watch when `watch`. */
  getData(path: string, watch: boolean): Promise<{ data: Buffer; stat: ZkStat }> {
    return this.request(OP.getData, path, (w) => w.string(path).bool(watch), (r) => ({ data: Buffer.from(r.buffer() ?? Buffer.alloc(0)), stat: r.stat() }));
  }

  /** The stat of `path`, or null when it does not exist; a watch fires when it is created. */
  async exists(path: string, watch: boolean): Promise<ZkStat | null> {
    try {
      return await this.request(OP.exists, path, (w) => w.string(path).bool(watch), (r) => r.stat());
    } catch (err) {
      if (err instanceof ZkError && err.code === ZK_NONODE) return null;
      throw err;
    }
  }

  /** Create `path` open to everyone (world:anyone, all permissions); `ephemeral` ties it to this session. */
  create(path: string, data: Buffer | string, opts: { ephemeral?: boolean; sequential?: boolean } = {}): Promise<string> {
    const flags = (opts.ephemeral === true ? 1 : 0) | (opts.sequential === true ? 2 : 0);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return this.request(
      OP.create,
      path,
      (w) => w.string(path).buffer(bytes).int(1).int(31).string('world').string('anyone').int(flags),
      (r) => r.string(),
    );
  }

  /** Create `path` and its missing parents as persistent nodes (existing ones are fine). */
  async mkdirp(path: string): Promise<void> {
    let at = '';
    for (const part of path.split('/').filter((p) => p !== '')) {
      at += `/${part}`;
      try {
        await this.create(at, Buffer.alloc(0));
      } catch (err) {
        if (!(err instanceof ZkError && err.code === ZK_NODEEXISTS)) throw err;
      }
    }
  }

  delete(path: string, version = -1): Promise<void> {
    return this.request(OP.delete, path, (w) => w.string(path).int(version), () => undefined);
  }

  /** Close the session (its ephemeral nodes go at once), then the connection. */
  async close(): Promise<void> {
    if (this.ended === undefined && this.socket !== undefined) {
      try {
        await Promise.race([this.request(OP.closeSession, '', (w) => w, () => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
      } catch {
        // the connection is going anyway
      }
    }
    this.end(new Error('closed'));
  }

  private end(reason: Error): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    clearInterval(this.pingTimer);
    this.onFrame = undefined;
    this.socket?.destroy();
    for (const p of this.pending.splice(0)) p.reject(reason);
    this.markClosed(reason);
  }
}
