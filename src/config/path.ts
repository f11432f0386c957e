/** A location in the configuration tree: keys and list indexes from the root. */
export type ConfigPath = readonly (string | number)[];

/** A problem at a path, before it is placed in a file. */
export interface PathIssue {
  readonly path: ConfigPath;
  readonly message: string;
  /** Set on an unknown key: a problem of the key itself, whatever its value. */
  readonly unknownKey?: true;
}

const PLAIN_KEY = /^[A-Za-z0-9_$][\w$-]*$/;

/** `pools.0.servers.1.address`; the root is `(root)`; a key that is not a plain word is quoted (`a."b c"`). */
export function formatPath(path: ConfigPath): string {
  if (path.length === 0) return '(root)';
  return path.map((seg) => (typeof seg === 'number' || PLAIN_KEY.test(seg) ? String(seg) : JSON.stringify(seg))).join('.');
}

/** True when `inner` is `outer` or lies below it. */
export function isWithin(inner: ConfigPath, outer: ConfigPath): boolean {
  return outer.length <= inner.length && outer.every((seg, i) => String(inner[i]) === String(seg));
}
