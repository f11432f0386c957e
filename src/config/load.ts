import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { expandEnv, type Env } from './env.js';
import { fileDurations } from './schema/fields.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { formatPath, isWithin, type PathIssue } from './path.js';
import type { Config } from './types.js';
import { validateTree, type ValidateOptions } from './validate.js';
import { readYaml } from './yaml-source.js';

export { validateConfig } from './validate.js';

/** Aliases may expand a document this many times at most (a "billion laughs" file is refused). */
const MAX_ALIAS_COUNT = 100;

/**
 * Parse and validate a configuration given as YAML or JSON text; `file` names it in messages.
 * `${VAR}` and `${VAR:-default}` in string values are replaced from `env` first.
 * Throws a ConfigError listing every issue as FILE:LINE:COL path: message.
 */
export function parseConfigText(text: string, file: string, env: Env = process.env, options: ValidateOptions = {}): Config {
  const src = readYaml(text);
  if (src.syntaxIssues.length > 0) {
    throw new ConfigError(src.syntaxIssues.map((s) => ({ file, line: s.line, col: s.col, path: '(yaml)', message: s.message })));
  }
  const envIssues: PathIssue[] = [];
  for (const [node, path] of src.scalars()) {
    if (typeof node.value !== 'string') continue;
    const r = expandEnv(node.value, env);
    if (r.ok) node.value = r.value;
    else envIssues.push({ path, message: r.message });
  }
  let raw: unknown;
  try {
    raw = src.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new ConfigError([{ file, line: 1, col: 1, path: '(yaml)', message: (err as Error).message }]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError([{ file, line: 1, col: 1, path: '(root)', message: 'the configuration is empty' }]);
  }
  if (options.baseDir !== undefined && typeof raw === 'object' && !Array.isArray(raw)) {
    // The state directory belongs to this configuration: next to its file, wherever Portico is started from.
    const doc = raw as Record<string, unknown>;
    const sd = doc['stateDir'];
    if (sd === undefined) doc['stateDir'] = join(options.baseDir, '.portico');
    else if (typeof sd === 'string' && sd !== '' && !isAbsolute(sd)) doc['stateDir'] = resolve(options.baseDir, sd);
  }
  const result = fileDurations(() => validateTree(raw, options));
  const place = (issues: readonly PathIssue[]): ConfigIssue[] => issues.map((i): ConfigIssue => ({ file, ...src.positionOf(i.path), path: formatPath(i.path), message: i.message }));
  if (result.ok && envIssues.length === 0) {
    const fileIssues = typeof options.files === 'function' ? options.files(result.config) : [];
    if (fileIssues.length === 0) return result.config;
    throw new ConfigError(place(fileIssues).sort((a, b) => a.line - b.line || a.col - b.col));
  }
  // A value whose variable is missing is also invalid: report the variable, not what its absence causes.
  const derived = (i: PathIssue): boolean => i.unknownKey !== true && envIssues.some((e) => isWithin(i.path, e.path));
  const rest = result.ok ? [] : result.issues.filter((i) => !derived(i));
  const placed = place([...envIssues, ...rest]);
  placed.sort((a, b) => a.line - b.line || a.col - b.col); // stable: issues at one key keep their order
  throw new ConfigError(placed);
}

/** The check of the files a configuration names that loadConfigFile runs (see useFileCheck). */
let fileCheck: ((config: Config) => readonly PathIssue[]) | undefined;

/**
 * Give loadConfigFile the check of the files a configuration names (certificates, keys, CAs:
 * src/tls/config-files.ts), as the composition root does; config/ is below tls/.
 */
export function useFileCheck(check: (config: Config) => readonly PathIssue[]): void {
  fileCheck = check;
}

/**
 * Read and validate a configuration file (YAML, or JSON), and the files it names with the check
 * given to useFileCheck (unless `options.files` says otherwise). A missing or unreadable file is
 * a ConfigError too.
 */
export function loadConfigFile(path: string, env: Env = process.env, options: ValidateOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new ConfigError([{ file: path, line: 0, col: 0, path: '(file)', message: `cannot read the configuration: ${why}` }]);
  }
  return parseConfigText(text, path, env, { files: fileCheck ?? false, baseDir: dirname(resolve(path)), ...options });
}
