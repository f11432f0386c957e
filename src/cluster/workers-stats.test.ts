import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { StatsFrame } from '../observability/live-stats.js';
import { ipcPair } from '../test-helpers/ipc-pair.js';
import type { IpcPort } from './ipc.js';
import { WorkersStatsHub, WorkerStatsClient, type StatsWant } from './workers-stats.js';

/** Two ends of an IPC channel: what one sends the other receives (later, as a copy); closed, send throws and both ends are told. */
function channel(): { primary: IpcPort; worker: IpcPort; close(): void } {
  const p = ipcPair();
  return { primary: p.primary, worker: p.worker, close: p.cut };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function group(n: number, timeoutMs: number, collect: (i: number, want: StatsWant) => Promise<unknown>) {
  const hub = new WorkersStatsHub(() => ({ web: [{ server: 'a', passed: 3, failed: 0, lastAt: 0 }] }));
  const workers = [];
  for (let i = 1; i <= n; i++) {
    const ch = channel();
    const remove = hub.add(i, ch.primary);
    const client = new WorkerStatsClient(ch.worker, () => timeoutMs);
    client.serve((want) => collect(i, want));
    workers.push({ client, remove, close: ch.close });
  }
  return { hub, workers };
}

function frame(rps: number): StatsFrame {
  return {
    time: 1,
    intervalMs: 1000,
    listeners: [{ name: 'web', protocol: 'http', address: '127.0.0.1:1', rps, connectionsPerSec: 0, rejectedPerSec: 0 }],
    pools: [],
  };
}

describe('workers statistics over IPC', () => {
  it('the asker gets every other worker\'s part, the probes and the number running', async () => {
    const { hub, workers } = group(3, 1000, async (i) => ({ worker: i }));
    await tick(5);
    assert.equal(hub.running, 3);
    const a = await workers[0]!.client.ask({ kind: 'view', path: '/api/v1/pools' });
    assert.ok(a !== undefined);
    assert.deepEqual(a.parts.map((p) => (p.ok ? p.value : undefined)).sort((x, y) => (x as { worker: number }).worker - (y as { worker: number }).worker), [{ worker: 2 }, { worker: 3 }]);
    assert.equal(a.running, 3);
    assert.equal(a.probes['web']![0]!.passed, 3);
    assert.equal(a.metrics, undefined);
    const m = await workers[1]!.client.ask({ kind: 'metrics' });
    assert.ok(Array.isArray(m?.metrics), "the primary's health-check metrics come with a metrics answer");
  });

  it('a worker that does not answer is left out after the timeout', async () => {
    const { workers } = group(3, 150, (i) => (i === 3 ? new Promise(() => undefined) : Promise.resolve({ worker: i })));
    await tick(5);
    const t0 = Date.now();
    const a = await workers[0]!.client.ask({ kind: 'metrics' });
    const ms = Date.now() - t0;
    assert.ok(a !== undefined);
    assert.equal(a.parts.length, 1);
    assert.equal(a.running, 3);
    assert.ok(ms >= 140 && ms < 1000, `${ms} ms`);
  });

  it('a worker that dies in the middle of a collection ends the wait at once', async () => {
    const { workers } = group(3, 5000, (i) => (i === 3 ? new Promise(() => undefined) : Promise.resolve({ worker: i })));
    await tick(5);
    const t0 = Date.now();
    const pending = workers[0]!.client.ask({ kind: 'view', path: '/api/v1/status' });
    await tick(50);
    workers[2]!.close();
    workers[2]!.remove();
    const a = await pending;
    const ms = Date.now() - t0;
    assert.ok(a !== undefined);
    assert.equal(a.parts.length, 1);
    assert.equal(a.running, 2);
    assert.ok(ms < 1000, `${ms} ms: it waited for the dead worker`);
  });

  it('an asker that dies in the middle is forgotten; a failing collector is a failed part', async () => {
    const { hub, workers } = group(3, 5000, (i) => (i === 2 ? Promise.reject(new Error('no such pool')) : new Promise((r) => setTimeout(() => r({ worker: i }), 100))));
    await tick(5);
    void workers[0]!.client.ask({ kind: 'metrics' });
    await tick(10);
    workers[0]!.close();
    workers[0]!.remove();
    await tick(200);
    assert.equal(hub.running, 2);
    const a = await workers[1]!.client.ask({ kind: 'metrics' });
    assert.deepEqual(
      a?.parts.map((p) => p.ok),
      [true],
    );
    const b = await workers[2]!.client.ask({ kind: 'metrics' });
    assert.deepEqual(
      b?.parts.map((p) => (p.ok ? 'ok' : p.error)),
      ['no such pool'],
    );
  });

  it('malformed messages are dropped, and the primary goes on answering', async () => {
    const hub = new WorkersStatsHub(() => ({}));
    const ch = channel();
    hub.add(1, ch.primary);
    const client = new WorkerStatsClient(ch.worker, () => 100);
    client.serve(async () => ({}));
    for (const m of [
      null,
      7,
      { ch: 'stats' },
      { ch: 'stats', k: 'call', n: 'ask', id: 1001 },
      { ch: 'stats', k: 'call', n: 'ask', id: 1002, b: { want: { kind: 'nothing' }, timeoutMs: 10 } },
      { ch: 'stats', k: 'call', n: 'frame', id: 1003 },
      { ch: 'stats', k: 'call', n: 'frame', id: 1004, b: { frame: 1 } },
      { ch: 'stats', k: 'ok', id: 1099, b: {} },
    ]) {
      // ids the client does not use: the primary's error answers to them are dropped
      ch.worker.send(m);
    }
    await tick(10);
    const a = await client.ask({ kind: 'view', path: '/api/v1/status' });
    assert.deepEqual(a?.parts, []);
    assert.equal(a?.running, 1);
  });

  it('frames: each worker gets its frame merged with the others\' latest', async () => {
    const { workers } = group(2, 1000, async () => ({}));
    await tick(5);
    const m1 = await workers[0]!.client.mergeFrame({ frame: frame(10), intervals: {} });
    assert.deepEqual(m1?.workers, { reporting: 1, running: 2 });
    const m2 = await workers[1]!.client.mergeFrame({ frame: frame(5), intervals: {} });
    assert.deepEqual(m2?.workers, { reporting: 2, running: 2 });
    assert.equal(m2?.listeners[0]!.rps, 15);
  });

  it('without a primary, a question is answered undefined after the timeout (the caller answers alone)', async () => {
    const ch = channel();
    const client = new WorkerStatsClient(ch.worker, () => 10);
    const t0 = Date.now();
    // The client's timers do not hold a process open; this test's does, meanwhile.
    const hold = setTimeout(() => undefined, 5000);
    assert.equal(await client.ask({ kind: 'metrics' }), undefined);
    clearTimeout(hold);
    assert.ok(Date.now() - t0 >= 1000);
    ch.close();
    assert.equal(await client.ask({ kind: 'metrics' }), undefined, 'a closed channel answers at once');
    client.close();
  });
});
