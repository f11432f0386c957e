import { fail, ok, show, type Parsed } from './parsed.js';

/** An inclusive range of HTTP status codes. */
export type StatusRange = readonly [lo: number, hi: number];

const HINT = 'write status codes and ranges such as 200-399 or 200,204';

/** `200-399`, `200,204`, `200-299,304`, a single code, or a list of those. */
export function parseStatusRanges(input: unknown): Parsed<StatusRange[]> {
  const parts: unknown[] = Array.isArray(input) ? input : [input];
  const out: StatusRange[] = [];
  for (const part of parts) {
    if (typeof part !== 'number' && typeof part !== 'string') return fail(`expected status codes, got ${show(part)}: ${HINT}`);
    for (const piece of String(part).split(',')) {
      const m = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(piece);
      if (m === null) return fail(`bad status range ${show(piece.trim())}: ${HINT}`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (lo < 100 || hi > 599) return fail(`bad status range ${show(piece.trim())}: codes are 100-599`);
      if (lo > hi) return fail(`bad status range ${show(piece.trim())}: ${lo} is above ${hi}`);
      out.push([lo, hi]);
    }
  }
  if (out.length === 0) return fail(`expected status codes: ${HINT}`);
  return ok(out);
}
