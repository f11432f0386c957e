import type { FailureKind } from '../../../health/outlier.js';
import type { ServerRuntime } from '../../../pool/server-runtime.js';
import type { Exchange } from '../exchange.js';
import type { PoolHandle } from '../listener-runtime.js';
import type { HttpPhase } from '../phases.js';

/**
 * Passive health: each try's outcome on its server goes to the pool's outlier detection
 * (`handle.onOutcome`, set by the pool's services and replaced when they are rebuilt, so it is
 * read at each call).
 */
export class PassiveHealthPhase implements HttpPhase {
  readonly name = 'passive-health';
  constructor(readonly handle: PoolHandle) {}

  onAttemptDone(ex: Exchange, rt: ServerRuntime, failure: FailureKind): void {
    this.handle.onOutcome?.(rt, failure, ex.status);
  }
}
