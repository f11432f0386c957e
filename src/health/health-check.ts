import type { Server } from '../core/server.js';

/** Why a probe failed. */
export type FailReason = 'timeout' | 'refused' | 'status' | 'body' | 'error';

/** The result of one probe of one server. */
export type CheckResult =
  | { readonly ok: true; readonly latencyMs: number }
  | { readonly ok: false; readonly reason: FailReason; readonly detail?: string | undefined };

/**
 * One kind of active probe (`tcp`, `http`, `icmp`). `check` opens its own connection (or runs its
 * own process) for every probe, never throws, and gives up as soon as `signal` aborts.
 */
export interface HealthCheck {
  readonly kind: string;
  check(server: Server, signal: AbortSignal): Promise<CheckResult>;
}

export const passed = (latencyMs: number): CheckResult => ({ ok: true, latencyMs });
export const failed = (reason: FailReason, detail?: string): CheckResult => ({ ok: false, reason, detail });

/** A short text for a probe result, used as the detail of a state change. */
export function describeResult(r: CheckResult): string {
  if (r.ok) return `ok in ${r.latencyMs.toFixed(1)}ms`;
  return r.detail === undefined || r.detail === '' ? r.reason : `${r.reason}: ${r.detail}`;
}

/** An errno code (ECONNREFUSED ...) or the message of an error. */
export function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? (e instanceof Error ? e.message : String(err));
}
