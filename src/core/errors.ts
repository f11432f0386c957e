import type { ServerId } from './server.js';

export type ErrorSource = 'downstream' | 'upstream' | 'internal' | 'config';

/** Every failure Portico reports has a stable code; codes are part of the API and never renamed. */
export abstract class LbError extends Error {
  abstract readonly code: `LB_${string}`;
  abstract readonly source: ErrorSource;
  /** Safe to try the request again on another server. */
  readonly retryable: boolean = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NoAvailableServerError extends LbError {
  readonly code = 'LB_NO_AVAILABLE_SERVER';
  readonly source = 'internal';
  constructor(readonly pool: string) {
    super(`no available server in pool ${pool}`);
  }
}

export class NoRouteError extends LbError {
  readonly code = 'LB_NO_ROUTE';
  readonly source = 'downstream';
  /** 503 by default; a listener may say 404 (`noRouteStatus`). */
  constructor(readonly listener: string, readonly status: 404 | 503 = 503) {
    super(`no route matched on listener ${listener}`);
  }
}

export class QueueFullError extends LbError {
  readonly code = 'LB_QUEUE_FULL';
  readonly source = 'internal';
  constructor(readonly pool: string) {
    super(`queue of pool ${pool} is full`);
  }
}

export class QueueTimeoutError extends LbError {
  readonly code = 'LB_QUEUE_TIMEOUT';
  readonly source = 'internal';
  constructor(readonly pool: string) {
    super(`queue wait in pool ${pool} expired`);
  }
}

export class UpstreamConnectError extends LbError {
  readonly code = 'LB_UPSTREAM_CONNECT';
  readonly source = 'upstream';
  override readonly retryable = true;
  constructor(readonly serverId: ServerId, options?: ErrorOptions) {
    super(`connect to ${serverId} failed`, options);
  }
}

export class UpstreamTimeoutError extends LbError {
  readonly code = 'LB_UPSTREAM_TIMEOUT';
  readonly source = 'upstream';
  constructor(readonly serverId: ServerId, readonly phase: 'connect' | 'response' | 'idle') {
    super(`${phase} timeout on ${serverId}`);
  }
}

/** The server closed or reset the connection, or sent something that is not HTTP. */
export class UpstreamProtocolError extends LbError {
  readonly code = 'LB_UPSTREAM_PROTOCOL';
  readonly source = 'upstream';
  constructor(readonly serverId: ServerId, readonly reason: string, options?: ErrorOptions) {
    super(`bad response from ${serverId}: ${reason}`, options);
  }
}

export class UpstreamResetError extends LbError {
  readonly code = 'LB_UPSTREAM_RESET';
  readonly source = 'upstream';
  /** A reset before any byte of the response is retryable only for idempotent requests; the caller decides. */
  constructor(readonly serverId: ServerId, options?: ErrorOptions) {
    super(`connection to ${serverId} closed before a response`, options);
  }
}

/** A request the client sent that Portico refuses; carries its HTTP status. */
export class DownstreamProtocolError extends LbError {
  readonly code = 'LB_BAD_REQUEST';
  readonly source = 'downstream';
  constructor(readonly status: number, readonly reason: string) {
    super(reason);
  }
}

/** The one place where an error becomes an HTTP status. */
export function statusFor(err: unknown): number {
  if (!(err instanceof LbError)) return 500;
  switch (err.code) {
    case 'LB_NO_AVAILABLE_SERVER':
    case 'LB_QUEUE_FULL':
    case 'LB_QUEUE_TIMEOUT':
      return 503;
    case 'LB_NO_ROUTE':
      return (err as NoRouteError).status;
    case 'LB_UPSTREAM_TIMEOUT':
      return 504;
    case 'LB_BAD_REQUEST':
      return (err as DownstreamProtocolError).status;
    default:
      return err.source === 'upstream' ? 502 : 500;
  }
}
