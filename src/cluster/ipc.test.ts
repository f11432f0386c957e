import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ipcPair } from '../test-helpers/ipc-pair.js';
import { Channel, IpcClosedError, IpcTimeoutError, type IpcPort } from './ipc.js';

/** What the test's worker side sends, and what its primary side sends. */
type Up = {
  calls: { add: { req: { a: number; b: number }; res: number }; slow: { req: { ms: number }; res: string }; fail: { req: string; res: never } };
  notes: { hello: { pid: number } };
};
type Down = {
  calls: { ping: { req: undefined; res: 'pong' } };
  notes: { tick: number };
};

function pair(): { worker: Channel<Up, Down>; primary: Channel<Down, Up>; cut(): void; ports: { primary: IpcPort; worker: IpcPort } } {
  const p = ipcPair();
  return { worker: new Channel<Up, Down>(p.worker, 'test'), primary: new Channel<Down, Up>(p.primary, 'test'), cut: p.cut, ports: p };
}

describe('Channel', () => {
  it('answers each request with its own answer, whatever the order the answers come in', async () => {
    const { worker, primary } = pair();
    const release: (() => void)[] = [];
    primary.handle('add', ({ a, b }) => a + b);
    primary.handle('slow', ({ ms }) => new Promise<string>((resolve) => release.push(() => resolve(`after ${ms}`))));
    const slow1 = worker.call('slow', { ms: 1 }, 5000);
    const slow2 = worker.call('slow', { ms: 2 }, 5000);
    const sums = await Promise.all([worker.call('add', { a: 1, b: 2 }, 5000), worker.call('add', { a: 10, b: 20 }, 5000)]);
    assert.deepEqual(sums, [3, 30]);
    // Answer the second slow request first.
    while (release.length < 2) await new Promise((r) => setImmediate(r));
    release[1]!();
    release[0]!();
    assert.deepEqual(await Promise.all([slow1, slow2]), ['after 1', 'after 2']);
    // Both directions carry requests.
    worker.handle('ping', () => 'pong');
    assert.equal(await primary.call('ping', undefined, 5000), 'pong');
  });

  it("rejects with the handler's error (RangeError keeps its class), and with an error for a request nobody handles", async () => {
    const { worker, primary } = pair();
    primary.handle('fail', (why) => {
      throw new RangeError(why);
    });
    await assert.rejects(worker.call('fail', 'out of range', 5000), (err: unknown) => err instanceof RangeError && err.message === 'out of range');
    await assert.rejects(worker.call('add', { a: 1, b: 1 }, 5000), /test: no handler for add/);
  });

  it('a request without an answer rejects after its timeout, and a late answer is dropped', async () => {
    const { worker, primary } = pair();
    let answer: ((v: string) => void) | undefined;
    primary.handle('slow', () => new Promise<string>((resolve) => (answer = resolve)));
    const late = worker.call('slow', { ms: 0 }, 20);
    await assert.rejects(late, (err: unknown) => err instanceof IpcTimeoutError && /test slow: no answer within 20 ms/.test(err.message));
    while (answer === undefined) await new Promise((r) => setImmediate(r));
    // The late answer reaches the worker and is dropped; the channel goes on.
    answer('late');
    primary.handle('add', ({ a, b }) => a + b);
    assert.equal(await worker.call('add', { a: 2, b: 2 }, 5000), 4);
  });

  it('a dead peer rejects every pending request at once, and later ones without sending', async () => {
    const { worker, primary, cut } = pair();
    primary.handle('slow', () => new Promise<string>(() => undefined));
    const a = worker.call('slow', { ms: 1 }, 60_000);
    const b = worker.call('slow', { ms: 2 }, 60_000);
    // Both requests are at the primary before it dies.
    await new Promise((r) => setImmediate(r));
    cut();
    await assert.rejects(a, (err: unknown) => err instanceof IpcClosedError && /the peer is gone/.test(err.message));
    await assert.rejects(b, IpcClosedError);
    assert.equal(worker.closed, true);
    await assert.rejects(worker.call('add', { a: 1, b: 1 }, 60_000), IpcClosedError);
    assert.equal(worker.notify('hello', { pid: 1 }), false);
  });

  it('a port that cannot send (and tells nobody it closed) rejects the request at once', async () => {
    const port: IpcPort = {
      send: () => {
        throw new Error('channel closed');
      },
      onMessage: () => () => undefined,
    };
    const ch = new Channel<Up, Down>(port, 'test');
    await assert.rejects(ch.call('add', { a: 1, b: 1 }, 60_000), (err: unknown) => err instanceof IpcClosedError && /test add: channel closed/.test(err.message));
    ch.close();
  });

  it('notes arrive in order, between answers as sent; other channels and malformed messages on the port are ignored', async () => {
    const { worker, primary, ports } = pair();
    const seen: string[] = [];
    worker.on('tick', (n) => void seen.push(`tick ${n}`));
    worker.handle('ping', () => {
      seen.push('ping');
      return 'pong';
    });
    const other = new Channel<Down, Up>(ports.primary, 'other');
    other.notify('tick', 99);
    for (const m of [null, 7, { ch: 'test' }, { ch: 'test', k: 'ok' }, { ch: 'test', k: 'call', id: 'x', n: 'ping' }, { ch: 'test', k: 'err', id: 1, e: 5 }]) ports.primary.send(m);
    primary.notify('tick', 1);
    const pong = primary.call('ping', undefined, 5000);
    primary.notify('tick', 2);
    assert.equal(await pong, 'pong');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, ['tick 1', 'ping', 'tick 2']);
    let hello: number | undefined;
    primary.on('hello', ({ pid }) => (hello = pid));
    assert.equal(worker.notify('hello', { pid: 42 }), true);
    await new Promise((r) => setImmediate(r));
    assert.equal(hello, 42);
  });

  it('close() rejects what is pending and stops reading the port', async () => {
    const { worker, primary } = pair();
    primary.handle('slow', () => new Promise<string>(() => undefined));
    const a = worker.call('slow', { ms: 1 }, 60_000);
    worker.close();
    await assert.rejects(a, /test: channel closed/);
    let ticks = 0;
    worker.on('tick', () => void ticks++);
    primary.notify('tick', 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(ticks, 0);
  });
});
