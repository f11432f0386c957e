import { fail, ok, show, type Parsed } from './parsed.js';

/** Longest delay a Node.js timer honours (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const TIMER_MAX_MS = 2 ** 31 - 1;

const UNITS: readonly (readonly [string, number])[] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];
const UNIT_MS = new Map(UNITS);
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

const HINT = 'a duration is a number with a unit (ms, s, m, h, d), e.g. 250ms, 2s, 1m30s; a plain number is milliseconds';

/**
 * Milliseconds from `250ms`, `2s`, `1m`, `1h`, `1d`, a compound such as `1m30s` (units largest first,
 * each once), a decimal such as `1.5s`, or a plain number (or string of digits) of milliseconds.
 * The result is a whole number of milliseconds.
 */
export function parseDuration(input: unknown): Parsed<number> {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return fail(`bad duration ${show(input)}: must not be negative`);
    if (!Number.isInteger(input)) return fail(`bad duration ${show(input)}: a plain number is whole milliseconds`);
    return ok(input);
  }
  if (typeof input !== 'string') return fail(`expected a duration, got ${show(input)}: ${HINT}`);
  const text = input.trim();
  if (/^\d+$/.test(text)) return ok(Number(text));
  let total = 0;
  let at = 0;
  let lastUnitMs = Infinity;
  while (at < text.length) {
    PART.lastIndex = at;
    const m = PART.exec(text);
    if (m === null) return fail(`bad duration ${show(input)}: ${HINT}`);
    const unitMs = UNIT_MS.get(m[2]!)!;
    if (unitMs >= lastUnitMs) return fail(`bad duration ${show(input)}: units must go from largest to smallest, each once`);
    lastUnitMs = unitMs;
    total += Number(m[1]) * unitMs;
    at = PART.lastIndex;
  }
  if (text === '') return fail(`bad duration ${show(input)}: ${HINT}`);
  const rounded = Math.round(total);
  if (Math.abs(rounded - total) > 1e-6) return fail(`bad duration ${show(input)}: the smallest step is 1ms`);
  if (!Number.isSafeInteger(rounded)) return fail(`bad duration ${show(input)}: too long`);
  return ok(rounded);
}

/** The canonical text of a whole number of milliseconds: `0s`, `250ms`, `2s`, `1m30s`, `1d2h`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
