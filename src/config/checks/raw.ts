/**
 * Defensive readers over the unvalidated input. Cross-checks run on it (not on zod's output) so that
 * they report alongside the schema's issues, all in one pass; where a value has the wrong type they
 * skip it, since the schema reports that already.
 */
export type RawMap = Readonly<Record<string, unknown>>;

export const asMap = (v: unknown): RawMap | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as RawMap) : undefined;
export const asList = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);
export const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The entries of a list that are mappings, with their indexes. */
export function maps(v: unknown): [number, RawMap][] {
  const out: [number, RawMap][] = [];
  asList(v).forEach((item, i) => {
    const m = asMap(item);
    if (m !== undefined) out.push([i, m]);
  });
  return out;
}
