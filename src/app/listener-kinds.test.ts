import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { z } from 'zod';
import '../balancer/index.js';
import { validateConfig } from '../config/load.js';
import { listenerConfigKinds, listenerUnion, registerListenerConfig } from '../config/schema/listener.js';
import { kindOf, listenerKinds } from './listener-kinds.js';

it('the listener union of the configuration is made of the registered kinds, each under its protocol, in order', () => {
  const options = (listenerUnion() as unknown as { options: readonly unknown[] }).options;
  assert.deepEqual(options, listenerKinds.map((k) => k.schema));
  assert.deepEqual(listenerConfigKinds(), listenerKinds);
  for (const k of listenerKinds) {
    const shape = (k.schema as unknown as { shape: { protocol: { value: unknown } } }).shape;
    assert.equal(shape.protocol.value, k.protocol, `kind ${k.protocol}: its schema's protocol literal`);
    assert.equal(kindOf(k.protocol), k);
  }
  assert.equal(new Set(listenerKinds.map((k) => k.protocol)).size, listenerKinds.length, 'one kind per protocol');
  assert.throws(() => kindOf('gopher'), /no registered kind/);
  assert.throws(() => registerListenerConfig(listenerKinds[0]!), /registered twice/);
  const late = { protocol: 'gopher', schema: z.strictObject({ protocol: z.literal('gopher') }) };
  assert.throws(() => registerListenerConfig(late), /after a configuration was validated/, 'the union is fixed once made');
  assert.throws(() => registerListenerConfig({ ...late, schema: z.strictObject({ protocol: z.literal('finger') }) }), /its schema's protocol is finger/);
  assert.deepEqual(listenerConfigKinds(), listenerKinds, 'nothing was added');
});

it('an unknown protocol names the registered kinds, in order', () => {
  assert.throws(
    () => validateConfig({ admin: { enabled: false }, listeners: [{ name: 'g', protocol: 'gopher', listen: '127.0.0.1:0' }] }, { runnable: false }),
    (err: Error) => err.message.includes(`unknown protocol "gopher": one of ${listenerKinds.map((k) => k.protocol).join(' | ')}`),
  );
});

it("each kind's share of its connection limit under cluster.workers", () => {
  const config = validateConfig(
    {
      admin: { enabled: false },
      listeners: [
        { name: 'h', protocol: 'http', listen: '127.0.0.1:0', limits: { maxConnections: 9 }, routes: [{ pool: 'p' }] },
        { name: 't', protocol: 'tcp', listen: '127.0.0.1:0', maxConnections: 9, pool: 'p' },
        { name: 'd', protocol: 'dns', listen: '127.0.0.1:0', tcp: { maxConnections: 9 }, zones: [{ name: 'example.com' }] },
        { name: 'r', protocol: 'redirect', listen: '127.0.0.1:0', pool: 'p' },
      ],
      pools: [{ name: 'p', servers: [{ name: 'a', address: '127.0.0.1:9', url: 'http://a.example/' }] }],
    },
    { runnable: false },
  );
  const share = (name: string): unknown => {
    const lc = config.listeners.find((l) => l.name === name)!;
    const kind = kindOf(lc.protocol);
    return kind.shareOf === undefined ? lc : kind.shareOf(lc, 2);
  };
  const [h, t, d, r] = ['h', 't', 'd', 'r'].map(share) as [
    { limits: { maxConnections: number } },
    { maxConnections: number },
    { tcp: { maxConnections: number } },
    unknown,
  ];
  assert.equal(h.limits.maxConnections, 4);
  assert.equal(t.maxConnections, 4);
  assert.equal(d.tcp.maxConnections, 4);
  assert.equal(r, config.listeners.find((l) => l.name === 'r'), 'a redirect listener has no limit of the group');
});
