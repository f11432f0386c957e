import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import '../../app/listener-kinds.js';
import '../../balancer/index.js';
import { ConfigError } from '../../config/errors.js';
import { validateConfig } from '../../config/validate.js';

const https = (limits: Record<string, unknown>): unknown => ({
  admin: { enabled: false },
  listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', limits, tls: { certificates: [{ cert: 'c.pem', key: 'k.pem' }] }, routes: [{ pool: 'p' }] }],
  pools: [{ name: 'p', servers: [{ name: 'a', address: '127.0.0.1:9' }] }],
});

function issues(config: unknown): string[] {
  try {
    validateConfig(config, { runnable: false });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

it('https limits: h2MaxConcurrentStreams and h2MaxSessionMemory, their defaults and bounds', () => {
  const l = validateConfig(https({}), { runnable: false }).listeners[0]!;
  assert.ok(l.protocol === 'https');
  assert.equal(l.limits.h2MaxConcurrentStreams, 128);
  assert.equal(l.limits.h2MaxSessionMemory, 16_000_000);
  const set = validateConfig(https({ h2MaxConcurrentStreams: 7, h2MaxSessionMemory: '4MB' }), { runnable: false }).listeners[0]!;
  assert.ok(set.protocol === 'https');
  assert.equal(set.limits.h2MaxConcurrentStreams, 7);
  assert.equal(set.limits.h2MaxSessionMemory, 4_000_000);
  assert.deepEqual(issues(https({ h2MaxConcurrentStreams: 0 })), ['listeners.0.limits.h2MaxConcurrentStreams: 0 is out of range 1-2147483647']);
  assert.deepEqual(issues(https({ h2MaxSessionMemory: '1MiB' })), [
    'listeners.0.limits.h2MaxSessionMemory: bad size "1MiB": h2 session memory is counted in whole megabytes (10^6 bytes), at least 1MB, e.g. 16MB',
  ]);
  // The h2 keys are the https listener's: an http listener has no h2.
  const http = https({ h2MaxConcurrentStreams: 7 }) as { listeners: Record<string, unknown>[] };
  http.listeners[0] = { ...http.listeners[0], protocol: 'http', tls: undefined };
  delete http.listeners[0]['tls'];
  assert.deepEqual(issues(http), ['listeners.0.limits.h2MaxConcurrentStreams: unknown key']);
});
