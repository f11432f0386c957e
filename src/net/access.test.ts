import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { AccessList } from './access.js';

test('an access list that admits everything is not built (nothing is checked)', () => {
  assert.equal(AccessList.of({ allow: ['0.0.0.0/0', '::/0'], deny: [] }), undefined);
  assert.equal(AccessList.of({ allow: ['::/0'], deny: [] }), undefined);
  assert.ok(AccessList.of({ allow: ['0.0.0.0/0'], deny: [] }) !== undefined);
  assert.ok(AccessList.of({ allow: ['0.0.0.0/0', '::/0'], deny: ['10.0.0.0/8'] }) !== undefined);
});

test('allow, then deny; both families; an unparsable address is refused', () => {
  const a = AccessList.of({ allow: ['127.0.0.1/32', '10.0.0.0/8', '2001:db8::/32'], deny: ['10.1.0.0/16'] })!;
  assert.equal(a.admits('127.0.0.1'), true);
  assert.equal(a.admits('::ffff:127.0.0.1'), true);
  assert.equal(a.admits('127.0.0.2'), false);
  assert.equal(a.admits('10.2.3.4'), true);
  assert.equal(a.admits('10.1.3.4'), false);
  assert.equal(a.admits('2001:db8::1'), true);
  assert.equal(a.admits('2001:db9::1'), false);
  assert.equal(a.admits(''), false);
  assert.equal(a.admits('not-an-address'), false);
  const v4only = AccessList.of({ allow: ['0.0.0.0/0'], deny: [] })!;
  assert.equal(v4only.admits('192.0.2.1'), true);
  assert.equal(v4only.admits('::1'), false);
  const none = AccessList.of({ allow: [], deny: [] })!;
  assert.equal(none.admits('127.0.0.1'), false);
});
