import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings of the Portico process, set as it starts (imported first by the command line).
 *
 * `--no-allocation-site-pretenuring`: V8 watches each allocation site and, once most objects made
 * there survive a scavenge, allocates that site's objects directly in the old generation. A run of
 * long-lived connections (keep-alive) teaches it that connections live long, and it keeps
 * allocating them there when they no longer do (`Connection: close` afterwards, or any mix): each
 * such connection then dies in the old generation, where it keeps every young object it points to
 * (its handlers, its request heads, its upstream attempt) alive through the scavenges until the
 * next full collection, so these are copied and promoted too. On a tcp listener under
 * `Connection: close` after a keep-alive run that was 3.0 KB promoted and 18 µs of collector per
 * connection, and 1.2 KB and 7.5 µs without pretenuring; on an http listener 4.6-4.8 KB and
 * 25-46 µs against 0.7 KB and 4.3-4.6 µs (docs/benchmarks.md). A connection's objects are young
 * and short-lived by design (read buffers are reused, deadlines are numbers), so allocating them
 * young is right.
 *
 * A flag given on node's own command line (`node --allocation-site-pretenuring bin/portico ...`)
 * wins: the setting is left as it is.
 */
export const HEAP_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

/** The flags of `wanted` that node's command line (`execArgv`) does not set already, either way. */
export function flagsToApply(wanted: readonly string[], execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map((a) => a.split('=')[0]!.replace(/^--no-/, '--').replace(/_/g, '-')));
  return wanted.filter((f) => !given.has(f.split('=')[0]!.replace(/^--no-/, '--').replace(/_/g, '-')));
}

for (const f of flagsToApply(HEAP_FLAGS, process.execArgv)) setFlagsFromString(f);
