import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { RuntimeChange } from '../admin/journal.js';
import { applyDelta, diffChanges, parseDelta } from './runtime-delta.js';

const at = '2026-01-01T00:00:00.000Z';

describe('definitions made through the API as deltas', () => {
  it('a load balancer added, changed and removed travels as its whole entry, and others are kept', () => {
    const server: RuntimeChange = { kind: 'server', pool: 'web', server: 'a', set: { weight: 2 }, at };
    const lb: RuntimeChange = { kind: 'loadbalancer', name: 'shop', spec: { name: 'shop', listeners: [{ protocol: 'http', port: 80, serverPort: 8080 }] }, at };
    const added = diffChanges([server], [server, lb]);
    assert.deepEqual(added, [{ kind: 'definition', of: 'loadbalancer', name: 'shop', at, entry: lb }]);
    // Through the store as JSON, checked like the journal.
    const parsed = parseDelta(JSON.parse(JSON.stringify(added)));
    assert.deepEqual(parsed, added);
    const elsewhere: RuntimeChange[] = [{ kind: 'pool', name: 'api', removed: true, at }];
    assert.deepEqual(applyDelta(elsewhere, parsed!), [elsewhere[0], lb]);
    const changed: RuntimeChange = { ...lb, spec: { ...lb.spec, servers: ['10.0.0.5'] } };
    assert.deepEqual(applyDelta([...elsewhere, lb], diffChanges([lb], [changed])), [elsewhere[0], changed]);
    assert.deepEqual(applyDelta([...elsewhere, changed], diffChanges([changed], [])), elsewhere);
  });

  it('a delta whose entry is not a journal entry is refused', () => {
    assert.equal(parseDelta([{ kind: 'definition', of: 'pool', name: 'p', at, entry: { kind: 'pool', name: 'q', spec: {}, at } }]), undefined);
    assert.equal(parseDelta([{ kind: 'definition', of: 'pool', name: 'p', at, entry: { kind: 'pool', name: 'p', at } }]), undefined);
    assert.equal(parseDelta([{ kind: 'definition', of: 'route', name: 'p', at, entry: null }]), undefined);
  });
});
