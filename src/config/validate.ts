import { checkAvailability } from './availability.js';
import { checkBalancerOptions } from './balancer-options.js';
import { crossCheck } from './checks/index.js';
import { deepFreeze } from './deep-freeze.js';
import { applyKernelDefaults } from './kernel-defaults.js';
import { ConfigError, OBJECT_FILE } from './errors.js';
import { errorMap, toPathIssues } from './issues.js';
import { formatPath, type PathIssue } from './path.js';
import { configSchema } from './schema/root.js';
import { durationsNeedUnits } from './schema/fields.js';
import type { Config } from './types.js';

export type Validation = { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly issues: readonly PathIssue[] };

/**
 * Validate a raw configuration tree: the schema, the cross-checks (in the same pass, so every
 * problem is reported at once), then each pool's algorithm options. The config is deep-frozen.
 */
export interface ValidateOptions {
  /**
   * Also refuse what the schema accepts but this version cannot run (see availability.ts).
   * On by default; schema tests turn it off to exercise keys of features still being built.
   */
  readonly runnable?: boolean;
  /**
   * Also check the files the configuration names as `start` loads them (certificates and keys,
   * CAs, CRLs: src/tls/config-files.ts), with this check. Off by default; loadConfigFile takes
   * the one given to useFileCheck; false turns it off.
   */
  readonly files?: ((config: Config) => readonly PathIssue[]) | false;
  /**
   * The directory of the configuration file: a relative `stateDir`, and its default `.portico`,
   * are taken from there rather than from the working directory. loadConfigFile sets it.
   */
  readonly baseDir?: string;
}

export function validateTree(raw: unknown, options: ValidateOptions = {}): Validation {
  const parsed = configSchema.safeParse(raw, { error: errorMap });
  const issues = dedupe([...(parsed.success ? [] : toPathIssues(parsed.error.issues)), ...crossCheck(raw)]);
  if (!parsed.success || issues.length > 0) return { ok: false, issues };
  applyKernelDefaults(parsed.data as Config);
  const config = deepFreeze(parsed.data) as Config;
  const late = [...checkBalancerOptions(config), ...(options.runnable === false ? [] : checkAvailability(config))];
  if (late.length > 0) return { ok: false, issues: late };
  documents.set(config, { raw: structuredClone(raw), file: durationsNeedUnits() });
  return { ok: true, config };
}

/** The document each valid configuration was validated from (see documentOf). */
const documents = new WeakMap<object, ConfigDocument>();

/** The document a configuration was validated from, and whether it was a file's text (durations with units). */
export interface ConfigDocument {
  readonly raw: unknown;
  readonly file: boolean;
}

/**
 * The document (after `${VAR}` substitution) that `config` was validated from, so that a change
 * made at run time can be validated with it as one whole document, exactly as a file is.
 * Undefined for a configuration that did not come out of validateTree.
 */
export function documentOf(config: Config): ConfigDocument | undefined {
  return documents.get(config);
}

function dedupe(issues: readonly PathIssue[]): PathIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${formatPath(i.path)}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * The library entry: validate a configuration object (the same keys and forms as the file; no
 * `${VAR}` substitution). Throws a ConfigError whose issues have a path and no position.
 */
export function validateConfig(obj: unknown, options: ValidateOptions = {}): Config {
  const r = validateTree(obj, options);
  if (r.ok) return r.config;
  throw new ConfigError(r.issues.map((i) => ({ file: OBJECT_FILE, line: 0, col: 0, path: formatPath(i.path), message: i.message })));
}
