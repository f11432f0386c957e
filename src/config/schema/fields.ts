/**
 * Leaf types of the configuration schema. Each is a zod schema whose input is what the file holds
 * and whose output is what the code uses; each carries a `docType` for the generated reference.
 */
import { z } from 'zod';
import { parseAddress } from '../values/address.js';
import { parseCidr } from '../values/cidr.js';
import { parseDuration, formatDuration, TIMER_MAX_MS } from '../values/duration.js';
import { fail, ok, show, type Parsed } from '../values/parsed.js';
import { parseRate } from '../values/rate.js';
import { parseSize } from '../values/size.js';
import { parseStatusRanges } from '../values/status-ranges.js';
import { parseDomain, parseHeaderName, parseHostPattern, parseHttpUrl, parseRegex, parseRequestKey } from '../values/text.js';
import { isIp } from '../values/host.js';

/** A schema from a parse function; `I` is the input type offered to library users. */
export function leaf<I, O>(docType: string, parse: (v: unknown) => Parsed<O>) {
  return z
    .custom<I>(() => true)
    .transform((v, ctx): O => {
      const r = v === undefined ? fail('missing required key') : parse(v);
      if (r.ok) return r.value;
      ctx.addIssue({ code: 'custom', message: r.message, input: v });
      return z.NEVER;
    })
    .meta({ docType });
}

/** Set while a configuration file's text is validated (see {@link fileDurations}). */
let inFile = false;

/**
 * Validate a configuration file's text with `fn`: there, a duration needs its unit (SPEC §3:
 * `250ms`, `2s`, `1m`, `1h`), since `interval: 2` is 2 ms, hardly what was meant; only 0 needs
 * none. An object given to createPortico keeps numbers as milliseconds (the parsed form).
 */
export function fileDurations<T>(fn: () => T): T {
  inFile = true;
  try {
    return fn();
  } finally {
    inFile = false;
  }
}

/** True while a configuration file's text is validated (durations need their unit). */
export const durationsNeedUnits = (): boolean => inFile;

/** A duration in milliseconds; `max` defaults to the longest timer Node.js honours. */
export function duration(max: number = TIMER_MAX_MS) {
  return leaf<string | number, number>('duration', (v) => {
    if (inFile && (typeof v === 'number' || (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v))) && Number(v) !== 0) {
      return fail(`duration ${show(v)} has no unit: write ${Number(v)}s for seconds or ${Number(v)}ms for milliseconds (units: ms, s, m, h, d)`);
    }
    const r = parseDuration(v);
    if (r.ok && r.value > max) return fail(`duration ${show(v)} is too long: at most ${formatDuration(max)}`);
    return r;
  });
}

/** A size in bytes (`8MiB`, `512KiB`, or a whole number of bytes) between `min` and `max`. */
export function size(min = 0, max: number = Number.MAX_SAFE_INTEGER) {
  return leaf<string | number, number>('size', (v) => {
    const r = parseSize(v);
    if (r.ok && (r.value < min || r.value > max)) return fail(`size ${show(v)} is out of range: ${min} to ${max} bytes`);
    return r;
  });
}

/** Where a listener binds: port 0 picks any free port. */
export const listenAddress = () => leaf<string, { host: string; port: number }>('address', (v) => parseAddress(v, 0));
/** Where a server is reached. */
export const serverAddress = () => leaf<string, { host: string; port: number }>('address', (v) => parseAddress(v, 1));
export const cidr = () => leaf<string, string>('CIDR', parseCidr);
export const cidrList = () => z.array(cidr()).meta({ docType: 'list of CIDR' });
export const rate = () => leaf<string, { count: number; perMs: number }>('rate', parseRate);
export const statusRanges = () =>
  leaf<string | number | (string | number)[], [number, number][]>('status ranges', (v) => {
    const r = parseStatusRanges(v);
    return r.ok ? ok(r.value.map(([lo, hi]): [number, number] => [lo, hi])) : r;
  });
export const regex = () => leaf<string, string>('regex', parseRegex);
export const headerName = () => leaf<string, string>('header name', parseHeaderName);
/** An Upgrade protocol name a client may switch to (lowercased); h2c is refused, it is never tunnelled. */
export const upgradeProtocol = () =>
  leaf<string, string>('protocol', (v) => {
    const r = parseHeaderName(v);
    if (!r.ok) return fail(`bad upgrade protocol ${show(v)}: a token (letters, digits and !#$%&'*+.^_\`|~-)`);
    const p = r.value.toLowerCase();
    if (p === 'h2c') return fail('h2c is never tunnelled: its HTTP/2 requests would pass no route, limit or header rule');
    return ok(p);
  });
export const hostPattern = () => leaf<string, string>('host', parseHostPattern);
/** One host pattern or a non-empty list of them (exact, or *.example.com). */
export const hostList = () =>
  leaf<string | string[], string[]>('host | list of hosts', (v) => {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) return fail('expected at least one host');
    const out: string[] = [];
    for (const h of list) {
      const r = parseHostPattern(h);
      if (!r.ok) return r;
      out.push(r.value);
    }
    return ok(out);
  });
export const domain = () => leaf<string, string>('domain', parseDomain);
export const requestKey = () => leaf<string, string>('request key', parseRequestKey);
export const httpUrl = () => leaf<string, string>('URL', parseHttpUrl);
export const ipAddress = () =>
  leaf<string, string>('IP address', (v) => (typeof v === 'string' && isIp(v) ? ok(v) : fail(`expected an IP address, got ${show(v)}`)));

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A name that other keys refer to (and that metrics and the admin API show). */
export const name = () =>
  leaf<string, string>('name', (v) => {
    if (typeof v !== 'string') return fail(`expected a name, got ${show(v)}${typeof v === 'number' ? ' (put it in quotes)' : ''}`);
    if (!NAME.test(v)) return fail(`bad name ${show(v)}: 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    return ok(v);
  });

/** Free text; numbers and booleans are refused so that `token: 0123` does not silently lose a digit. */
export function text(opts: { nonEmpty?: boolean } = {}) {
  return leaf<string, string>('string', (v) => {
    if (typeof v !== 'string') return fail(`expected a string, got ${show(v)}${typeof v === 'number' || typeof v === 'boolean' ? ' (put it in quotes)' : ''}`);
    if (opts.nonEmpty === true && v.trim() === '') return fail('must not be empty');
    return ok(v);
  });
}

/** A number, or a string of one (values from `${VAR}` are strings). */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

/** A whole number in [min, max]; a string of digits (from `${VAR}`) is accepted. */
export function int(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min}-${max}`;
  return leaf<number | string, number>(`integer ${range}`, (v) => {
    const n = toNumber(v);
    if (n === undefined || !Number.isInteger(n)) return fail(`expected a whole number (${range}), got ${show(v)}`);
    if (n < min || n > max) return fail(`${n} is out of range ${range}`);
    return ok(n);
  });
}

/** One of a few numbers (status codes). */
export function oneOf<const T extends number>(values: readonly T[]) {
  const list = values.join(' | ');
  return leaf<T | string, T>(list, (v) => {
    const n = toNumber(v);
    return n !== undefined && (values as readonly number[]).includes(n) ? ok(n as T) : fail(`must be one of ${list}, got ${show(v)}`);
  });
}

/** true or false (also the strings "true" and "false", from `${VAR}`). */
export const flag = () =>
  leaf<boolean | 'true' | 'false', boolean>('boolean', (v) => {
    if (v === true || v === 'true') return ok(true);
    if (v === false || v === 'false') return ok(false);
    return fail(`expected true or false, got ${show(v)}`);
  });

/** `false` (off) or a section; the string "false" (from `${VAR}`) is off too. */
export function orOff<T extends z.ZodType>(section: T) {
  return z.union([z.literal(false), z.literal('false').transform((): false => false), section]).meta({ docType: 'false | mapping' });
}
