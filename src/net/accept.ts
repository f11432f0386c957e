/**
 * What the http, https, tcp, redirect and dns (TCP) listeners do alike with their sockets: bind, admit a new
 * connection (connection limit, access list, PROXY header), check deadlines of live connections,
 * and drain on stop. Each listener keeps its own set of live connections and serves them its way.
 */
import type { Server as NetServer, Socket } from 'node:net';
import { holdClock, refreshClock } from './deadlines.js';
import { Outcome } from '../core/outcome.js';
import type { AccessList } from './access.js';
import { readProxyHeader, type ProxyInfo } from './proxy-protocol.js';

/** Told of each connection accepted, and of each refused with its reason. */
export interface AcceptObserver {
  connection(listener: string): void;
  rejected(listener: string, reason: string): void;
}

/**
 * Binds `server` to host:port and resolves with the port bound (port 0 takes one the system
 * chooses); a bind error rejects. Errors after that (EMFILE ...) must not take the process down:
 * they are ignored and accepting goes on.
 */
export async function listen(server: NetServer, host: string, port: number, backlog?: number): Promise<number> {
  server.on('error', noop);
  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error): void => reject(err);
    server.once('error', onErr);
    server.listen({ host, port, backlog }, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  const a = server.address();
  return a !== null && typeof a === 'object' ? a.port : port;
}

/**
 * The checks on a new connection, in order: at most `max` connections at once (`live` open now;
 * 0 = no limit), then the access list against the socket's peer, unless `acceptProxy` (the client
 * a PROXY header names is checked by {@link readProxied} instead). A refused socket is destroyed and
 * the observer told why; an admitted one is counted. Until its owner takes over, a socket error is
 * ignored (never an unhandled 'error').
 */
export function admit(
  sock: Socket,
  name: string,
  observer: AcceptObserver | undefined,
  live: number,
  max: number,
  access: AccessList | undefined,
  acceptProxy: boolean,
): boolean {
  sock.on('error', noop);
  let refused: Outcome | undefined;
  if (max > 0 && live >= max) refused = Outcome.of('max-connections');
  else if (!acceptProxy && access !== undefined && !access.admits(sock.remoteAddress ?? '')) refused = Outcome.of('access-denied');
  if (refused !== undefined) {
    observer?.rejected(name, refused.reason);
    sock.destroy();
    return false;
  }
  observer?.connection(name);
  return true;
}

/** What {@link readProxied} needs of a listener that accepts PROXY headers. */
export interface ProxyAcceptor {
  /** Checked against the client the header names, when it arrives. */
  readonly access: AccessList | undefined;
  /** False once the listener stops: a header that arrives then is answered by closing. */
  readonly accepting: boolean;
  /** Connections reading their header now (readProxied keeps them here; a stop cuts those left after its grace). */
  readonly proxying: Set<Socket>;
  /** Serve the connection whose header named `peer`; the socket is paused. */
  openProxied(sock: Socket, peer: ProxyInfo): void;
  /** The header did not come in time or is malformed ('timeout', 'bad-proxy-header'), or the client is refused ('access'). */
  onRejected(reason: string): void;
}

/** Reads the PROXY header of an admitted connection, checks the client it names, and opens it. */
export function readProxied(sock: Socket, timeoutMs: number, l: ProxyAcceptor): void {
  l.proxying.add(sock);
  sock.once('close', () => l.proxying.delete(sock));
  readProxyHeader(
    sock,
    timeoutMs,
    (info: ProxyInfo) => {
      l.proxying.delete(sock);
      if (!l.accepting) return void sock.destroy();
      if (l.access !== undefined && !l.access.admits(info.sourceAddress)) {
        l.onRejected(Outcome.of('access-denied').reason);
        sock.destroy();
        return;
      }
      l.openProxied(sock, info);
    },
    (reason: string) => {
      l.proxying.delete(sock);
      l.onRejected(Outcome.of(reason === 'PROXY header timeout' ? 'proxy-header-timeout' : 'bad-proxy-header').reason);
    },
  );
}

/** Live connections a sweep walks (a LiveSet; a Set too). */
export interface Walkable<T> {
  forEach(fn: (c: T) => void): void;
}

/** A live connection with a deadline (0: none) on the shared coarse clock. */
export interface Deadlined {
  readonly deadline: number;
  onDeadline(): void;
}

/**
 * Checks the deadlines of `live` every `everyMs` (holding the coarse clock meanwhile): each whose
 * deadline passed gets onDeadline(), and one that throws from it is cut with `cut`. Returns the
 * function that stops the checks.
 */
export function sweepDeadlines<T extends Deadlined>(live: Walkable<T>, everyMs: number, cut: (c: T) => void): () => void {
  const releaseClock = holdClock();
  let now = 0;
  const visit = (c: T): void => {
    if (c.deadline !== 0 && c.deadline <= now) {
      try {
        c.onDeadline();
      } catch {
        cut(c);
      }
    }
  };
  const timer = setInterval(() => {
    now = refreshClock();
    live.forEach(visit);
  }, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    releaseClock();
  };
}

/** How often a draining listener looks whether its connections are gone. */
const DRAIN_POLL_MS = 20;

/**
 * Stops accepting on `server`, waits up to graceMs for `live` and `pending` (sockets not yet a
 * connection of `live`: reading their PROXY header) to empty (calling `tick`, if given, on each
 * connection left at every look), cuts what is left with `cut` (`pending`: destroyed), and
 * resolves once the server is closed. Bounded by graceMs: the server closes only once every
 * socket it accepted is gone, so none may be left to its own timeouts.
 */
export async function drain<T>(
  server: NetServer,
  live: Iterable<T> & { readonly size: number },
  graceMs: number,
  cut: (c: T) => void,
  tick?: (c: T) => void,
  pending?: Set<Socket>,
): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const deadline = Date.now() + graceMs;
  while ((live.size > 0 || (pending !== undefined && pending.size > 0)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    if (tick !== undefined) for (const c of live) tick(c);
  }
  if (pending !== undefined) for (const s of [...pending]) s.destroy();
  for (const c of [...live]) cut(c);
  await closed;
}

function noop(): void {}
