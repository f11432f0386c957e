import { hostname } from 'node:os';
import { z } from 'zod';
import { fail, ok, show } from '../values/parsed.js';
import { duration, int, leaf, text } from './fields.js';

function urlOrWord(word: string, schemes: readonly string[]) {
  const what = `${word} or ${schemes.map((s) => `${s}//HOST:PORT/...`).join(' or ')}`;
  return leaf<string, string>(`${word} | URL`, (v) => {
    if (v === word) return ok(v);
    if (typeof v !== 'string') return fail(`expected ${what}, got ${show(v)}`);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return fail(`expected ${what}, got ${show(v)}`);
    }
    if (!schemes.includes(u.protocol) || u.hostname === '') return fail(`expected ${what}, got ${show(v)}`);
    return ok(v);
  });
}

const workers = leaf<number | string, number | 'auto'>('integer 1-256 | auto', (v) => {
  if (v === 'auto') return ok('auto');
  const n = int(1, 256).safeParse(v);
  return n.success ? ok(n.data) : fail(`expected a number of workers (1-256) or auto, got ${show(v)}`);
});

export const clusterSchema = z
  .strictObject({
    node: text({ nonEmpty: true })
      .prefault(() => hostname())
      .meta({ docDefault: 'the host name of the machine' })
      .describe('Name of this Portico node (in the admin API, logs and shared state)'),
    store: urlOrWord('memory', ['redis:', 'rediss:'])
      .prefault('memory')
      .describe('Where shared state lives: `memory` (this node only) or a redis:// URL shared by every node'),
    config: urlOrWord('file', ['etcd:'])
      .prefault('file')
      .describe('Where the configuration comes from: `file` or an etcd://HOST:PORT/PREFIX URL'),
    workers: workers
      .prefault('auto')
      .describe('Worker processes sharing the listening sockets: a number, or `auto` for one per CPU core (os.availableParallelism())'),
    accept: z
      .enum(['primary', 'shared'])
      .prefault('primary')
      .describe(
        "With several workers, who accepts the connections: `primary` (node:cluster's round robin: the primary accepts each connection and hands it to the workers in turn over IPC; an even spread, but one process's work per new connection) or `shared` (every worker accepts from the listening socket itself and the kernel picks which; nothing passes through the primary, but the spread can be uneven on a quiet machine). Read at start",
      ),
    statsTimeout: duration(10_000)
      .prefault('500ms')
      .describe('With several workers: how long the admin API and `/metrics` wait for the other workers\' figures (a worker that does not answer in time is left out)'),
    upgradeTimeout: duration(3_600_000)
      .prefault('60s')
      .describe('With several workers: how long an upgrade (SIGUSR2, `portico upgrade`) waits for every new worker to be ready before it gives up, stops the new ones and keeps the running ones'),
  })
  .describe('How several Portico processes and nodes act as one');
