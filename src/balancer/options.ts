import { LbError } from '../core/errors.js';

/**
 * Invalid options for a balancing algorithm, found at config load. `path` is relative to the
 * algorithm's options object (`method`, `boundedLoad` …); the config loader prefixes its own.
 */
export class BalancerOptionsError extends LbError {
  readonly code = 'LB_BALANCER_OPTIONS';
  readonly source = 'config';
  constructor(
    readonly algorithm: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`balance ${algorithm}: ${path === '' ? '' : `${path}: `}${problem}`);
  }
}

type Obj = Record<string, unknown>;

const describe = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
};

/** The options object, `{}` for `undefined`/`null`; unknown keys are errors. */
export function optionsObject(algorithm: string, raw: unknown, allowed: readonly string[]): Obj {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BalancerOptionsError(algorithm, '', `options must be an object (got ${describe(raw)})`);
  }
  for (const k of Object.keys(raw)) {
    if (!allowed.includes(k)) {
      const known = allowed.length === 0 ? 'it takes no options' : `known options: ${allowed.join(', ')}`;
      throw new BalancerOptionsError(algorithm, k, `unknown option (${known})`);
    }
  }
  return raw as Obj;
}

/** parseOptions for an algorithm that takes none. */
export function noOptions(algorithm: string): (raw: unknown) => undefined {
  return (raw) => {
    optionsObject(algorithm, raw, []);
    return undefined;
  };
}

export function numberOption(
  algorithm: string,
  o: Obj,
  key: string,
  spec: { default: number; min: number; max: number; integer?: boolean; minExclusive?: boolean },
): number {
  const v = o[key];
  if (v === undefined) return spec.default;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new BalancerOptionsError(algorithm, key, `must be a number (got ${describe(v)})`);
  }
  if (spec.integer === true && !Number.isInteger(v)) {
    throw new BalancerOptionsError(algorithm, key, `must be an integer (got ${v})`);
  }
  if (spec.minExclusive === true ? v <= spec.min : v < spec.min) {
    throw new BalancerOptionsError(algorithm, key, `must be ${spec.minExclusive === true ? 'greater than' : 'at least'} ${spec.min} (got ${v})`);
  }
  if (v > spec.max) throw new BalancerOptionsError(algorithm, key, `must be at most ${spec.max} (got ${v})`);
  return v;
}

export function booleanOption(algorithm: string, o: Obj, key: string, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new BalancerOptionsError(algorithm, key, `must be true or false (got ${describe(v)})`);
  return v;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration in milliseconds: a number (ms) or a string such as `250ms`, `2s`, `1m`, `1h`. */
export function durationOption(
  algorithm: string,
  o: Obj,
  key: string,
  spec: { default: number; min: number; max: number },
): number {
  const v = o[key];
  if (v === undefined) return spec.default;
  let ms: number;
  if (typeof v === 'number' && Number.isFinite(v)) {
    ms = v;
  } else if (typeof v === 'string' && DURATION.test(v)) {
    const m = DURATION.exec(v)!;
    ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  } else {
    throw new BalancerOptionsError(algorithm, key, `must be a duration such as 250ms, 2s, 1m, 1h or a number of ms (got ${describe(v)})`);
  }
  if (ms < spec.min || ms > spec.max) {
    throw new BalancerOptionsError(algorithm, key, `must be between ${spec.min}ms and ${spec.max}ms (got ${ms}ms)`);
  }
  return ms;
}

export function enumOption<T extends string>(algorithm: string, o: Obj, key: string, values: readonly T[], dflt?: T): T {
  const v = o[key];
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new BalancerOptionsError(algorithm, key, `is required (one of ${values.join(', ')})`);
  }
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw new BalancerOptionsError(algorithm, key, `must be one of ${values.join(', ')} (got ${describe(v)})`);
  }
  return v as T;
}
