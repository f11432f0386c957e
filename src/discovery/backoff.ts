import { setTimeout as sleep } from 'node:timers/promises';

/** Delays between watch sessions: from minMs, doubling up to maxMs. */
export interface Backoff {
  readonly minMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { minMs: 1000, maxMs: 30_000 };

/**
 * Runs `session` again and again until `signal` aborts, waiting between two sessions a delay that
 * starts at minMs, doubles up to maxMs, and is back to minMs once a session calls `healthy()`. A
 * session that throws (not because of the abort) is handed to `failed`; nothing else is thrown.
 */
export async function repeatWithBackoff(
  signal: AbortSignal,
  backoff: Backoff,
  session: (healthy: () => void) => Promise<void>,
  failed: (err: unknown) => void,
): Promise<void> {
  let delay = backoff.minMs;
  const healthy = (): void => {
    delay = backoff.minMs;
  };
  while (!signal.aborted) {
    try {
      await session(healthy);
    } catch (err) {
      if (signal.aborted) break;
      failed(err);
    }
    try {
      await sleep(delay, undefined, { signal });
    } catch {
      break; // aborted
    }
    delay = Math.min(backoff.maxMs, delay * 2);
  }
}
