import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import '../app/listener-kinds.js'; // the listener kinds the schema is built from
import '../balancer/index.js';
import { validateConfig } from '../config/validate.js';
import { checkDefinitions, defineOver, jsonPath, redacted } from './definitions.js';
import type { DefinitionChange } from './journal.js';

const at = '2026-01-01T00:00:00.000Z';
const file = validateConfig({
  admin: { token: 'secret-token' },
  cluster: { store: 'redis://:pw@127.0.0.1:6379/0' },
  listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:8080', routes: [{ pool: 'web' }] }],
  pools: [{ name: 'web', servers: [{ name: 'a', address: '127.0.0.1:9001' }] }],
});

describe('definitions laid over the file', () => {
  it('paths as JSON paths', () => {
    assert.equal(jsonPath(['listeners', 3, 'port']), 'listeners[3].port');
    assert.equal(jsonPath(['a b', 0]), '["a b"][0]');
    assert.equal(jsonPath([]), '(root)');
  });

  it('a pool and a listener defined, a file pool replaced; the document validates as one', () => {
    const defs: DefinitionChange[] = [
      { kind: 'pool', name: 'api', spec: { name: 'api', servers: [{ name: 'b', address: '127.0.0.1:9002' }] }, at },
      { kind: 'listener', name: 'api', spec: { name: 'api', protocol: 'tcp', listen: '127.0.0.1:8081', pool: 'api' }, at },
      { kind: 'pool', name: 'web', spec: { name: 'web', balance: 'leastconn', servers: [] }, at },
    ];
    const d = defineOver(file, defs);
    assert.ok(d.entries.every((e) => e.applied));
    assert.deepEqual(d.config.pools.map((p) => [p.name, p.balance]), [['web', 'leastconn'], ['api', 'roundrobin']]);
    assert.deepEqual(d.config.listeners.map((l) => l.name), ['web', 'api']);
  });

  it('a definition that no longer validates is left out with its reason; the others apply', () => {
    const defs: DefinitionChange[] = [
      { kind: 'listener', name: 'x', spec: { name: 'x', protocol: 'tcp', listen: '127.0.0.1:8082', pool: 'gone' }, at },
      { kind: 'pool', name: 'api', spec: { name: 'api', servers: [] }, at },
    ];
    const d = defineOver(file, defs);
    assert.deepEqual(d.entries.map((e) => e.applied), [false, true]);
    assert.match(d.entries[0]!.reason!, /^pool: pool "gone" does not exist/);
    assert.deepEqual(d.config.pools.map((p) => p.name), ['web', 'api']);
  });

  it('a change checked against the running document: its own problems at body paths, what it breaks under config.', () => {
    const target: DefinitionChange = { kind: 'pool', name: 'web', removed: true, at };
    const r = checkDefinitions(file, [], [target], target);
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.issues.map((i) => i.path), ['config.listeners[0].routes[0].pool']);
    const bad: DefinitionChange = { kind: 'pool', name: 'p', spec: { name: 'p', servers: [{ name: 'a', address: 'x' }], retries: -1 }, at };
    const r2 = checkDefinitions(file, [], [bad], bad);
    assert.deepEqual(!r2.ok && r2.issues.map((i) => i.path).sort(), ['retries', 'servers[0].address']);
  });

  it('secrets are redacted from the running document', () => {
    const r = redacted(file) as { admin: { token: string }; cluster: { store: string } };
    assert.equal(r.admin.token, '(redacted)');
    assert.equal(r.cluster.store, 'redis://:(redacted)@127.0.0.1:6379/0');
  });
});
