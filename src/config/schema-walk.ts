/** Reading the configuration schema back: what a key is, its default and its description. */
import { z } from 'zod';

type Def = { type: string; [k: string]: unknown };
export type AnySchema = z.core.$ZodType;

const defOf = (s: AnySchema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

export interface KeyInfo {
  /** The schema under the wrappers (default, optional, transform). */
  readonly core: AnySchema;
  readonly description: string | undefined;
  /** A fixed type name given to a leaf (`duration`, `address` ...). */
  readonly docType: string | undefined;
  /** The default as the file would write it, when there is one. */
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
  /** Words standing in for a default that depends on the machine. */
  readonly defaultText: string | undefined;
  readonly optional: boolean;
}

/** Peel the wrappers off a key's schema, gathering metadata from the outside in. */
export function inspectKey(schema: AnySchema): KeyInfo {
  let s = schema;
  let description: string | undefined;
  let docType: string | undefined;
  let defaultText: string | undefined;
  let hasDefault = false;
  let defaultValue: unknown;
  let optional = false;
  for (;;) {
    const meta = z.globalRegistry.get(s as z.ZodType);
    description ??= meta?.description;
    docType ??= typeof meta?.['docType'] === 'string' ? meta['docType'] : undefined;
    defaultText ??= typeof meta?.['docDefault'] === 'string' ? meta['docDefault'] : undefined;
    const def = defOf(s);
    if (def.type === 'prefault' || def.type === 'default') {
      if (!hasDefault && defaultText === undefined) defaultValue = def['defaultValue'];
      hasDefault = true;
      s = def['innerType'] as AnySchema;
    } else if (def.type === 'optional' || def.type === 'readonly' || def.type === 'nullable') {
      optional ||= def.type === 'optional';
      s = def['innerType'] as AnySchema;
    } else if (def.type === 'pipe' && docType === undefined) {
      s = def['in'] as AnySchema;
    } else if (def.type === 'lazy') {
      // The listener union, made from the registered kinds on first use (schema/listener.ts).
      s = (def['getter'] as () => AnySchema)();
    } else {
      return { core: s, description, docType, hasDefault, defaultValue, defaultText, optional };
    }
  }
}

export const kindOf = (s: AnySchema): string => defOf(s).type;
export const shapeOf = (s: AnySchema): Readonly<Record<string, AnySchema>> => defOf(s)['shape'] as Record<string, AnySchema>;
export const elementOf = (s: AnySchema): AnySchema => defOf(s)['element'] as AnySchema;
export const optionsOf = (s: AnySchema): readonly AnySchema[] => defOf(s)['options'] as AnySchema[];
export const discriminatorOf = (s: AnySchema): string | undefined => defOf(s)['discriminator'] as string | undefined;
export const enumValues = (s: AnySchema): readonly string[] => Object.values(defOf(s)['entries'] as Record<string, string>);
export const literalValues = (s: AnySchema): readonly unknown[] => defOf(s)['values'] as unknown[];

/** The branch of `false | { ... }` or `boolean | { ... }` that is a mapping (or a union of mappings), if any. */
export function objectBranch(s: AnySchema): AnySchema | undefined {
  if (kindOf(s) !== 'union' || discriminatorOf(s) !== undefined) return undefined;
  const objects = optionsOf(s).filter((o) => {
    const core = inspectKey(o).core;
    return kindOf(core) === 'object' || discriminatorOf(core) !== undefined;
  });
  return objects.length === 1 ? objects[0] : undefined;
}
