import type { Socket } from 'node:net';
import { startRawServer } from './origins.js';

/**
 * A server for hostile-input tests: it keeps every byte it receives, frames requests itself with a
 * deliberately simple reader (Content-Length or chunked, nothing else) and answers each with
 * `respond(head)` (default: 200 with body "ok"). An answer of `upgrade` switches the connection to
 * a tunnel that echoes nothing and records everything.
 */
export interface RecordingOrigin {
  readonly port: number;
  /** Request heads (request-line and fields, up to CRLFCRLF) in the order they were read. */
  readonly heads: string[];
  /** Every byte received on every connection, in arrival order. */
  raw(): string;
  /** Connections accepted so far. */
  readonly connections: () => number;
  reset(): void;
  close(): Promise<void>;
}

/** What the origin answers for one request head; a string is sent as is. */
export type Respond = (head: string, s: Socket) => string | 'upgrade' | 'silent';

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** The offset just past a request that starts at `buf[0]`, -1 when incomplete. */
function requestEnd(buf: string): { headEnd: number; end: number } | undefined {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const head = buf.slice(0, headEnd + 4);
  const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
    let at = headEnd + 4;
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return undefined;
      const size = parseInt(buf.slice(at, eol), 16);
      if (Number.isNaN(size)) return { headEnd, end: buf.length };
      if (size === 0) {
        const end = buf.indexOf('\r\n\r\n', eol);
        if (buf.startsWith('\r\n\r\n', eol)) return { headEnd, end: eol + 4 };
        return end < 0 ? undefined : { headEnd, end: end + 4 };
      }
      at = eol + 2 + size + 2;
      if (at > buf.length) return undefined;
    }
  }
  const n = cl === null ? 0 : Number(cl[1]);
  return headEnd + 4 + n <= buf.length ? { headEnd, end: headEnd + 4 + n } : undefined;
}

export async function startRecordingOrigin(respond: Respond = () => OK): Promise<RecordingOrigin> {
  const chunks: Buffer[] = [];
  const heads: string[] = [];
  let connections = 0;
  const server = await startRawServer((s) => {
    connections++;
    let pending = '';
    let tunnel = false;
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (tunnel) return;
      pending += c.toString('latin1');
      for (;;) {
        const r = requestEnd(pending);
        if (r === undefined) return;
        const head = pending.slice(0, r.headEnd + 4);
        heads.push(head);
        pending = pending.slice(r.end);
        const answer = respond(head, s);
        if (answer === 'silent') continue;
        if (answer === 'upgrade') {
          const proto = /\r\nupgrade:[ \t]*([^\r]*)/i.exec(head)?.[1] ?? 'websocket';
          s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ${proto}\r\n\r\n`);
          tunnel = true;
          return;
        }
        s.write(answer);
      }
    });
  });
  return {
    port: server.port,
    heads,
    raw: () => Buffer.concat(chunks).toString('latin1'),
    connections: () => connections,
    reset: () => {
      chunks.length = 0;
      heads.length = 0;
    },
    close: () => server.close(),
  };
}
