import { fail, ok, show, type Parsed } from './parsed.js';

const UNITS = new Map<string, number>([
  ['', 1],
  ['b', 1],
  ['kib', 1024],
  ['mib', 1024 ** 2],
  ['gib', 1024 ** 3],
  ['kb', 1000],
  ['mb', 1000 ** 2],
  ['gb', 1000 ** 3],
]);
const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;
const HINT = 'a size is a number of bytes with an optional unit (B, KiB, MiB, GiB, kB, MB, GB), e.g. 8MiB';

/** Bytes from `8MiB`, `1.5GiB`, `512KiB`, `100kB` or a plain whole number of bytes. */
export function parseSize(input: unknown): Parsed<number> {
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input < 0) return fail(`bad size ${show(input)}: a plain number is whole bytes, not negative`);
    return ok(input);
  }
  if (typeof input !== 'string') return fail(`expected a size, got ${show(input)}: ${HINT}`);
  const m = SIZE.exec(input.trim());
  const unit = m === null ? undefined : UNITS.get(m[2]!.toLowerCase());
  if (m === null || unit === undefined) return fail(`bad size ${show(input)}: ${HINT}`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) return fail(`bad size ${show(input)}: too large`);
  return ok(bytes);
}
