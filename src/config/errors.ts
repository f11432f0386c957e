import { LbError } from '../core/errors.js';

/** One problem in a configuration, with where it is. */
export interface ConfigIssue {
  /** The file, or `<object>` when an object was validated. */
  readonly file: string;
  /** 1-based line and column of the key (or list item) at fault; 0 when unknown. */
  readonly line: number;
  readonly col: number;
  /** Dotted path with numeric list indexes (`pools.0.servers.1.address`), or `(root)`, `(file)`, `(yaml)`. */
  readonly path: string;
  readonly message: string;
}

export const OBJECT_FILE = '<object>';

/** `FILE:LINE:COL path: message`, or `<object> path: message` for a validated object. */
export function formatIssue(i: ConfigIssue): string {
  const where = i.file === OBJECT_FILE ? i.file : `${i.file}:${i.line}:${i.col}`;
  return `${where} ${i.path}: ${i.message}`;
}

/** An invalid configuration. Carries every issue found, not just the first. */
export class ConfigError extends LbError {
  readonly code = 'LB_CONFIG';
  readonly source = 'config';
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
  }
  /** One formatted line per issue. */
  lines(): string[] {
    return this.issues.map(formatIssue);
  }
}
