import { answerHeaders, Outcome } from '../../../core/outcome.js';
import type { RateLimiter } from '../rate-limit.js';
import type { Exchange } from '../exchange.js';
import type { ErrorAnswer, HttpPhase } from '../phases.js';

/**
 * The listener's `rateLimit`, before routing: the request's key takes a token, or it is answered
 * 429 with Retry-After (the seconds until the key has a token again) and counted as a refusal.
 */
export class RateLimitPhase implements HttpPhase {
  readonly name = 'rate-limit';
  constructor(readonly limiter: RateLimiter) {}

  onRequest(ex: Exchange): ErrorAnswer | undefined {
    const waitSec = this.limiter.take(ex);
    if (waitSec <= 0) return undefined;
    const outcome = Outcome.of('rate-limited');
    return { outcome, headers: answerHeaders(outcome, waitSec), rejected: true };
  }
}
