import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { ServerConfig } from '../config/types.js';
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
    assert.equal(link.source, undefined, 'no document: the worker reads the file');
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

  it('without an answer from the primary, ready() fails', async () => {
    const p = port();
    const link = new WorkerLink(p.port);
    await assert.rejects(link.ready(50), /did not say what to run within 50 ms/);
  });
});
