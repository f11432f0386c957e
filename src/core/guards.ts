/** A value that is an object (arrays included) and not null: its keys may be read. */
export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** `text` parsed as JSON when it is an object, else undefined (it is not JSON, or not an object). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isObject(raw) ? raw : undefined;
}
