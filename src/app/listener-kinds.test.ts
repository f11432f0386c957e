import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import '../balancer/index.js';
import { validateConfig } from '../config/load.js';
import { listenerSchema } from '../config/schema/listener.js';
import { kindKey } from '../listener/kind.js';
import { kindOf, listenerKinds } from './listener-kinds.js';

it('the listener union of the configuration holds exactly the registered kinds, each under its protocol and data plane', () => {
  // A member of the union is a kind's schema, or (protocol tcp) a union by dataPlane of the userspace and kernel kinds.
  const options = (listenerSchema.options as readonly { options?: readonly unknown[] }[]).flatMap((o) => o.options ?? [o]);
  assert.equal(options.length, listenerKinds.length);
  for (const k of listenerKinds) {
    const key = kindKey(k);
    assert.ok(options.includes(k.schema), `kind ${key}: its schema is a member of listenerSchema`);
    const shape = (k.schema as unknown as { shape: { protocol: { value: unknown }; dataPlane?: { value?: unknown } } }).shape;
    assert.equal(shape.protocol.value, k.protocol, `kind ${key}: its schema's protocol literal`);
    assert.equal(shape.dataPlane?.value, k.dataPlane, `kind ${key}: its schema's dataPlane literal`);
    assert.equal(kindOf(k), k);
  }
  assert.equal(new Set(listenerKinds.map(kindKey)).size, listenerKinds.length, 'one kind per protocol and data plane');
  assert.equal(kindOf('tcp').dataPlane, undefined, 'a bare protocol names its userspace kind');
  assert.equal(kindOf({ protocol: 'udp', dataPlane: 'kernel' }).protocol, 'udp');
  assert.throws(() => kindOf('gopher'), /no registered kind/);
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
