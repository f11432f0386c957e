import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isObject, parseJsonObject } from './guards.js';

describe('guards', () => {
  it('isObject: objects and arrays, not null or primitives', () => {
    assert.equal(isObject({}), true);
    assert.equal(isObject([]), true);
    for (const x of [null, undefined, 0, '', 'x', true]) assert.equal(isObject(x), false, String(x));
  });

  it('parseJsonObject: an object, or undefined for bad JSON and non-objects', () => {
    assert.deepEqual(parseJsonObject('{"a":1}'), { a: 1 });
    for (const t of ['', '{', 'null', '1', '"s"']) assert.equal(parseJsonObject(t), undefined, t);
  });
});
