import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MemoryStore } from '../store/memory-store.js';
import { stateStoreSuite } from '../store/state-store.suite.js';
import { ipcPair } from '../test-helpers/ipc-pair.js';
import { serveStore, WorkerStore } from './workers-store.js';

const channel = ipcPair;

stateStoreSuite('WorkerStore (through the primary)', async () => {
  const ch = channel();
  serveStore(new MemoryStore(), ch.primary);
  return new WorkerStore(ch.worker);
});

describe('WorkerStore', () => {
  it('two workers see one store: a value set by one is read by the other, a publish reaches both', async () => {
    const store = new MemoryStore();
    const a = channel();
    const b = channel();
    serveStore(store, a.primary);
    serveStore(store, b.primary);
    const wa = new WorkerStore(a.worker);
    const wb = new WorkerStore(b.worker);
    await wa.set('stick:1.2.3.4', 'web2', 60_000);
    assert.equal(await wb.get('stick:1.2.3.4'), 'web2');
    assert.equal(await wa.incr('rate', 2), 2);
    assert.equal(await wb.incr('rate', 3), 5);
    const got: string[] = [];
    const ac = new AbortController();
    await wa.subscribe('ch', (m) => got.push(`a:${m}`), ac.signal);
    await wb.subscribe('ch', (m) => got.push(`b:${m}`), ac.signal);
    await wb.publish('ch', 'x');
    for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(got.sort(), ['a:x', 'b:x']);
    ac.abort();
  });

  it("a worker's exit ends its subscriptions in the primary", async () => {
    const store = new MemoryStore();
    const a = channel();
    const stop = serveStore(store, a.primary);
    const wa = new WorkerStore(a.worker);
    await wa.subscribe('ch', () => undefined, new AbortController().signal);
    const delivered: string[] = [];
    await store.subscribe('ch', (m) => delivered.push(m), new AbortController().signal);
    a.cut();
    stop();
    // The primary's own subscriber still gets messages; the worker's is gone (no send on a closed channel).
    await store.publish('ch', 'after');
    assert.deepEqual(delivered, ['after']);
  });

  it('an operation the primary does not answer fails after its timeout', async () => {
    const ch = channel();
    const w = new WorkerStore(ch.worker, 50);
    await assert.rejects(w.get('k'), /did not answer get within 50 ms/);
    await w.close();
    await assert.rejects(w.get('k'), /closed/);
  });
});
