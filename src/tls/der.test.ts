import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { children, DerError, encode, encodeOid, generalizedTime, oid, readTlv, TAG } from './der.js';

it('object identifiers and lengths round-trip', () => {
  for (const o of ['1.3.14.3.2.26', '1.3.6.1.5.5.7.48.1.1', '2.16.840.1.101.3.4.2.1', '1.2.840.113549.1.1.11']) {
    const b = encodeOid(o);
    assert.equal(oid(b, readTlv(b, 0)), o);
  }
  assert.deepEqual(encodeOid('1.3.14.3.2.26'), Buffer.from('06052b0e03021a', 'hex'));
  for (const n of [0, 127, 128, 255, 256, 70_000]) {
    const b = encode(TAG.OCTET_STRING, Buffer.alloc(n, 1));
    const t = readTlv(b, 0);
    assert.equal(t.end - t.body, n);
    assert.equal(t.end, b.length);
  }
  const seq = encode(TAG.SEQUENCE, encode(TAG.NULL), encode(TAG.INTEGER, Buffer.from([5])));
  assert.deepEqual(children(seq, readTlv(seq, 0)).map((c) => c.tag), [TAG.NULL, TAG.INTEGER]);
});

it('malformed input is refused, not read past its end', () => {
  assert.throws(() => readTlv(Buffer.from([0x30]), 0), DerError);
  assert.throws(() => readTlv(Buffer.from([0x30, 0x05, 0x01]), 0), /longer than its container/);
  assert.throws(() => readTlv(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1]), 0), /unsupported length/);
  const inner = Buffer.from([0x30, 0x03, 0x04, 0x05, 0x00]); // a child claims 5 bytes of 3
  assert.throws(() => children(inner, readTlv(inner, 0)), DerError);
});

it('GeneralizedTime', () => {
  const t = (s: string): number => {
    const b = encode(TAG.GENERALIZED_TIME, Buffer.from(s, 'latin1'));
    return generalizedTime(b, readTlv(b, 0));
  };
  assert.equal(t('20261123053000Z'), Date.UTC(2026, 10, 23, 5, 30, 0));
  assert.equal(t('20261123053000.25Z'), Date.UTC(2026, 10, 23, 5, 30, 0, 250));
  assert.throws(() => t('2026112305Z'), DerError);
});
