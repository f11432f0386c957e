/**
 * Coarse time for deadlines. Sessions keep a numeric deadline; one timer per listener
 * sweeps them every TICK_MS, so no timer is created or cleared per request.
 */
export const TICK_MS = 50;

let now = performance.now();
let users = 0;
let timer: NodeJS.Timeout | undefined;

/** Milliseconds, refreshed every tick while a listener runs (and on demand). */
export function clockNow(): number {
  return now;
}

function tick(): void {
  now = performance.now();
}

/** Keep the coarse clock running while at least one user holds it. */
export function holdClock(): () => void {
  users++;
  if (timer === undefined) {
    timer = setInterval(tick, TICK_MS / 2);
    timer.unref();
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    users--;
    if (users === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

export function refreshClock(): number {
  now = performance.now();
  return now;
}
