import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import '../app/listener-kinds.js';
import '../balancer/index.js';
import { ConfigError } from './errors.js';
import { parseConfigText, validateConfig } from './load.js';

const pool = (health: string): string => `pools:\n  - name: web\n    health: { type: tcp, ${health} }\n    servers: [ { name: a, address: 127.0.0.1:9101 } ]\n`;

test('in a file, a duration without a unit is an error that says so (only 0 needs none)', () => {
  assert.throws(
    () => parseConfigText(pool('interval: 2'), 'lb.yaml', {}),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.lines().join('\n') === 'lb.yaml:3:26 pools.0.health.interval: duration 2 has no unit: write 2s for seconds or 2ms for milliseconds (units: ms, s, m, h, d)',
  );
  assert.throws(() => parseConfigText(pool('interval: "1500"'), 'lb.yaml', {}), /duration "1500" has no unit: write 1500s for seconds or 1500ms/);
  assert.throws(() => parseConfigText('{"shutdownGrace": 5}', 'lb.json', {}), /lb\.json:1:2 shutdownGrace: duration 5 has no unit/);
  assert.equal((parseConfigText(pool('interval: 2s'), 'lb.yaml', {}).pools[0]!.health as { interval: number }).interval, 2000);
  assert.equal(parseConfigText('shutdownGrace: 0\n', 'lb.yaml', {}).shutdownGrace, 0);
});

test('an object given to createPortico may give a duration in milliseconds (the parsed form)', () => {
  assert.equal(validateConfig({ shutdownGrace: 2500 }).shutdownGrace, 2500);
});
