import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { AdminRouter } from './router.js';

const h1 = (): string => 'one';
const h2 = (): string => 'two';

describe('AdminRouter', () => {
  it('matches literal and parameter segments, percent-decoding parameters', () => {
    const r = new AdminRouter();
    r.route('GET', '/api/v1/pools', h1);
    r.route('GET', '/api/v1/pools/{pool}/servers/{name}', h2);
    const a = r.match('GET', '/api/v1/pools/');
    assert.equal(a.kind, 'found');
    const b = r.match('GET', '/api/v1/pools/web/servers/a%20b');
    assert.ok(b.kind === 'found');
    assert.equal(b.handler, h2);
    assert.deepEqual(b.params, { pool: 'web', name: 'a b' });
    assert.equal(r.match('GET', '/api/v1/pools/web/servers').kind, 'not-found');
    assert.equal(r.match('GET', '/nothing').kind, 'not-found');
  });

  it('answers 405 with the allowed methods for a known path and HEAD through GET', () => {
    const r = new AdminRouter();
    r.route('GET', '/x/{id}', h1);
    r.route('DELETE', '/x/{id}', h2);
    const m = r.match('POST', '/x/1');
    assert.ok(m.kind === 'method-not-allowed');
    assert.deepEqual(m.allow, ['DELETE', 'GET', 'HEAD']);
    const head = r.match('HEAD', '/x/1');
    assert.ok(head.kind === 'found');
    assert.equal(head.handler, h1);
  });

  it('refuses a malformed escape and a duplicate registration', () => {
    const r = new AdminRouter();
    r.route('GET', '/x/{id}', h1);
    assert.equal(r.match('GET', '/x/%E0%A4%A').kind, 'bad-path');
    assert.throws(() => r.route('GET', '/x/{other}', h2), /already registered/);
    assert.throws(() => r.route('GET', 'x', h2), /starts with/);
    assert.throws(() => r.route('GET', '/x/a{b}', h2), /whole segment/);
    r.route('PUT', '/x/{id}', h2); // another method on the same pattern is fine
    assert.deepEqual(r.list(), ['GET /x/{id}', 'PUT /x/{id}']);
  });
});
