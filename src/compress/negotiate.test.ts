import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chooseCoding, DEFAULT_COMPRESS, typeListed, varyWithAcceptEncoding, weakenEtag, whyNotCompress } from './negotiate.js';

const both = ['br', 'gzip'] as const;

test('RFC 9110 §12.5.3: q-values choose the coding; ties follow the offer order', () => {
  assert.equal(chooseCoding('gzip, deflate, br', both), 'br');
  assert.equal(chooseCoding('gzip;q=1, br;q=0.5', both), 'gzip');
  assert.equal(chooseCoding('gzip', both), 'gzip');
  assert.equal(chooseCoding('x-gzip', both), 'gzip');
  assert.equal(chooseCoding('br;q=0, gzip;q=0', both), undefined);
  assert.equal(chooseCoding('*', both), 'br');
  assert.equal(chooseCoding('*;q=0.5, br;q=0', both), 'gzip');
  assert.equal(chooseCoding('identity', both), undefined);
  assert.equal(chooseCoding('', both), undefined);
  assert.equal(chooseCoding(undefined, both), undefined);
  assert.equal(chooseCoding('gzip;q=0.4, identity;q=0.9', both), undefined);
  assert.equal(chooseCoding('br;q=bogus, gzip', both), 'gzip');
  assert.equal(chooseCoding('BR', ['gzip']), undefined);
});

test('chooseCoding never returns a coding the client gave q=0 or did not accept', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('br', 'gzip', 'deflate', '*', 'identity'), fc.constantFrom('', ';q=0', ';q=0.5', ';q=1')), { maxLength: 5 }), (members) => {
      const header = members.map(([n, q]) => n + q).join(', ');
      const c = chooseCoding(header, both);
      if (c === undefined) return;
      const own = members.filter(([n]) => n === c);
      if (own.length > 0) assert.ok(own.some(([, q]) => q !== ';q=0'), header);
      else assert.ok(members.some(([n, q]) => n === '*' && q !== ';q=0'), header);
    }),
  );
});

test('SPEC §11: never HEAD, 204, 206, 304, an encoded body, no-transform, a small body or an unlisted type', () => {
  const ok = { 'content-type': 'text/html; charset=utf-8', 'content-length': '5000' };
  assert.equal(whyNotCompress('GET', 200, ok, DEFAULT_COMPRESS), undefined);
  assert.equal(whyNotCompress('GET', 200, { 'content-type': 'text/plain' }, DEFAULT_COMPRESS), undefined); // chunked: size unknown
  assert.equal(whyNotCompress('HEAD', 200, ok, DEFAULT_COMPRESS), 'method');
  for (const s of [204, 206, 304, 101]) assert.equal(whyNotCompress('GET', s, ok, DEFAULT_COMPRESS), 'status');
  assert.equal(whyNotCompress('GET', 200, { ...ok, 'content-encoding': 'gzip' }, DEFAULT_COMPRESS), 'encoded');
  assert.equal(whyNotCompress('GET', 200, { ...ok, 'content-encoding': 'identity' }, DEFAULT_COMPRESS), undefined);
  assert.equal(whyNotCompress('GET', 200, { ...ok, 'cache-control': 'public, no-transform' }, DEFAULT_COMPRESS), 'no-transform');
  assert.equal(whyNotCompress('GET', 200, { ...ok, 'content-length': '100' }, DEFAULT_COMPRESS), 'small');
  assert.equal(whyNotCompress('GET', 200, { ...ok, 'content-type': 'image/png' }, DEFAULT_COMPRESS), 'type');
  assert.equal(whyNotCompress('GET', 200, { 'content-length': '5000' }, DEFAULT_COMPRESS), 'type');
});

test('types: exact and whole-type matches, parameters ignored', () => {
  assert.equal(typeListed('Text/CSS', ['text/*']), true);
  assert.equal(typeListed('application/json; charset=utf-8', ['application/json']), true);
  assert.equal(typeListed('application/jsonx', ['application/json']), false);
  assert.equal(typeListed('textual/x', ['text/*']), false);
});

test('ETag weakened once; Vary gains Accept-Encoding once', () => {
  assert.equal(weakenEtag('"a"'), 'W/"a"');
  assert.equal(weakenEtag('W/"a"'), 'W/"a"');
  assert.equal(varyWithAcceptEncoding(undefined), 'Accept-Encoding');
  assert.equal(varyWithAcceptEncoding('Origin'), 'Origin, Accept-Encoding');
  assert.equal(varyWithAcceptEncoding('accept-encoding'), 'accept-encoding');
  assert.equal(varyWithAcceptEncoding('*'), '*');
});
