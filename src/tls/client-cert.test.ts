import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { rfc2253, subjectAltNames } from './client-cert.js';

it('subjectAltNames reads Node.js text, JSON-quoted values included', () => {
  assert.deepEqual(subjectAltNames(undefined), []);
  assert.deepEqual(subjectAltNames('DNS:a.example.org, URI:spiffe://x/y, IP Address:127.0.0.1'), [
    { type: 'DNS', value: 'a.example.org' },
    { type: 'URI', value: 'spiffe://x/y' },
    { type: 'IP Address', value: '127.0.0.1' },
  ]);
  assert.deepEqual(subjectAltNames('URI:"http://a/b,c\\"d", DNS:b.example.org'), [
    { type: 'URI', value: 'http://a/b,c"d' },
    { type: 'DNS', value: 'b.example.org' },
  ]);
});

it('rfc2253 writes the subject least significant first', () => {
  assert.equal(rfc2253('C=US\nO=Example\\, Inc.\nCN=alice'), 'CN=alice,O=Example\\, Inc.,C=US');
});
