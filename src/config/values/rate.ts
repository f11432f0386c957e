import { parseDuration } from './duration.js';
import { fail, ok, show, type Parsed } from './parsed.js';

/** `count` events per `perMs` milliseconds. */
export interface Rate {
  readonly count: number;
  readonly perMs: number;
}

/** `100/s`, `6000/m`, `10/h`, or with a period: `50/10s`. */
export function parseRate(input: unknown): Parsed<Rate> {
  const hint = 'a rate is COUNT/PERIOD, e.g. 100/s, 6000/m, 50/10s';
  if (typeof input !== 'string') return fail(`expected a rate, got ${show(input)}: ${hint}`);
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(input);
  if (m === null) return fail(`bad rate ${show(input)}: ${hint}`);
  const count = Number(m[1]);
  if (count < 1 || !Number.isSafeInteger(count)) return fail(`bad rate ${show(input)}: the count must be at least 1`);
  const periodText = /^[a-z]+$/.test(m[2]!) ? `1${m[2]}` : m[2]!;
  const period = parseDuration(periodText);
  if (!period.ok || period.value === 0 || /^\d+$/.test(periodText)) return fail(`bad rate ${show(input)}: ${hint}`);
  return ok({ count, perMs: period.value });
}
