import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';

/**
 * `pidFile`: this process's PID written to `file` now (a file left by a process that ended is
 * replaced), and the file removed when this process exits, if it still holds this PID. Throws
 * an Error naming the file when it cannot be written.
 */
export function writePidFile(file: string): void {
  try {
    writeFileSync(file, `${process.pid}\n`, { mode: 0o644 });
  } catch (err) {
    throw new Error(`pidFile ${file}: cannot be written (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  process.once('exit', () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
    } catch {
      // already gone
    }
  });
}
