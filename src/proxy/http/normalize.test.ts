import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizeHost, normalizePath } from './normalize.js';

describe('normalizePath', () => {
  it('returns a path that needs nothing as the same string', () => {
    for (const p of ['/', '/a', '/api/v1/users', '/a-b_c~d', '/a;x=1/b', '/a.b/c.d', '/x/']) assert.equal(normalizePath(p), p);
  });

  it('removes dot-segments, never above the root', () => {
    const cases: [string, string][] = [
      ['/public/../admin', '/admin'],
      ['/a/./b', '/a/b'],
      ['/a/b/../c', '/a/c'],
      ['/a/b/..', '/a/'],
      ['/a/.', '/a/'],
      ['/..', '/'],
      ['/../../etc/passwd', '/etc/passwd'],
      ['/a/../../b', '/b'],
      ['/.well-known/x', '/.well-known/x'],
      ['/a/..b/c', '/a/..b/c'],
      ['/a/...', '/a/...'],
    ];
    for (const [raw, want] of cases) assert.equal(normalizePath(raw), want, raw);
  });

  it('folds empty segments', () => {
    assert.equal(normalizePath('//admin'), '/admin');
    assert.equal(normalizePath('/a//b///c'), '/a/b/c');
    assert.equal(normalizePath('/a//'), '/a/');
    assert.equal(normalizePath('//'), '/');
  });

  it('decodes unreserved characters and upper-cases the other escapes; %2F stays encoded', () => {
    assert.equal(normalizePath('/%7Euser/%41%62c'), '/~user/Abc');
    assert.equal(normalizePath('/%2e%2e/admin'), '/admin');
    assert.equal(normalizePath('/%2E%2E/admin'), '/admin');
    assert.equal(normalizePath('/public/%2e%2e/admin'), '/admin');
    assert.equal(normalizePath('/.%2e/admin'), '/admin');
    assert.equal(normalizePath('/a%2fb'), '/a%2Fb');
    assert.equal(normalizePath('/a%20b%3f'), '/a%20b%3F');
    assert.equal(normalizePath('/caf%C3%A9'), '/caf%C3%A9');
    assert.equal(normalizePath('/a%25b'), '/a%25b', 'a literal percent sign stays');
  });

  it('encodes a raw backslash, which some servers take for a slash', () => {
    assert.equal(normalizePath('/a\\b'), '/a%5Cb');
  });

  it('refuses what servers would resolve differently', () => {
    const hostile = [
      '/admin%2f..', // a dot-segment behind an encoded slash
      '/admin%2F..',
      '/public/..%2fadmin',
      '/public%2f..%2fadmin',
      '/public/%2e%2e%2fadmin',
      '/public\\..\\admin', // backslashes
      '/public/%5c../admin',
      '/public/..;/admin', // Tomcat-style path parameter on a dot-segment
      '/public/.;x/admin',
      '/%252e%252e/admin', // double encoding of a dot
      '/public/%252e%252e/admin',
      '/a%252fb', // double encoding of a slash
      '/a%255cb',
      '/a%00b', // NUL
      '/a%zz', // malformed escapes
      '/a%2',
      '/a%',
      '/a%\u00e9\u00e9',
    ];
    for (const p of hostile) assert.equal(normalizePath(p), undefined, p);
  });

  it('is idempotent and yields no dot-segment and no empty segment (property)', () => {
    const seg = fc.constantFrom('a', 'b', '.', '..', '', '%2e', '%2E%2e', '%41', '~', 'x.y', ';p=1', '%20');
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 12 }), (segs) => {
        const p = '/' + segs.join('/');
        const n = normalizePath(p);
        if (n === undefined) return;
        assert.equal(normalizePath(n), n, `not idempotent: ${p} -> ${n}`);
        const parts = n.split('/').slice(1, -1);
        for (const s of parts) assert.ok(s !== '' && s !== '.' && s !== '..', `${p} -> ${n}`);
        assert.ok(n.startsWith('/'));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('normalizeHost', () => {
  it('lower-cases, drops the port and a trailing dot', () => {
    assert.equal(normalizeHost('Example.COM'), 'example.com');
    assert.equal(normalizeHost('example.com:80'), 'example.com');
    assert.equal(normalizeHost('example.com.'), 'example.com');
    assert.equal(normalizeHost('WWW.Example.com.:8080'), 'www.example.com');
    assert.equal(normalizeHost('[::1]:8080'), '[::1]');
    assert.equal(normalizeHost('[FE80::1]'), '[fe80::1]');
    assert.equal(normalizeHost('192.0.2.1:80'), '192.0.2.1');
    assert.equal(normalizeHost(''), '');
    const plain = 'plain.example.com';
    assert.equal(normalizeHost(plain), plain);
  });
});
