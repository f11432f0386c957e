import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerConfig } from '../config/types.js';
import { validateConfig } from '../config/validate.js';
import { ConfigError } from '../config/errors.js';
import { waitFor } from '../test-helpers/origins.js';
import type { IpcPort } from './workers-store.js';
import { WorkerLink, type LinkedPortico } from './workers-config.js';

/** A worker's end of the IPC channel: what it sent, and `deliver` for what the primary sends (synchronously, several in one go). */
function port(): { port: IpcPort; sent: unknown[]; deliver(...ms: unknown[]): void } {
  const fns = new Set<(m: unknown) => void>();
  const sent: unknown[] = [];
  return {
    port: {
      send: (m) => void sent.push(m),
      onMessage: (fn) => {
        fns.add(fn);
        return () => fns.delete(fn);
      },
    },
    sent,
    deliver: (...ms) => {
      for (const m of ms) for (const fn of fns) fn(structuredClone(m));
    },
  };
}

const server = (name: string): ServerConfig => ({ name, address: { host: '127.0.0.1', port: 1 } }) as unknown as ServerConfig;

/** A Portico that records what the link does to it; setDiscovered takes a while, as a real apply does. */
function portico(log: string[]): LinkedPortico {
  return {
    pools: new Map([['web', { setOp: (id: string, op: string) => (log.push(`op ${id} ${op}`), true) }]]) as unknown as LinkedPortico['pools'],
    reload: async () => {
      await new Promise((r) => setTimeout(r, 5));
      log.push('reload');
    },
    setDiscovered: async (pool, servers) => {
      await new Promise((r) => setTimeout(r, 5));
      log.push(`servers ${pool} ${servers.map((s) => s.name).join(',')}`);
    },
    reloadRefused: (errors) => void log.push(`refused ${errors.join('; ')}`),
  };
}

describe('WorkerLink', () => {
  it("asks for what to run, and applies the primary's messages in the order sent, even those that came before attach", async () => {
    const p = port();
    const link = new WorkerLink(p.port);
    assert.deepEqual(p.sent, [{ t: 'config?' }]);
    p.deliver(
      { t: 'config', config: undefined, lists: [{ t: 'servers', pool: 'web', servers: [server('a')], ops: [{ t: 'op', pool: 'web', server: 'a', op: 'down' }] }] },
      // before attach, in the same burst: a new list, then a state of its new server
      { t: 'servers', pool: 'web', servers: [server('a'), server('b')], ops: [] },
      { t: 'op', pool: 'web', server: 'b', op: 'up' },
      // `starting` (not probed yet) never replaces a state the worker knows
      { t: 'op', pool: 'web', server: 'a', op: 'starting' },
    );
    await link.ready(1000);
    assert.equal(typeof link.source, 'function', 'no document: a reload reads the file');
    const log: string[] = [];
    await link.attach(portico(log));
    assert.deepEqual(log, ['servers web a', 'op web/a down', 'servers web a,b', 'op web/b up']);

    // A server list, then the state of its new server, while the list is still being applied.
    p.deliver({ t: 'servers', pool: 'web', servers: [server('a'), server('b'), server('c')], ops: [] }, { t: 'op', pool: 'web', server: 'c', op: 'down' });
    // A reload (SIGHUP) applies the lists again and asks for every state.
    p.deliver({ t: 'reload' });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(log.slice(4), ['servers web a,b,c', 'op web/c down', 'reload', 'servers web a,b,c']);
    assert.deepEqual(p.sent.at(-1), { t: 'ready' });
  });

  it("a reload from the primary (SIGHUP) applies the configuration the primary validated; the worker's own reload reads the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-link-'));
    try {
      const file = join(dir, 'portico.json');
      const fileConfig = { listeners: [], pools: [], admin: { enabled: false }, log: { level: 'warn' } };
      writeFileSync(file, JSON.stringify(fileConfig));
      const p = port();
      const link = new WorkerLink(p.port);
      p.deliver({ t: 'config', config: undefined, lists: [] });
      await link.ready(1000);
      assert.equal(link.load(file).log.level, 'warn');
      const source = link.source;
      const read: string[] = [];
      const log: string[] = [];
      const pp = portico(log);
      await link.attach({ ...pp, reload: async () => void read.push(source().log.level) });
      // The file changes after the primary read it: the workers apply what the primary validated.
      const validated = validateConfig({ ...fileConfig, log: { level: 'debug' } });
      writeFileSync(file, '{ not: valid');
      p.deliver({ t: 'reload', config: validated });
      await waitFor(() => p.sent.some((m) => (m as { t: string }).t === 'ready'), 15_000, 'the reload to end');
      assert.deepEqual(read, ['debug']);
      // Afterwards (POST /api/v1/reload to this worker) the file is read again.
      writeFileSync(file, JSON.stringify({ ...fileConfig, log: { level: 'error' } }));
      assert.equal(source().log.level, 'error');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reloadAll (a worker's admin API) asks the primary, and resolves with this worker's own reload, or the primary's refusal", async () => {
    const p = port();
    const link = new WorkerLink(p.port);
    p.deliver({ t: 'config', config: undefined, lists: [] });
    await link.ready(1000);
    const log: string[] = [];
    await link.attach({ ...portico(log), reload: async () => ({ generation: 2, changes: [], restartRequired: [] }) });
    const first = link.reloadAll(1000);
    assert.deepEqual(p.sent.at(-1), { t: 'reload?', id: 1 });
    p.deliver({ t: 'reload', config: undefined, id: 1 });
    assert.deepEqual(await first, { generation: 2, changes: [], restartRequired: [] });
    const second = link.reloadAll(1000);
    p.deliver({ t: 'reload!', id: 2, issues: [{ file: 'p.yaml', line: 3, col: 5, path: 'pools[0].balance', message: 'unknown balancer' }] });
    await assert.rejects(second, (err: unknown) => err instanceof ConfigError && err.issues.length === 1 && err.issues[0]!.line === 3);
    // The asking worker records the refusal as its last reload; so does every other (told with `refused`).
    assert.match(log.at(-1)!, /^refused p\.yaml:3:5 pools\[0\]\.balance: unknown balancer$/);
    p.deliver({ t: 'refused', errors: ['x.yaml:1:1 y: z'] });
    await waitFor(() => log.at(-1) === 'refused x.yaml:1:1 y: z', 15_000, 'the refusal recorded');
    await assert.rejects(link.reloadAll(50), /did not answer the reload within 50 ms/);
  });

  it('without an answer from the primary, ready() fails', async () => {
    const p = port();
    const link = new WorkerLink(p.port);
    await assert.rejects(link.ready(50), /did not say what to run within 50 ms/);
  });
});
