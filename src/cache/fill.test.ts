import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fill, FillTable, type FillWatcher } from './fill.js';

class Rec implements FillWatcher {
  events: string[] = [];
  fillHead(h: { status: number }): void {
    this.events.push(`head ${h.status}`);
  }
  fillData(c: Buffer): void {
    this.events.push(`data ${c.toString()}`);
  }
  fillEnd(): void {
    this.events.push('end');
  }
  fillAbort(): void {
    this.events.push('abort');
  }
}

test('a joiner gets what arrived so far, then each chunk as it arrives', () => {
  const f = new Fill('k', 100);
  const early = new Rec();
  f.join(early);
  f.setHead({ status: 200, headers: {} });
  f.push(Buffer.from('a'));
  const late = new Rec();
  assert.equal(f.join(late), true);
  assert.deepEqual(late.events, ['head 200', 'data a']);
  f.push(Buffer.from('b'));
  f.end();
  assert.deepEqual(early.events, ['head 200', 'data a', 'data b', 'end']);
  assert.deepEqual(late.events, ['head 200', 'data a', 'data b', 'end']);
  const after = new Rec();
  f.join(after);
  assert.deepEqual(after.events, ['head 200', 'data a', 'data b', 'end']);
});

test('a fill past its limit stops keeping chunks: no new joiner, the joined ones follow live', () => {
  const f = new Fill('k', 3);
  const w = new Rec();
  f.join(w);
  f.setHead({ status: 200, headers: {} });
  f.push(Buffer.from('ab'));
  f.push(Buffer.from('cd'));
  assert.equal(f.keeping, false);
  assert.equal(f.chunks.length, 0);
  assert.equal(f.join(new Rec()), false);
  f.push(Buffer.from('e'));
  f.end();
  assert.deepEqual(w.events, ['head 200', 'data ab', 'data cd', 'data e', 'end']);
});

test('abort tells every watcher once and the fill cannot be joined', () => {
  const f = new Fill('k', 10);
  const a = new Rec();
  f.join(a);
  f.setHead({ status: 200, headers: {} });
  f.abort();
  f.abort();
  assert.deepEqual(a.events, ['head 200', 'abort']);
  assert.equal(f.join(new Rec()), false);
});

test('the table: one fill per key; finish frees the key; hit-for-miss expires and is bounded', () => {
  const t = new FillTable(2);
  const f = t.begin('k', 10);
  assert.equal(t.get('k'), f);
  t.finish(f);
  assert.equal(t.get('k'), undefined);
  t.markUncacheable('a', 100);
  assert.equal(t.isUncacheable('a', 50), true);
  assert.equal(t.isUncacheable('a', 100), false);
  t.markUncacheable('a', 100);
  t.markUncacheable('b', 100);
  t.markUncacheable('c', 100);
  assert.equal(t.isUncacheable('a', 0), false);
  assert.equal(t.isUncacheable('c', 0), true);
});
