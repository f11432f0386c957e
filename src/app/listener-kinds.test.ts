import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { listenerSchema } from '../config/schema/listener.js';
import { kindOf, listenerKinds } from './listener-kinds.js';

it('the listener union of the configuration holds exactly the registered kinds, each under its protocol', () => {
  const options = listenerSchema.options as readonly unknown[];
  assert.equal(options.length, listenerKinds.length);
  for (const k of listenerKinds) {
    assert.ok(options.includes(k.schema), `kind ${k.protocol}: its schema is a member of listenerSchema`);
    const shape = (k.schema as unknown as { shape: { protocol: { value: unknown } } }).shape;
    assert.equal(shape.protocol.value, k.protocol, `kind ${k.protocol}: its schema's protocol literal`);
    assert.equal(kindOf(k.protocol), k);
  }
  assert.equal(new Set(listenerKinds.map((k) => k.protocol)).size, listenerKinds.length, 'one kind per protocol');
  assert.throws(() => kindOf('gopher'), /no registered kind/);
});
