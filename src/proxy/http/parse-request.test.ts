import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRequestHead } from './parse-request.js';
import type { HeadLimits, ParseFailure, RequestHead } from './parse-request.js';

const LIMITS: HeadLimits = { maxHeaderBytes: 16384, maxHeaders: 100, maxUriBytes: 8192 };

function parse(raw: string, limits: HeadLimits = LIMITS): RequestHead | ParseFailure | null {
  return parseRequestHead(Buffer.from(raw, 'latin1'), limits);
}

function ok(raw: string, limits: HeadLimits = LIMITS): RequestHead {
  const r = parse(raw, limits);
  assert.ok(r !== null && r.ok, `expected a head for ${JSON.stringify(raw)}, got ${JSON.stringify(r)}`);
  return r;
}

function refused(raw: string, status: ParseFailure['status'], limits: HeadLimits = LIMITS): ParseFailure {
  const r = parse(raw, limits);
  assert.ok(r !== null && !r.ok, `expected ${status} for ${JSON.stringify(raw)}, got ${JSON.stringify(r)}`);
  assert.equal(r.status, status, `${JSON.stringify(raw)}: ${r.reason}`);
  return r;
}

/** A complete 1.1 GET with the given extra field lines. */
const get = (fields: string, target = '/'): string => `GET ${target} HTTP/1.1\r\nHost: example.com\r\n${fields}\r\n`;

describe('parseRequestHead: successes', () => {
  it('parses a typical request into every field', () => {
    const raw =
      'GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: test/1.0\r\nAccept:  */*  \r\nX-Empty:\r\n\r\n';
    const r = ok(raw);
    assert.equal(r.method, 'GET');
    assert.equal(r.target, '/a/b?c=d');
    assert.equal(r.form, 'origin');
    assert.equal(r.path, '/a/b?c=d');
    assert.equal(r.minor, 1);
    assert.deepEqual(r.names, ['Host', 'User-Agent', 'Accept', 'X-Empty']);
    assert.deepEqual(r.lnames, ['host', 'user-agent', 'accept', 'x-empty']);
    assert.deepEqual(r.values, ['example.com:8080', 'test/1.0', '*/*', '']);
    assert.equal(r.headEnd, raw.length);
    assert.equal(r.host, 'example.com:8080');
    assert.equal(r.contentLength, -1);
    assert.equal(r.chunked, false);
    assert.equal(r.keepAlive, true);
    assert.deepEqual(r.connection, []);
    assert.equal(r.upgrade, undefined);
    assert.equal(r.expectContinue, false);
  });

  it('stops at the end of the head and ignores body bytes after it, even invalid ones', () => {
    const head = 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n';
    const r = ok(`${head}\x00\n\r body`);
    assert.equal(r.headEnd, head.length);
    assert.equal(r.contentLength, 5);
  });

  it('skips empty lines before the request-line (RFC 9112 §2.2) and counts them in headEnd', () => {
    const raw = '\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const r = ok(raw);
    assert.equal(r.method, 'GET');
    assert.equal(r.headEnd, raw.length);
  });

  it('keeps extension methods and case-sensitive tokens', () => {
    assert.equal(ok('PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n').method, 'PROPFIND');
    assert.equal(ok('M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n').method, 'M-SEARCH');
    assert.equal(ok('purge /x HTTP/1.1\r\nHost: a\r\n\r\n').method, 'purge');
  });

  it('accepts HTTP/1.0 without Host and defaults to close', () => {
    const r = ok('GET / HTTP/1.0\r\n\r\n');
    assert.equal(r.minor, 0);
    assert.equal(r.host, undefined);
    assert.equal(r.keepAlive, false);
    assert.deepEqual(r.names, []);
  });

  it('treats a higher HTTP/1 minor version as 1.1 (RFC 9110 §2.5)', () => {
    assert.equal(ok('GET / HTTP/1.2\r\nHost: a\r\n\r\n').minor, 1);
  });

  it('handles keep-alive and Connection tokens', () => {
    assert.equal(ok(get('Connection: close\r\n')).keepAlive, false);
    assert.equal(ok(get('Connection: CLOSE\r\n')).keepAlive, false);
    assert.equal(ok('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').keepAlive, true);
    assert.equal(ok('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true);
    assert.equal(ok('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n').keepAlive, false);
    const r = ok(get('Connection: Keep-Alive, X-Trace\r\nConnection: ,, te ,\r\n'));
    assert.deepEqual(r.connection, ['keep-alive', 'x-trace', 'te']);
    assert.equal(r.keepAlive, true);
  });

  it('reports Upgrade only when Connection names it, and never on HTTP/1.0', () => {
    const ws = ok(get('Connection: Upgrade\r\nUpgrade: websocket\r\n'));
    assert.equal(ws.upgrade, 'websocket');
    assert.deepEqual(ws.connection, ['upgrade']);
    assert.equal(ok(get('Upgrade: websocket\r\n')).upgrade, undefined);
    assert.equal(ok('GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n').upgrade, undefined);
    assert.equal(ok(get('Connection: upgrade\r\nUpgrade: h2c\r\nUpgrade: websocket\r\n')).upgrade, 'websocket');
  });

  it('reports only the configured Upgrade protocols, never h2c (websocket by default)', () => {
    assert.equal(ok(get('Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n')).upgrade, undefined);
    assert.equal(ok(get('Connection: upgrade\r\nUpgrade: h2c, WebSocket/13\r\n')).upgrade, 'WebSocket/13');
    assert.equal(ok(get('Connection: upgrade\r\nUpgrade: TLS/1.2\r\n')).upgrade, undefined);
    const custom = { ...LIMITS, upgrades: new Set(['tls', 'websocket']) };
    assert.equal(ok(get('Connection: upgrade\r\nUpgrade: TLS/1.2, h2c\r\n'), custom).upgrade, 'TLS/1.2');
  });

  it('refuses a Connection header that nominates a field framing or routing the request', () => {
    for (const f of ['Content-Length', 'content-length', 'Host', 'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'Forwarded', 'X-Forwarded-Client-Cert', 'X-Client-Verify']) {
      refused(`POST / HTTP/1.1\r\nHost: a\r\nConnection: ${f}\r\nContent-Length: 0\r\n\r\n`, 400);
      refused(`POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, ${f}\r\nContent-Length: 0\r\n\r\n`, 400);
    }
    // Hop-by-hop fields and unknown ones may still be nominated.
    assert.deepEqual(ok(get('Connection: te, transfer-encoding, x-trace\r\n')).connection, ['te', 'transfer-encoding', 'x-trace']);
  });

  it("refuses names that read as framing or forwarding fields with '_' for '-', and keeps other underscores", () => {
    for (const f of ['Content_Length: 5', 'transfer_encoding: chunked', 'X_Forwarded_For: 1.2.3.4', 'x-forwarded_host: a', 'X_Forwarded_Proto: https', 'X_Forwarded_Client_Cert: x', 'x_client_verify: SUCCESS']) {
      refused(get(`${f}\r\n`), 400);
    }
    assert.deepEqual(ok(get('X_Custom: 1\r\nMy_Header: 2\r\n')).values, ['example.com', '1', '2']);
  });

  it('takes the Host sent on from an absolute-form target (RFC 9112 §3.2.2)', () => {
    const r = ok('GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\nX-A: 1\r\n\r\n');
    assert.equal(r.host, 'b.example');
    assert.deepEqual(r.values, ['b.example', '1']);
    assert.deepEqual(r.lnames, ['host', 'x-a']);
    const r10 = ok('GET http://b.example:8080/x HTTP/1.0\r\nX-A: 1\r\n\r\n');
    assert.deepEqual(r10.names, ['X-A', 'Host']);
    assert.deepEqual(r10.values, ['1', 'b.example:8080']);
  });

  it('detects Expect: 100-continue on HTTP/1.1 only', () => {
    assert.equal(ok(get('Expect: 100-continue\r\n')).expectContinue, true);
    assert.equal(ok(get('Expect: 100-Continue\r\n')).expectContinue, true);
    assert.equal(ok(get('Expect: something\r\n')).expectContinue, false);
    assert.equal(ok('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n').expectContinue, false);
  });

  it('parses Content-Length and chunked framing', () => {
    assert.equal(ok(get('Content-Length: 0\r\n')).contentLength, 0);
    assert.equal(ok(get('Content-Length: 007\r\n')).contentLength, 7);
    assert.equal(ok(get('Content-Length: 9007199254740991\r\n')).contentLength, 9007199254740991);
    const c = ok(get('Transfer-Encoding: chunked\r\n'));
    assert.equal(c.chunked, true);
    assert.equal(c.contentLength, -1);
    assert.equal(ok(get('Transfer-Encoding: Chunked\r\n')).chunked, true);
    assert.equal(ok(get('Transfer-Encoding: gzip, chunked\r\n')).chunked, true);
    assert.equal(ok(get('Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n')).chunked, true);
    assert.equal(ok(get('Transfer-Encoding:\tchunked \r\n')).chunked, true, 'OWS around the field value is not part of it');
  });

  it('keeps obs-text and HTAB inside values', () => {
    const r = ok(get('X-Latin: caf\xe9\tau lait\xff\r\n'));
    assert.equal(r.values[1], 'caf\xe9\tau lait\xff');
  });

  it('recognises the target forms', () => {
    const opt = ok('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(opt.form, 'asterisk');
    assert.equal(opt.path, '*');
    const con = ok('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.equal(con.form, 'authority');
    assert.equal(con.host, 'example.com:443');
    assert.equal(ok('CONNECT [::1]:8443 HTTP/1.1\r\nHost: x\r\n\r\n').form, 'authority');
  });

  it('takes the host of an absolute-form target over the Host header (RFC 9112 §3.2.2)', () => {
    const r = ok('GET http://Origin.example:81/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n');
    assert.equal(r.form, 'absolute');
    assert.equal(r.host, 'Origin.example:81');
    assert.equal(r.path, '/p?q=1');
    assert.equal(r.target, 'http://Origin.example:81/p?q=1');
    assert.equal(ok('GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n').path, '/');
    assert.equal(ok('GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n').path, '/?x');
    assert.equal(ok('GET http://h/ HTTP/1.0\r\n\r\n').host, 'h', 'HTTP/1.0 needs no Host with absolute-form');
  });

  it('accepts valid Host forms', () => {
    for (const h of ['example.com', 'example.com:8080', '127.0.0.1', '[::1]', '[::1]:443', 'xn--bcher-kva.example', 'a%41b', '']) {
      assert.equal(ok(`GET / HTTP/1.1\r\nHost: ${h}\r\n\r\n`).host, h);
    }
  });

  it('accepts a head of exactly maxHeaderBytes and exactly maxHeaders fields', () => {
    const raw = get('X-A: 1\r\nX-B: 2\r\n');
    assert.equal(ok(raw, { ...LIMITS, maxHeaderBytes: raw.length }).headEnd, raw.length);
    assert.equal(ok(raw, { ...LIMITS, maxHeaders: 3 }).names.length, 3);
  });

  it('accepts a target of exactly maxUriBytes', () => {
    const target = `/${'a'.repeat(99)}`;
    assert.equal(ok(get('', target), { ...LIMITS, maxUriBytes: 100 }).target, target);
  });
});

describe('parseRequestHead: refusals', () => {
  const cases: Array<[string, string, ParseFailure['status']]> = [
    // request-line
    ['garbage request-line', 'HELLO\r\n\r\n', 400],
    ['TLS handshake on a plain port', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 400],
    ['invalid method character', 'GE(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['method with a slash', 'GE/T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['non-ASCII method', 'G\xc9T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['empty method', ' / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['lowercase standard method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['mixed-case HEAD', 'Head / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['HTTP/0.9 request (no version)', 'GET /\r\n\r\n', 400],
    ['HTTP/2.0 on an HTTP/1 listener', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
    ['h2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505],
    ['explicit HTTP/0.9', 'GET / HTTP/0.9\r\n\r\n', 505],
    ['HTTP/3.0', 'GET / HTTP/3.0\r\nHost: a\r\n\r\n', 505],
    ['two-digit minor', 'GET / HTTP/1.10\r\nHost: a\r\n\r\n', 400],
    ['lowercase protocol', 'GET / http/1.1\r\nHost: a\r\n\r\n', 400],
    ['junk after the version', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400],
    ['version without minor', 'GET / HTTP/1\r\nHost: a\r\n\r\n', 400],
    ['version with a letter', 'GET / HTTP/1.x\r\nHost: a\r\n\r\n', 400],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['two spaces after the target', 'GET /  HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['space inside the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['tab inside the target', 'GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['control character in the target', 'GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['DEL in the target', 'GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['non-ASCII target', 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['fragment in the target', 'GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['asterisk with GET', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['CONNECT with origin-form', 'CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['CONNECT without a port', 'CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['CONNECT with an empty port', 'CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['absolute-form with another scheme', 'GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['absolute-form with userinfo', 'GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['absolute-form without authority', 'GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['relative target', 'GET a/b HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    // line endings
    ['bare LF after the request-line', 'GET / HTTP/1.1\nHost: a\n\n', 400],
    ['bare LF after a field line', 'GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n', 400],
    ['bare LF ending the head', 'GET / HTTP/1.1\r\nHost: a\r\n\n', 400],
    ['bare LF before the request-line', '\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['CR without LF in the request-line', 'GET / HTTP/1.1\rHost: a\r\n\r\n', 400],
    ['CR without LF in a value', 'GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n', 400],
    ['CR without LF ending the head', 'GET / HTTP/1.1\r\nHost: a\r\n\rX', 400],
    ['obs-fold with SP', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n', 400],
    ['obs-fold with HTAB', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n', 400],
    ['whitespace before the first field line', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n', 400],
    // field names
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['tab before the colon', 'GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', 400],
    ['empty field name', 'GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n', 400],
    ['field name with a parenthesis', 'GET / HTTP/1.1\r\nHost: a\r\nX(Y): b\r\n\r\n', 400],
    ['field name with a quote', 'GET / HTTP/1.1\r\nHost: a\r\nX"Y: b\r\n\r\n', 400],
    ['non-ASCII field name', 'GET / HTTP/1.1\r\nHost: a\r\nX\xe9: b\r\n\r\n', 400],
    ['field line without a colon', 'GET / HTTP/1.1\r\nHost: a\r\nX-Alone\r\n\r\n', 400],
    // field values
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', 400],
    ['control character in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n', 400],
    ['unit separator in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x1fb\r\n\r\n', 400],
    ['DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n', 400],
    ['vertical tab in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n', 400],
    // Host
    ['missing Host on HTTP/1.1', 'GET / HTTP/1.1\r\nX: a\r\n\r\n', 400],
    ['missing Host on HTTP/1.1 with absolute-form', 'GET http://h/ HTTP/1.1\r\n\r\n', 400],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['two identical Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400],
    ['two Host headers on HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n', 400],
    ['space inside Host', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400],
    ['slash in Host', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
    ['userinfo in Host', 'GET / HTTP/1.1\r\nHost: u@a\r\n\r\n', 400],
    ['unclosed IP-literal in Host', 'GET / HTTP/1.1\r\nHost: [::1\r\n\r\n', 400],
    ['non-numeric port in Host', 'GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n', 400],
    ['port too long in Host', 'GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n', 400],
    ['bad percent-encoding in Host', 'GET / HTTP/1.1\r\nHost: a%4\r\n\r\n', 400],
    ['non-ASCII Host', 'GET / HTTP/1.1\r\nHost: b\xfccher\r\n\r\n', 400],
    // Content-Length
    ['Content-Length then Transfer-Encoding', get('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'), 400],
    ['Transfer-Encoding then Content-Length', get('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n'), 400],
    ['two equal Content-Length headers', get('Content-Length: 5\r\nContent-Length: 5\r\n'), 400],
    ['two different Content-Length headers', get('Content-Length: 5\r\ncontent-length: 6\r\n'), 400],
    ['Content-Length list', get('Content-Length: 5, 5\r\n'), 400],
    ['Content-Length with plus', get('Content-Length: +5\r\n'), 400],
    ['negative Content-Length', get('Content-Length: -1\r\n'), 400],
    ['Content-Length with inner space', get('Content-Length: 5 5\r\n'), 400],
    ['hex Content-Length', get('Content-Length: 0x5\r\n'), 400],
    ['empty Content-Length', get('Content-Length:\r\n'), 400],
    ['fractional Content-Length', get('Content-Length: 1.0\r\n'), 400],
    ['Content-Length of 2^53', get('Content-Length: 9007199254740992\r\n'), 400],
    ['huge Content-Length', get('Content-Length: 99999999999999999999999\r\n'), 400],
    // Transfer-Encoding
    ['final coding not chunked', get('Transfer-Encoding: gzip\r\n'), 400],
    ['chunked not last', get('Transfer-Encoding: chunked, gzip\r\n'), 400],
    ['chunked twice', get('Transfer-Encoding: chunked, chunked\r\n'), 400],
    ['chunked twice over two fields', get('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'), 400],
    ['chunked with a parameter', get('Transfer-Encoding: chunked;x\r\n'), 400],
    ['tab as separator', get('Transfer-Encoding: gzip,\tchunked\r\n'), 400],
    ['tab inside the list', get('Transfer-Encoding: gzip\t, chunked\r\n'), 400],
    ['empty list element', get('Transfer-Encoding: gzip,,chunked\r\n'), 400],
    ['leading comma', get('Transfer-Encoding: , chunked\r\n'), 400],
    ['trailing comma', get('Transfer-Encoding: chunked,\r\n'), 400],
    ['quoted coding', get('Transfer-Encoding: "chunked"\r\n'), 400],
    ['empty Transfer-Encoding', get('Transfer-Encoding:\r\n'), 400],
    ['empty Transfer-Encoding before chunked', get('Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n'), 400],
    ['space-separated codings', get('Transfer-Encoding: gzip chunked\r\n'), 400],
    ['unknown coding before chunked', get('Transfer-Encoding: foo, chunked\r\n'), 501],
    ['identity before chunked', get('Transfer-Encoding: identity, chunked\r\n'), 501],
    ['unknown final coding', get('Transfer-Encoding: foo\r\n'), 400],
    ['Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    // other fields
    ['non-token Connection option', get('Connection: close;x\r\n'), 400],
    ['space-separated Connection options', get('Connection: close keep-alive\r\n'), 400],
  ];
  for (const [name, raw, status] of cases) {
    it(`${status}: ${name}`, () => {
      refused(raw, status);
    });
  }

  it('414 when the target is longer than maxUriBytes, before the request-line is complete', () => {
    const limits = { ...LIMITS, maxUriBytes: 100 };
    refused(get('', `/${'a'.repeat(100)}`), 414, limits);
    refused(`GET /${'a'.repeat(100)}`, 414, limits);
    assert.equal(parse(`GET /${'a'.repeat(99)}`, limits), null);
  });

  it('431 when the head is larger than maxHeaderBytes, complete or not', () => {
    const raw = get(`X-Big: ${'v'.repeat(200)}\r\n`);
    const limits = { ...LIMITS, maxHeaderBytes: raw.length - 1 };
    refused(raw, 431, limits);
    refused(raw.slice(0, raw.length - 1), 431, limits);
    refused(raw.slice(0, 150), 431, { ...LIMITS, maxHeaderBytes: 150 });
    assert.equal(parse(raw.slice(0, 149), { ...LIMITS, maxHeaderBytes: 150 }), null);
  });

  it('431 when there are more than maxHeaders fields', () => {
    const raw = get('X-A: 1\r\nX-B: 2\r\n');
    refused(raw, 431, { ...LIMITS, maxHeaders: 2 });
    refused(raw.slice(0, raw.indexOf('X-B') + 1), 431, { ...LIMITS, maxHeaders: 2 });
  });

  it('refuses a bare-LF head as soon as the LF arrives, though it would never complete', () => {
    refused('GET / HTTP/1.1\n', 400);
    refused('GET / HTTP/1.1\r\nHost: a\n', 400);
  });

  it('refuses as soon as the bytes seen are invalid', () => {
    refused('GE(', 400);
    refused('GET /\x00', 400);
    refused('GET / HTTP/1.1 ', 400);
  });
});

describe('parseRequestHead: incremental input', () => {
  const samples = [
    'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
    '\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n',
    'GET http://h:8080/p HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, keep-alive\r\nUpgrade: websocket\r\nX-Pad:   \t \r\n\r\n',
    'PUT /t HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: gzip, chunked\r\nX-Latin: \xe9\xff\r\n\r\n',
    'GET / HTTP/1.0\r\n\r\n',
  ];
  it('returns null for every proper prefix of a valid head, then the same head', () => {
    for (const raw of samples) {
      const full = Buffer.from(`${raw}BODY`, 'latin1');
      const whole = parseRequestHead(full, LIMITS);
      assert.ok(whole !== null && whole.ok);
      for (let k = 0; k < whole.headEnd; k++) {
        assert.equal(parseRequestHead(full.subarray(0, k), LIMITS), null, `prefix ${k} of ${JSON.stringify(raw)}`);
      }
      for (let k = whole.headEnd; k <= full.length; k++) {
        assert.deepEqual(parseRequestHead(full.subarray(0, k), LIMITS), whole);
      }
    }
  });

  it('once a prefix is refused, every longer prefix is refused the same way', () => {
    const bad = [
      'GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost : a\r\n\r\n',
      'GET / HTTP/1.1\nHost: a\r\n\r\n',
      'GET / HTTP/2.0\r\nHost: a\r\n\r\n',
    ];
    for (const raw of bad) {
      const buf = Buffer.from(raw, 'latin1');
      let first: ParseFailure | undefined;
      for (let k = 0; k <= buf.length; k++) {
        const r = parseRequestHead(buf.subarray(0, k), LIMITS);
        if (first === undefined) {
          if (r !== null) {
            assert.ok(!r.ok, `prefix ${k} of ${JSON.stringify(raw)} parsed`);
            first = r;
          }
        } else {
          assert.deepEqual(r, first);
        }
      }
      assert.ok(first !== undefined);
    }
  });

  it('waits on a partial version that may still become valid', () => {
    assert.equal(parse('GET / HTTP/1.'), null);
    assert.equal(parse('GET / HTTP/2'), null);
    assert.equal(parse('GET / HTTP/1.1\r'), null);
    assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\n\r'), null);
    assert.equal(parse(''), null);
    assert.equal(parse('\r'), null);
  });
});

describe('parseRequestHead: properties', () => {
  const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
  const token = fc.array(fc.constantFrom(...tchars), { minLength: 1, maxLength: 12 }).map((a) => a.join(''));
  const STANDARD = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
  const method = fc.oneof(
    fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'),
    token.filter((t) => !STANDARD.includes(t.toUpperCase())),
  );
  const pathChars = "abcXYZ019-._~!$&'()*+,;=:@/?%".split('');
  const target = fc.array(fc.constantFrom(...pathChars), { maxLength: 40 }).map((a) => `/${a.join('')}`);
  const SPECIAL = ['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect'];
  const name = token.filter((t) => !SPECIAL.includes(t.toLowerCase()));
  const valueChar = fc.oneof(
    fc.integer({ min: 0x21, max: 0x7e }),
    fc.integer({ min: 0x80, max: 0xff }),
    fc.constantFrom(0x20, 0x09),
  );
  const value = fc
    .array(valueChar, { maxLength: 30 })
    .map((cs) => String.fromCharCode(...cs).replace(/^[ \t]+|[ \t]+$/g, ''));
  const ows = fc.constantFrom('', ' ', '  ', '\t', ' \t');
  const field = fc.record({ name, value, before: ows, after: ows });

  it('parses generated valid requests to the generated fields', () => {
    fc.assert(
      fc.property(method, target, fc.constantFrom<0 | 1>(0, 1), fc.array(field, { maxLength: 20 }), (m, t, minor, fields) => {
        let raw = `${m} ${t} HTTP/1.${minor}\r\nHost: h.example\r\n`;
        for (const f of fields) raw += `${f.name}:${f.before}${f.value}${f.after}\r\n`;
        raw += '\r\n';
        const r = parse(`${raw}tail`);
        assert.ok(r !== null && r.ok, JSON.stringify(r));
        assert.equal(r.method, m);
        assert.equal(r.target, t);
        assert.equal(r.path, t);
        assert.equal(r.minor, minor);
        assert.equal(r.host, 'h.example');
        assert.deepEqual(r.names, ['Host', ...fields.map((f) => f.name)]);
        assert.deepEqual(r.lnames, ['host', ...fields.map((f) => f.name.toLowerCase())]);
        assert.deepEqual(r.values, ['h.example', ...fields.map((f) => f.value)]);
        assert.equal(r.headEnd, raw.length);
        assert.equal(r.keepAlive, minor === 1);
        assert.equal(r.contentLength, -1);
        assert.equal(r.chunked, false);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on random bytes, and any head it returns is within the buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const r = parseRequestHead(Buffer.from(bytes), { maxHeaderBytes: 200, maxHeaders: 10, maxUriBytes: 64 });
        if (r !== null && r.ok) assert.ok(r.headEnd <= bytes.length && r.headEnd <= 200);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutated valid requests', () => {
    const base = Buffer.from(
      'POST http://h:1/p?q HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive, Upgrade\r\nUpgrade: x\r\nExpect: 100-continue\r\n\r\n',
      'latin1',
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), (edits) => {
        const b = Buffer.from(base);
        for (const [at, byte] of edits) b[at] = byte;
        const r = parseRequestHead(b, LIMITS);
        assert.ok(r === null || r.ok || [400, 414, 431, 501, 505].includes(r.status));
      }),
      { numRuns: 3000 },
    );
  });
});
