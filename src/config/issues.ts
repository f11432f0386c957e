/** Turns zod's issues into Portico's messages: short, lower-case, naming the value at fault. */
import { z } from 'zod';
import type { ConfigPath, PathIssue } from './path.js';
import { show } from './values/parsed.js';
import { didYouMean } from './values/suggest.js';

type RawIssue = z.core.$ZodRawIssue;

const NOUN: Readonly<Record<string, string>> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

/** Known keys of a strict object, kept on the issue so that a typo can be answered with a suggestion. */
const ALLOWED = 'allowedKeys';

/** The `error` option of safeParse: a message for every issue the schema did not word itself. */
export function errorMap(iss: RawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'missing required key';
      return `expected ${NOUN[iss.expected] ?? iss.expected}, got ${show(iss.input)}`;
    case 'invalid_value':
      return `must be ${iss.values.length === 1 ? '' : 'one of '}${iss.values.map(String).join(' | ')}, got ${show(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'array') return `needs at least ${String(iss.minimum)} item${iss.minimum === 1 ? '' : 's'}`;
      if (iss.origin === 'string') return iss.minimum === 1 ? 'must not be empty' : `must be at least ${String(iss.minimum)} characters`;
      return `must be at least ${String(iss.minimum)}`;
    case 'too_big':
      if (iss.origin === 'array') return `takes at most ${String(iss.maximum)} items`;
      return `must be at most ${String(iss.maximum)}`;
    case 'unrecognized_keys': {
      const shape = (iss.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod?.def?.shape;
      if (shape !== undefined) (iss as unknown as Record<string, unknown>)[ALLOWED] = Object.keys(shape);
      return 'unknown key';
    }
    case 'invalid_union': {
      if ('discriminator' in iss && typeof iss.discriminator === 'string') {
        const input = iss.input;
        if (typeof input !== 'object' || input === null || Array.isArray(input)) return `expected a mapping, got ${show(input)}`;
        const options = ((iss as { options?: unknown[] }).options ?? []).filter((o) => o !== undefined).map(String);
        const got = (input as Record<string, unknown>)[iss.discriminator];
        if (got === undefined) return `missing ${iss.discriminator}: one of ${options.join(' | ')}`;
        const hint = typeof got === 'string' ? didYouMean(got, options) : '';
        return `unknown ${iss.discriminator} ${show(got)}${hint}: one of ${options.join(' | ')}`;
      }
      const docType = iss.inst === undefined ? undefined : z.globalRegistry.get(iss.inst as z.ZodType)?.['docType'];
      return `expected ${typeof docType === 'string' ? docType : 'another kind of value'}, got ${show(iss.input)}`;
    }
    default:
      return undefined;
  }
}

const isTypeMismatch = (i: z.core.$ZodIssue): boolean => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value');

/** Flatten zod's final issues into path issues: one per unknown key, unions resolved to the branch that fits. */
export function toPathIssues(issues: readonly z.core.$ZodIssue[], prefix: ConfigPath = []): PathIssue[] {
  const out: PathIssue[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...(iss.path as (string | number)[])];
    if (iss.code === 'unrecognized_keys') {
      const allowed = (iss as unknown as Record<string, unknown>)[ALLOWED];
      const known = Array.isArray(allowed) ? (allowed as string[]) : [];
      for (const key of iss.keys) out.push({ path: [...path, key], message: `unknown key${didYouMean(key, known)}`, unknownKey: true });
      continue;
    }
    if (iss.code === 'invalid_union' && !('discriminator' in iss)) {
      // `false | { ... }` and the like: when the value has the shape of one branch, report that branch's problems.
      const fitting = iss.errors.filter((branch) => branch.length > 0 && !branch.every(isTypeMismatch));
      if (fitting.length === 1) {
        out.push(...toPathIssues(fitting[0]!, path));
        continue;
      }
    }
    out.push({ path, message: iss.message });
  }
  return out;
}
