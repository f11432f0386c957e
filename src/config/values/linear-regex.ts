/**
 * Regular expressions from the configuration that run over bytes a client (or a server) sends:
 * route matchers (pathRegex, header, cookie, query and userAgent regexes) and health-check body
 * regexes. JavaScript's default engine backtracks: `^/(a+)+$` against `/` and 30 `a` then `!`
 * takes seconds, and every connection of the process waits. Portico uses V8's linear-time
 * engine for them:
 *
 * - `--enable-experimental-regexp-engine-on-excessive-backtracks`: a match that backtracks more
 *   than BACKTRACKS_BEFORE_LINEAR times is run again by the linear-time engine (same result), so
 *   ordinary patterns keep the fast backtracking engine and no input costs more than linear time.
 * - Only patterns that the linear engine can run are accepted: no backreferences (`\1`, `\k<n>`),
 *   no lookahead or lookbehind, and counted repetitions of at most 16 in all (`a{1,16}`, not
 *   `a{1,100}`, nor `(a{1,10}){1,10}`). `portico check` names the pattern and why
 *   (`checkLinearRegex`), as the `regex` config field does.
 *
 * The flags are V8's, set once per process before the first such pattern is compiled (every
 * worker process compiles its routes, so each sets them); they exist in Node.js 20, 22 and 24.
 */
import { setFlagsFromString } from 'node:v8';

/** Backtracks a match may take before V8 runs it with the linear-time engine instead. */
export const BACKTRACKS_BEFORE_LINEAR = 10_000;

let enabled = false;

/** Turn on V8's linear-time engine (the `l` flag, and the fallback on excessive backtracking); once per process. */
export function enableLinearRegex(): void {
  if (enabled) return;
  enabled = true;
  setFlagsFromString('--enable-experimental-regexp-engine');
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  setFlagsFromString(`--regexp-backtracks-before-fallback=${BACKTRACKS_BEFORE_LINEAR}`);
  try {
    new RegExp('a', 'l');
    available = true;
  } catch {
    available = false;
  }
}

/** This V8 has the linear-time engine (the `l` flag compiles after enableLinearRegex). */
let available = false;

/**
 * Why `source` cannot run in linear time, or undefined when it can (a pattern that does not
 * compile at all is the caller's error to report).
 */
export function checkLinearRegex(source: string): string | undefined {
  enableLinearRegex();
  if (!available) return 'cannot be matched in linear time: this Node.js has no linear-time regular expression engine (V8 --enable-experimental-regexp-engine)';
  try {
    new RegExp(source, 'l');
    return undefined;
  } catch {
    // V8 says only "Cannot be executed in linear time"; say which construct it is.
    const why: string[] = [];
    if (/\\[1-9]|\\k</.test(source)) why.push('a backreference');
    if (/\(\?<?[=!]/.test(source)) why.push('a lookahead or lookbehind');
    if (/\{\d*,?\d*\}/.test(source)) why.push('a counted repetition of more than 16 in all');
    const what = why.length > 0 ? why.join(' and ') : 'a construct the linear-time engine does not run';
    return `cannot be matched in linear time: it holds ${what} (refused: a request could make it backtrack for seconds; see docs/routing.md)`;
  }
}

/** `source` compiled for matching untrusted bytes; throws when it cannot run in linear time (the config check refuses those first). */
export function linearRegExp(source: string): RegExp {
  const why = checkLinearRegex(source);
  if (why !== undefined) throw new Error(`regular expression ${JSON.stringify(source)} ${why}`);
  return new RegExp(source);
}
