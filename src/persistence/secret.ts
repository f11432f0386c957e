import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The file in the state directory that holds the cookie secret. */
export const SECRET_FILE = 'cookie-secret';

/**
 * The secret of persistence cookies kept in `stateDir`: read when the file exists, otherwise
 * 32 random bytes written there (hex, mode 0600) so that cookies stay valid across restarts.
 * Several nodes must share one secret: give it in the configuration (`persistence.secret`).
 * Synchronous: it runs once, at start (or when a reload first needs it), before any request.
 */
export function loadOrCreateSecret(stateDir: string): Buffer {
  const file = join(stateDir, SECRET_FILE);
  const existing = readSecret(file);
  if (existing !== undefined) return existing;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const fresh = randomBytes(32);
  // Written to a file of its own, then linked into place: link fails when the name exists, so
  // of two processes starting together one wins and the other reads the winner's secret, never
  // a half-written file.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, fresh.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, file);
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const theirs = readSecret(file);
    if (theirs === undefined) throw err;
    return theirs;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

function readSecret(file: string): Buffer | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{32,}$/i.test(hex) || hex.length % 2 !== 0) {
    throw new Error(`${file}: not a secret written by Portico (expected at least 16 bytes in hex); delete it to generate a new one`);
  }
  return Buffer.from(hex, 'hex');
}
