import { ConfigError } from './errors.js';
import { loadConfigFile } from './load.js';

/**
 * `portico check -c FILE`: print every issue of FILE, one a line, and return 1; or print
 * `FILE: ok` and return 0. The algorithms named by `balance` must be registered beforehand.
 */
export function runCheck(file: string, out: (line: string) => void): number {
  try {
    loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.lines()) out(line);
    return 1;
  }
  out(`${file}: ok`);
  return 0;
}
