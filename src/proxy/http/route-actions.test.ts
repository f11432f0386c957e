import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { compileEdits, compileRedirect, compileRespond } from './route-actions.js';

const req = (o: Partial<{ method: string; path: string; query: string; host: string }> = {}) => ({
  method: o.method ?? 'GET',
  path: o.path ?? '/docs/a',
  query: o.query ?? '',
  host: o.host ?? 'example.com',
});

describe('redirect', () => {
  it('fills the location template from the request', () => {
    const r = compileRedirect(301, 'https://{host}{path}{query}', '');
    assert.equal(r.status, 301);
    assert.equal(
      r.render(req({ query: 'x=1' }), 'http', true),
      'HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/docs/a?x=1\r\nContent-Length: 0\r\n\r\n',
    );
    assert.equal(r.render(req(), 'http', false), 'HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/docs/a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });

  it('keeps literal text, repeats placeholders, and takes extra headers', () => {
    const r = compileRedirect(308, '{scheme}://new.example/{host}/v2{path}', 'Cache-Control: no-store\r\n');
    assert.equal(
      r.render(req(), 'https', true),
      'HTTP/1.1 308 Permanent Redirect\r\nLocation: https://new.example/example.com/v2/docs/a\r\nContent-Length: 0\r\nCache-Control: no-store\r\n\r\n',
    );
  });
});

describe('respond', () => {
  it('answers with its status, headers and body; HEAD gets the head only', () => {
    const r = compileRespond(403, 'forbidden\n', { 'X-Reason': 'policy' }, '');
    const full = r.render(req(), 'http', true);
    assert.equal(full, 'HTTP/1.1 403 Forbidden\r\nX-Reason: policy\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nforbidden\n');
    assert.equal(r.render(req({ method: 'HEAD' }), 'http', true), full.slice(0, full.length - 10));
    assert.ok(r.render(req(), 'http', false).includes('Connection: close\r\n\r\nforbidden'));
  });

  it('counts bytes, not characters, and keeps a given Content-Type', () => {
    const r = compileRespond(200, 'héllo ✓', { 'Content-Type': 'text/html' }, '');
    const out = Buffer.from(r.render(req(), 'http', true), 'latin1');
    const text = out.toString('utf8');
    assert.ok(text.includes('Content-Length: 10\r\n'), text);
    assert.ok(text.endsWith('\r\n\r\nhéllo ✓'));
    assert.ok(!text.includes('text/plain'));
  });

  it('204 has no Content-Length and no body', () => {
    assert.equal(compileRespond(204, '', {}, '').render(req(), 'http', true), 'HTTP/1.1 204 No Content\r\n\r\n');
  });
});

describe('compileEdits', () => {
  it('sends header values in UTF-8', () => {
    const e = compileEdits({ set: { 'X-Name': 'Zoë' }, add: {}, remove: [] });
    assert.equal(Buffer.from(e.add, 'latin1').toString('utf8'), 'X-Name: Zoë\r\n');
  });
});
