import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Logger } from '../observability/logger.js';
import type { Discovery, ServerSpec } from './discovery.js';
import { DiscoveryError } from './discovery.js';
import { dedupe, DiscoveryWatcher, type WatcherState } from './watcher.js';

function spec(name: string, port: number, weight = 1): ServerSpec {
  return { name, address: { host: '127.0.0.1', port }, weight, backup: false, maxConnections: 0, state: 'ready' };
}

/** A provider driven by the test: each step is a list to yield or an error to throw; then it waits for abort. */
class ScriptedDiscovery implements Discovery {
  readonly name = 'scripted';
  watches = 0;
  constructor(private readonly steps: (readonly ServerSpec[] | Error)[]) {}
  async *watch(signal: AbortSignal): AsyncIterable<readonly ServerSpec[]> {
    this.watches++;
    while (this.steps.length > 0) {
      const step = this.steps.shift()!;
      if (step instanceof Error) throw step;
      yield step;
    }
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }
}

function recorder(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const log: Logger = { error: (m) => warnings.push(m), warn: (m) => warnings.push(m), info() {}, debug() {} };
  return { log, warnings };
}

async function settle(w: DiscoveryWatcher, until: (s: DiscoveryWatcher['state']) => boolean): Promise<void> {
  for (let i = 0; i < 200 && !until(w.state); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(until(w.state), `watcher state: ${JSON.stringify(w.state)}`);
}

describe('dedupe', () => {
  it('keeps the first entry per name and per address, sorted by name', () => {
    const warnings: string[] = [];
    const out = dedupe([spec('b', 2), spec('a', 1), spec('b', 3), spec('c', 1)], (m) => warnings.push(m));
    assert.deepEqual(
      out.map((s) => `${s.name}:${s.address.port}`),
      ['a:1', 'b:2'],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /server b listed twice/);
  });
});

describe('DiscoveryWatcher', () => {
  it('hands on each new list once, deduplicated; an identical list is not handed on again', async () => {
    const got: string[][] = [];
    const p = new ScriptedDiscovery([[spec('a', 1)], [spec('a', 1)], [spec('b', 2), spec('a', 1), spec('a', 9)]]);
    const { log } = recorder();
    const w = new DiscoveryWatcher(p, { log, onServers: (l) => got.push(l.map((s) => s.name)) });
    await w.start();
    await settle(w, (s) => s.updates === 2);
    await w.stop();
    assert.deepEqual(got, [['a'], ['a', 'b']]);
  });

  it('keeps the last good list on a failure and watches again after a back-off', async () => {
    const got: string[][] = [];
    const p = new ScriptedDiscovery([[spec('a', 1)], new DiscoveryError('scripted', 'SERVFAIL'), [spec('a', 1), spec('b', 2)]]);
    const { log, warnings } = recorder();
    const w = new DiscoveryWatcher(p, { log, onServers: (l) => got.push(l.map((s) => s.name)), backoff: { minMs: 10, maxMs: 20 } });
    await w.start();
    await settle(w, (s) => s.updates === 2);
    await w.stop();
    assert.deepEqual(got, [['a'], ['a', 'b']]);
    assert.equal(w.state.failures, 1);
    assert.equal(p.watches, 2);
    assert.ok(warnings.some((m) => /SERVFAIL; keeping the last list \(1 server/.test(m)), warnings.join('\n'));
  });

  it('ignores an empty list after a non-empty one, with a warning; a later non-empty list applies', async () => {
    const got: string[][] = [];
    const p = new ScriptedDiscovery([[spec('a', 1), spec('b', 2)], [], [spec('c', 3)]]);
    const { log, warnings } = recorder();
    const w = new DiscoveryWatcher(p, { log, onServers: (l) => got.push(l.map((s) => s.name)) });
    await w.start();
    await settle(w, (s) => s.updates === 2);
    await w.stop();
    assert.deepEqual(got, [['a', 'b'], ['c']]);
    assert.equal(w.state.ignoredEmpty, 1);
    assert.ok(warnings.some((m) => /empty server list after 2 server\(s\) is ignored/.test(m)));
  });

  it('an empty first list is handed on (the pool simply has no server yet)', async () => {
    const got: number[] = [];
    const w = new DiscoveryWatcher(new ScriptedDiscovery([[]]), { log: recorder().log, onServers: (l) => got.push(l.length) });
    await w.start();
    await settle(w, (s) => s.updates === 1);
    await w.stop();
    assert.deepEqual(got, [0]);
  });

  it('start() resolves on the first failure, and stop() ends the back-off at once', async () => {
    const p = new ScriptedDiscovery([new Error('down'), new Error('down'), new Error('down')]);
    const w = new DiscoveryWatcher(p, { log: recorder().log, onServers: () => assert.fail('no list'), backoff: { minMs: 60_000, maxMs: 60_000 } });
    const t0 = Date.now();
    await w.start();
    assert.equal(w.state.failures, 1);
    await w.stop();
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(w.state.servers, undefined);
  });

  it('a throwing onServers is logged and the watcher carries on', async () => {
    let calls = 0;
    const { log, warnings } = recorder();
    const w = new DiscoveryWatcher(new ScriptedDiscovery([[spec('a', 1)], [spec('b', 2)]]), {
      log,
      onServers: () => {
        calls++;
        throw new Error('boom');
      },
    });
    await w.start();
    await settle(w, (s) => s.updates === 2);
    await w.stop();
    assert.equal(calls, 2);
    assert.ok(warnings.some((m) => /applying the list failed/.test(m)));
  });

  it('state: counts, the times of the last list and the last failure, and whether the last attempt failed', async () => {
    let clock = 1_000_000;
    const p = new ScriptedDiscovery([[spec('a', 1), spec('b', 2)], new DiscoveryError('scripted', 'invalid file')]);
    const atList: WatcherState[] = [];
    const w: DiscoveryWatcher = new DiscoveryWatcher(p, {
      log: recorder().log,
      onServers: () => atList.push(w.state),
      backoff: { minMs: 60_000, maxMs: 60_000 },
      now: () => (clock += 1000),
    });
    const initial: unknown = w.state;
    assert.deepEqual(initial, {
      servers: undefined,
      updates: 0,
      failures: 0,
      lastError: undefined,
      ignoredEmpty: 0,
      lastUpdateAt: undefined,
      lastErrorAt: undefined,
      failing: false,
    });
    try {
      await w.start();
      await settle(w, (s) => s.failures === 1);
    } finally {
      await w.stop();
    }
    assert.equal(atList.length, 1);
    assert.equal(atList[0]!.failing, false);
    assert.equal(atList[0]!.lastUpdateAt, 1_001_000);
    const s = w.state;
    assert.equal(s.servers?.length, 2, 'the last good list stays');
    assert.equal(s.updates, 1);
    assert.equal(s.lastUpdateAt, 1_001_000, 'a failure is no update');
    assert.equal(s.lastErrorAt, 1_002_000);
    assert.match(s.lastError ?? '', /invalid file/);
    assert.equal(s.failing, true);
  });

  it('state: a list after a failure ends `failing`; the last error and its time stay; an unchanged list is no update', async () => {
    let clock = 10;
    const p = new ScriptedDiscovery([[spec('a', 1)], new DiscoveryError('scripted', 'SERVFAIL'), [spec('a', 1)], [spec('a', 1), spec('b', 2)]]);
    const w = new DiscoveryWatcher(p, { log: recorder().log, onServers: () => {}, backoff: { minMs: 10, maxMs: 10 }, now: () => clock++ });
    await w.start();
    await settle(w, (s) => s.updates === 2);
    await w.stop();
    const s = w.state;
    assert.equal(s.failing, false);
    assert.equal(s.failures, 1);
    assert.match(s.lastError ?? '', /SERVFAIL/);
    // clock: 10 first list, 11 the failure, 12 the second (different) list; the identical list in between took no time.
    assert.deepEqual([s.lastUpdateAt, s.lastErrorAt], [12, 11]);
  });
});
