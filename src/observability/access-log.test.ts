import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { waitFor } from '../test-helpers/origins.js';
import { AccessLog, fileSink, isoDate, type AccessLogSink } from './access-log.js';
import { exchange } from './testing.js';

/** A sink that keeps what it is given and completes writes only when told to. */
function heldSink() {
  const chunks: string[] = [];
  const waiting: (() => void)[] = [];
  const sink: AccessLogSink = {
    open: async () => {},
    write(chunk, done) {
      chunks.push(chunk);
      waiting.push(() => done(null));
    },
    close: async () => {},
  };
  return { sink, chunks, release: () => waiting.splice(0).forEach((f) => f()), pending: () => waiting.length };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('access log', () => {
  it('JSON lines carry the timing breakdown, names, status, bytes, client and request id', async () => {
    const s = heldSink();
    const log = new AccessLog({ format: 'json', sink: s.sink, timeOrigin: Date.UTC(2024, 0, 2, 3, 4, 5) });
    await log.start();
    log.record(exchange({ startedAt: 250, target: '/a?"q"', connectMs: 0.12345, firstByteMs: 1.5, totalMs: 2.25, id: 'abc-1', error: 'x' }));
    await tick();
    s.release();
    await log.stop();
    const obj = JSON.parse(s.chunks.join('')) as Record<string, unknown>;
    assert.deepEqual(obj, {
      time: '2024-01-02T03:04:05.250Z',
      requestId: 'abc-1',
      listener: 'web',
      client: '127.0.0.1',
      method: 'GET',
      target: '/a?"q"',
      host: 'example.test',
      route: 'web#0',
      pool: 'web',
      server: 'a',
      status: 200,
      bytesIn: 100,
      bytesOut: 200,
      queueMs: 0,
      connectMs: 0.123,
      firstByteMs: 1.5,
      totalMs: 2.25,
      tries: 1,
      cache: '',
      error: 'x',
    });
    assert.equal(log.written, 1);
    assert.equal(log.dropped, 0);
  });

  it('JSON lines carry the cache verdict (Cache-Status without the cache name), escaped like every string', () => {
    const log = new AccessLog({ format: 'json', sink: heldSink().sink, timeOrigin: 0 });
    const obj = JSON.parse(log.jsonLine(exchange({ cacheStatus: 'fwd=miss; stored' }))) as Record<string, unknown>;
    assert.equal(obj['cache'], 'fwd=miss; stored');
    assert.equal((JSON.parse(log.jsonLine(exchange({ cacheStatus: 'a"b' }))) as Record<string, unknown>)['cache'], 'a"b');
  });

  it('combined format: Apache fields first, then Portico fields', () => {
    const log = new AccessLog({ format: 'combined', sink: heldSink().sink, timeOrigin: Date.UTC(2024, 9, 10, 13, 55, 36) });
    const line = log.combinedLine(
      exchange({ headers: { referer: 'http://r/', 'user-agent': 'curl/8 "x"' }, httpVersion: '1.0', server: '', pool: 'web', id: 'r-9', status: 503 }),
    );
    assert.equal(
      line,
      '127.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.0" 503 200 "http://r/" "curl/8 \\"x\\"" r-9 web web#0 web - 0 0.1 1 2 100\n',
    );
    const odd = log.combinedLine(exchange({ target: '/a"b\\c\x01\xe9', route: 'my route', id: 'r-1' }));
    assert.match(odd, /"GET \/a\\"b\\\\c\\x01\\xe9 HTTP\/1\.1"/);
    assert.match(odd, / r-1 web my%20route web a /);
  });

  it('lines are batched while a write is in progress, and dropped (counted) when the buffer is full', async () => {
    const s = heldSink();
    const log = new AccessLog({ format: 'json', sink: s.sink, maxBufferBytes: 4096 });
    await log.start();
    log.record(exchange());
    await tick();
    assert.equal(s.pending(), 1, 'the first line went out alone');
    const started = performance.now();
    for (let i = 0; i < 1000; i++) log.record(exchange({ id: `r${i}` }));
    assert.ok(performance.now() - started < 500, 'recording never waits for the sink');
    await tick();
    assert.equal(s.pending(), 1, 'nothing more is written until the sink completes');
    assert.ok(log.dropped > 900, `dropped ${log.dropped}`);
    const kept = 1000 - log.dropped;
    s.release();
    await tick();
    assert.equal(s.pending(), 1, 'what was kept goes out in one batch');
    assert.equal(s.chunks[1]!.split('\n').length - 1, kept);
    s.release();
    await log.stop();
    assert.equal(log.written, 1 + kept);
  });

  it('a failing sink counts its lines as dropped and the log goes on', async () => {
    let fail = true;
    const sink: AccessLogSink = {
      open: async () => {},
      write: (_c, done) => setImmediate(() => done(fail ? new Error('ENOSPC') : null)),
      close: async () => {},
    };
    const log = new AccessLog({ format: 'json', sink });
    await log.start();
    log.record(exchange());
    log.record(exchange());
    await waitFor(() => log.dropped >= 2, 15_000, 'the failed writes to be counted');
    assert.equal(log.dropped, 2);
    fail = false;
    log.record(exchange());
    await log.stop();
    assert.equal(log.written, 1);
  });

  it('the file sink appends, and stop() flushes what is buffered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-al-'));
    const path = join(dir, 'access.log');
    for (let round = 0; round < 2; round++) {
      const log = new AccessLog({ format: 'json', sink: fileSink(path) });
      await log.start();
      for (let i = 0; i < 50; i++) log.record(exchange({ id: `${round}-${i}` }));
      await log.stop();
    }
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.equal(lines.length, 100);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { requestId: string }).requestId).slice(48, 52),
      ['0-48', '0-49', '1-0', '1-1'],
    );
  });
});

it('isoDate matches Date.toISOString to the millisecond', () => {
  for (const t of [0, 999, 1000, 1_700_000_000_123, 1_700_000_000_123.9, 1_700_000_001_005, 1_700_000_001_050]) {
    assert.equal(isoDate(t), new Date(Math.floor(t)).toISOString());
  }
});
