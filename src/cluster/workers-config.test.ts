import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../app/listener-kinds.js';
import type { ServerConfig } from '../config/types.js';
import { validateConfig } from '../config/validate.js';
import { ConfigError } from '../config/errors.js';
import { waitFor } from '../test-helpers/origins.js';
import { ipcPair } from '../test-helpers/ipc-pair.js';
import { Channel } from './ipc.js';
import { CONFIG_CHANNEL, WorkerLink, type ConfigDown, type ConfigUp, type LinkedPortico } from './workers-config.js';

/**
 * A worker's end of the IPC channel (for the WorkerLink under test) and the primary's channel
 * over the other end, which the test drives: its requests seen in `asked`, its `ready` notes counted.
 */
function link(answer: ConfigUp['calls']['config']['res'] | undefined = { config: undefined, lists: [] }) {
  const pair = ipcPair();
  const primary = new Channel<ConfigDown, ConfigUp>(pair.primary, CONFIG_CHANNEL);
  const asked: string[] = [];
  let readies = 0;
  primary.on('ready', () => void readies++);
  if (answer !== undefined) {
    primary.handle('config', () => {
      asked.push('config');
      return answer;
    });
  }
  return { link: new WorkerLink(pair.worker), primary, asked, readies: () => readies, cut: pair.cut };
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
    const t = link({ config: undefined, lists: [{ pool: 'web', servers: [server('a')], ops: [{ pool: 'web', server: 'a', op: 'down' }] }] });
    // before attach, even before the answer: a new list, then a state of its new server
    t.primary.notify('servers', { pool: 'web', servers: [server('a'), server('b')], ops: [] });
    t.primary.notify('op', { pool: 'web', server: 'b', op: 'up' });
    // `starting` (not probed yet) never replaces a state the worker knows
    t.primary.notify('op', { pool: 'web', server: 'a', op: 'starting' });
    await t.link.ready(15_000);
    assert.deepEqual(t.asked, ['config']);
    assert.equal(typeof t.link.source, 'function', 'no document: a reload reads the file');
    const log: string[] = [];
    await t.link.attach(portico(log));
    assert.deepEqual(log, ['servers web a', 'op web/a down', 'servers web a,b', 'op web/b up']);

    // A server list, then the state of its new server, while the list is still being applied.
    t.primary.notify('servers', { pool: 'web', servers: [server('a'), server('b'), server('c')], ops: [] });
    t.primary.notify('op', { pool: 'web', server: 'c', op: 'down' });
    // A reload (SIGHUP) applies the lists again and asks for every state.
    t.primary.notify('reload', { config: undefined });
    await waitFor(() => t.readies() === 1, 15_000, 'the ready note after the reload');
    assert.deepEqual(log.slice(4), ['servers web a,b,c', 'op web/c down', 'reload', 'servers web a,b,c']);
  });

  it("a reload from the primary (SIGHUP) applies the configuration the primary validated; the worker's own reload reads the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-link-'));
    try {
      const file = join(dir, 'portico.json');
      const fileConfig = { listeners: [], pools: [], admin: { enabled: false }, log: { level: 'warn' } };
      writeFileSync(file, JSON.stringify(fileConfig));
      const t = link();
      await t.link.ready(15_000);
      assert.equal(t.link.load(file).log.level, 'warn');
      const source = t.link.source;
      const read: string[] = [];
      const log: string[] = [];
      const pp = portico(log);
      await t.link.attach({ ...pp, reload: async () => void read.push(source().log.level) });
      // The file changes after the primary read it: the workers apply what the primary validated.
      const validated = validateConfig({ ...fileConfig, log: { level: 'debug' } });
      writeFileSync(file, '{ not: valid');
      t.primary.notify('reload', { config: validated });
      await waitFor(() => t.readies() === 1, 15_000, 'the reload to end');
      assert.deepEqual(read, ['debug']);
      // Afterwards (POST /api/v1/reload to this worker) the file is read again.
      writeFileSync(file, JSON.stringify({ ...fileConfig, log: { level: 'error' } }));
      assert.equal(source().log.level, 'error');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reloadAll (a worker's admin API) asks the primary, and resolves with this worker's own reload, or the primary's refusal", async () => {
    const t = link();
    await t.link.ready(15_000);
    const log: string[] = [];
    await t.link.attach({ ...portico(log), reload: async () => ({ generation: 2, changes: [], restartRequired: [] }) });
    const asks: number[] = [];
    let refuse = false;
    t.primary.handle('reload', ({ ask }) => {
      asks.push(ask);
      if (refuse) return { ok: false, issues: [{ file: 'p.yaml', line: 3, col: 5, path: 'pools[0].balance', message: 'unknown balancer' }] };
      // Every worker gets the reload; the asker's note carries its request.
      t.primary.notify('reload', { config: undefined, ask });
      return { ok: true };
    });
    assert.deepEqual(await t.link.reloadAll(15_000), { generation: 2, changes: [], restartRequired: [] });
    refuse = true;
    await assert.rejects(t.link.reloadAll(15_000), (err: unknown) => err instanceof ConfigError && err.issues.length === 1 && err.issues[0]!.line === 3);
    assert.deepEqual(asks, [1, 2]);
    // The asking worker records the refusal as its last reload; so does every other (told with `refused`).
    assert.match(log.at(-1)!, /^refused p\.yaml:3:5 pools\[0\]\.balance: unknown balancer$/);
    t.primary.notify('refused', { errors: ['x.yaml:1:1 y: z'] });
    await waitFor(() => log.at(-1) === 'refused x.yaml:1:1 y: z', 15_000, 'the refusal recorded');
    t.primary.handle('reload', () => new Promise<never>(() => undefined));
    await assert.rejects(t.link.reloadAll(50), /did not answer the reload within 50 ms/);
  });

  it('a primary that dies fails a pending reloadAll at once', async () => {
    const t = link();
    await t.link.ready(15_000);
    await t.link.attach(portico([]));
    t.primary.handle('reload', () => new Promise<never>(() => undefined));
    const pending = t.link.reloadAll(60_000);
    await new Promise((r) => setImmediate(r));
    t.cut();
    await assert.rejects(pending, /the peer is gone/);
  });

  it('without an answer from the primary, ready() fails', async () => {
    const t = link(undefined);
    t.primary.close();
    await assert.rejects(t.link.ready(50), /did not say what to run within 50 ms/);
  });
});
