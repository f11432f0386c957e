import type { UpstreamTls } from '../../tls/upstream-tls.js';
import type { UpstreamPool } from '../upstream-pool.js';
import type { ProxyVersion } from '../../net/proxy-protocol.js';
import type { TcpConnection } from './tcp-connection.js';

/**
 * TLS session-id persistence (`persistence: { type: tls-session }`): session id (hex) to the id
 * of the server that assigned it, bounded and with an idle TTL (a StickTable).
 */
export interface SessionIdTable {
  /**
   * The server id pinned to `sessionId`, refreshing its idle time; undefined when unknown. A
   * Promise only when the id is not known here and a shared store is asked (it settles within
   * the store's timeout and never rejects).
   */
  get(sessionId: string): string | undefined | Promise<string | undefined>;
  set(sessionId: string, serverId: string): void;
}

/** Where a tcp listener's connections go: a pool, with what the L4 path needs of it. */
export interface TcpRoute {
  readonly name: string;
  /** Matches the ClientHello's server name; undefined = every connection (with or without SNI). */
  readonly sni: ((serverName: string) => boolean) | undefined;
  readonly pool: UpstreamPool;
  /** TLS toward the servers (`tls:` on the pool). */
  readonly tls: UpstreamTls | undefined;
  /** TLS session-id persistence of the pool, when configured. */
  readonly sessions: SessionIdTable | undefined;
  /** `balance: hash` on this pool: the client address is the key. */
  readonly hashBySource: boolean;
}

/** What a connection reads from its listener; replaced as a whole on reload. */
export interface TcpListenerRuntime {
  readonly name: string;
  readonly routes: readonly TcpRoute[];
  readonly inspectTls: boolean;
  readonly inspectTimeoutMs: number;
  readonly inspectMaxBytes: number;
  readonly sendProxy: false | ProxyVersion;
  /** Bytes of the reused buffer the server side reads into (`relayBuffer`); 0 = a new buffer per read. */
  readonly relayBuffer: number;
  onRejected(reason: string): void;
  onClosed(c: TcpConnection): void;
}
