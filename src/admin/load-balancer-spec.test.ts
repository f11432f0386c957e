import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { expandLoadBalancer, healthFromElb, listenerNames, serverNameOf, withPort } from './load-balancer-spec.js';

const place = { listen: '10.0.0.1', address: '192.0.2.7', zone: 'lb.example.com', zones: ['lb.example.com', 'other.test'] };

describe('a load balancer as the file would hold it', () => {
  it('one listener: a listener NAME, a pool NAME with the servers at serverPort, an A record in the zone', () => {
    const x = expandLoadBalancer({ name: 'Shop', listeners: [{ protocol: 'HTTP', port: 80, serverPort: 8080 }], servers: ['10.1.0.5', '10.1.0.6:9000'] }, place);
    assert.deepEqual(x.issues, []);
    assert.deepEqual(x.listeners, [{ name: 'Shop', protocol: 'http', listen: '10.0.0.1:80', routes: [{ pool: 'Shop' }] }]);
    assert.deepEqual(x.pool, { name: 'Shop', servers: [{ name: '10.1.0.5-8080', address: '10.1.0.5:8080' }, { name: '10.1.0.6-9000', address: '10.1.0.6:9000' }] });
    assert.deepEqual(x.record, { name: 'shop', type: 'A', values: ['192.0.2.7'] });
    assert.equal(x.zone, 'lb.example.com');
  });

  it('several listeners are NAME-PORT; tcp listeners name the pool; zone given in the body', () => {
    const x = expandLoadBalancer({ name: 'db', zone: 'other.test', listeners: [{ protocol: 'tcp', port: 3306, serverPort: 3306 }, { protocol: 'tcp', port: 3307, serverPort: 3306 }] }, place);
    assert.deepEqual(x.issues, []);
    assert.deepEqual(x.listeners.map((l) => [l['name'], l['pool']]), [['db-3306', 'db'], ['db-3307', 'db']]);
    assert.equal(x.zone, 'other.test');
  });

  it('every problem of the body, at its path', () => {
    const x = expandLoadBalancer(
      { name: '-x', listeners: [{ protocol: 'https', port: 1, serverPort: 80 }, { protocol: 'http', port: 2, serverPort: 81, tls: 1 }], servers: [''], zone: 'nope.test', extra: true },
      place,
    );
    assert.deepEqual(
      x.issues.map((i) => i.path.join('.')).sort(),
      ['extra', 'listeners.0.protocol', 'listeners.1.serverPort', 'listeners.1.tls', 'name', 'servers.0', 'zone'],
    );
    assert.match(x.issues.find((i) => i.path.join('.') === 'listeners.0.protocol')!.message, /POST \/api\/v1\/listeners/);
  });

  it('without a default zone among several, the zone must be given; without an address, no name can be made', () => {
    const several = expandLoadBalancer({ name: 'a', listeners: [{ protocol: 'http', port: 1, serverPort: 2 }] }, { ...place, zone: undefined });
    assert.deepEqual(several.issues.map((i) => i.path), [['zone']]);
    const none = expandLoadBalancer({ name: 'a', listeners: [{ protocol: 'http', port: 1, serverPort: 2 }] }, { listen: '0.0.0.0', address: undefined, zone: undefined, zones: [] });
    assert.deepEqual(none.issues, []);
    assert.equal(none.record, undefined);
  });

  it("ELB's health check in Portico's form", () => {
    const issues: never[] = [];
    assert.deepEqual(healthFromElb({ target: 'HTTP:8080/ping', interval: '30s', timeout: '3s', healthyThreshold: 2, unhealthyThreshold: 3 }, ['health'], issues), {
      type: 'http',
      port: 8080,
      path: '/ping',
      interval: '30s',
      timeout: '3s',
      rise: 2,
      fall: 3,
    });
    assert.deepEqual(healthFromElb({ target: 'tcp:22' }, [], issues), { type: 'tcp', port: 22 });
    assert.deepEqual(healthFromElb({ type: 'none' }, [], issues), { type: 'none' });
    const bad: { path: readonly (string | number)[]; message: string }[] = [];
    healthFromElb({ target: 'TCP:22/x' }, ['health'], bad);
    assert.deepEqual(bad.map((i) => i.path), [['health', 'target']]);
  });

  it('names and ports', () => {
    assert.equal(withPort('10.0.0.1', 80), '10.0.0.1:80');
    assert.equal(withPort('10.0.0.1:81', 80), '10.0.0.1:81');
    assert.equal(withPort('::1', 80), '[::1]:80');
    assert.equal(withPort('[::1]:81', 80), '[::1]:81');
    assert.equal(serverNameOf('[::1]:80'), 's--1-80');
    assert.deepEqual(listenerNames('a', [80]), ['a']);
    assert.deepEqual(listenerNames('a', [0, 0, 81]), ['a-1', 'a-2', 'a-81']);
  });
});
