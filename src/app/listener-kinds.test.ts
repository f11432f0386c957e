import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { z } from 'zod';
import '../balancer/index.js';
import { validateConfig } from '../config/load.js';
import { listenerConfigKinds, listenerUnion, registerListenerConfig } from '../config/schema/listener.js';
import { kindKey } from '../listener/kind.js';
import { kindOf, listenerKinds } from './listener-kinds.js';

it('the listener union of the configuration is made of the registered kinds, each under its protocol and data plane, in order', () => {
  // One member per protocol; the kinds that share one (tcp: userspace and kernel) are a union by dataPlane.
  const options = (listenerUnion() as unknown as { options: readonly { options?: readonly unknown[] }[] }).options.flatMap((o) => o.options ?? [o]);
  assert.equal(options.length, listenerKinds.length);
  for (const k of listenerKinds) assert.ok(options.includes(k.schema), `kind ${kindKey(k)}: its schema is a member of the union`);
  assert.deepEqual(listenerConfigKinds(), listenerKinds);
  for (const k of listenerKinds) {
    const key = kindKey(k);
    const shape = (k.schema as unknown as { shape: { protocol: { value: unknown }; dataPlane?: { value?: unknown } } }).shape;
    assert.equal(shape.protocol.value, k.protocol, `kind ${key}: its schema's protocol literal`);
    assert.equal(shape.dataPlane?.value, k.dataPlane, `kind ${key}: its schema's dataPlane literal`);
    assert.equal(kindOf(k), k);
  }
  assert.equal(new Set(listenerKinds.map(kindKey)).size, listenerKinds.length, 'one kind per protocol and data plane');
  assert.equal(kindOf('tcp').dataPlane, undefined, 'a bare protocol names its userspace kind');
  assert.equal(kindOf({ protocol: 'udp', dataPlane: 'kernel' }).protocol, 'udp');
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
    (err: Error) => err.message.includes(`unknown protocol "gopher": one of ${[...new Set(listenerKinds.map((k) => k.protocol))].join(' | ')}`),
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
