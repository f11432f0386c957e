import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import '../../app/listener-kinds.js';
import { formatPath } from '../path.js';
import type { Transport } from '../schema/listener.js';
import { checkListenConflicts } from './listen-conflicts.js';

const conflicts = (listeners: unknown[], transportsOf?: (p: unknown) => readonly Transport[]): string[] =>
  checkListenConflicts({ admin: { listen: '127.0.0.1:9090' }, listeners }, transportsOf).map((i) => `${formatPath(i.path)}: ${i.message}`);

it('listeners conflict on one address and port only through a transport they share (each kind names its own)', () => {
  const dns = { name: 'd', protocol: 'dns', listen: '127.0.0.1:53' };
  const tcp = { name: 't', protocol: 'tcp', listen: '0.0.0.0:53' };
  // The registered kinds: dns binds UDP and TCP, tcp binds TCP, so they collide.
  assert.deepEqual(conflicts([dns, tcp]), ['listeners.1.listen: 0.0.0.0:53 is already used by listener "d" (listeners.0.listen)']);
  // A kind that binds UDP only (as a kernel udp listener would) leaves TCP on the same port free, not UDP.
  const udp = { name: 'u', protocol: 'udp-only', listen: '127.0.0.1:53' };
  const transports = (p: unknown): readonly Transport[] => (p === 'udp-only' ? ['udp'] : p === 'dns' ? ['udp', 'tcp'] : ['tcp']);
  assert.deepEqual(conflicts([tcp, udp], transports), []);
  assert.deepEqual(conflicts([udp, dns], transports), ['listeners.1.listen: 127.0.0.1:53 is already used by listener "u" (listeners.0.listen)']);
  // The admin API is TCP.
  assert.deepEqual(conflicts([{ ...udp, listen: '127.0.0.1:9090' }], transports), []);
  assert.deepEqual(conflicts([{ ...tcp, listen: '127.0.0.1:9090' }], transports), ['admin.listen: 127.0.0.1:9090 is already used by listener "t" (listeners.0.listen)']);
});
