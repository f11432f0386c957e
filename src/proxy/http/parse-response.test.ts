import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseResponseHead, responseFraming } from './parse-response.js';
import type { HeadLimits, ParseFailure, ResponseHead } from './parse-response.js';

const LIMITS: HeadLimits = { maxHeaderBytes: 16384, maxHeaders: 100, maxUriBytes: 8192 };

function parse(raw: string, limits: HeadLimits = LIMITS, method?: string): ResponseHead | ParseFailure | null {
  return parseResponseHead(Buffer.from(raw, 'latin1'), limits, method);
}

function ok(raw: string, method?: string): ResponseHead {
  const r = parse(raw, LIMITS, method);
  assert.ok(r !== null && r.ok, `expected a head for ${JSON.stringify(raw)}, got ${JSON.stringify(r)}`);
  return r;
}

function refused(raw: string, status?: ParseFailure['status'], limits: HeadLimits = LIMITS): ParseFailure {
  const r = parse(raw, limits);
  assert.ok(r !== null && !r.ok, `expected a failure for ${JSON.stringify(raw)}, got ${JSON.stringify(r)}`);
  if (status !== undefined) assert.equal(r.status, status, r.reason);
  return r;
}

const res = (fields: string, statusLine = 'HTTP/1.1 200 OK'): string => `${statusLine}\r\n${fields}\r\n`;

describe('parseResponseHead: successes', () => {
  it('parses a typical response into every field', () => {
    const raw = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nX-Trim:  a b  \r\n\r\n';
    const r = ok(`${raw}hello, world`);
    assert.equal(r.status, 200);
    assert.equal(r.reason, 'OK');
    assert.equal(r.minor, 1);
    assert.deepEqual(r.names, ['Content-Type', 'Content-Length', 'X-Trim']);
    assert.deepEqual(r.lnames, ['content-type', 'content-length', 'x-trim']);
    assert.deepEqual(r.values, ['text/plain', '12', 'a b']);
    assert.equal(r.headEnd, raw.length);
    assert.equal(r.contentLength, 12);
    assert.equal(r.chunked, false);
    assert.equal(r.keepAlive, true);
    assert.deepEqual(r.connection, []);
    assert.equal(responseFraming(r, 'GET'), 'length');
  });

  it('accepts a reason with spaces and obs-text, an empty reason, or none at all', () => {
    assert.equal(ok(res('Content-Length: 0\r\n', 'HTTP/1.1 404 Not Found')).reason, 'Not Found');
    assert.equal(ok(res('Content-Length: 0\r\n', 'HTTP/1.1 200 \xc7a va\tbien')).reason, '\xc7a va\tbien');
    assert.equal(ok(res('Content-Length: 0\r\n', 'HTTP/1.1 200 ')).reason, '');
    const bare = ok(res('Content-Length: 0\r\n', 'HTTP/1.1 204'));
    assert.equal(bare.status, 204);
    assert.equal(bare.reason, '');
  });

  it('refuses a 1xx response that carries Content-Length above 0 or Transfer-Encoding', () => {
    for (const f of ['Content-Length: 4\r\n', 'Transfer-Encoding: chunked\r\n']) {
      for (const st of ['HTTP/1.1 100 Continue', 'HTTP/1.1 103 Early Hints', 'HTTP/1.1 101 Switching Protocols']) {
        const r = parseResponseHead(Buffer.from(`${st}\r\n${f}\r\n`, 'latin1'), LIMITS);
        assert.ok(r !== null && !r.ok, `${st} with ${f}`);
        const zero = parseResponseHead(Buffer.from(`${st}\r\nContent-Length: 0\r\n\r\n`, 'latin1'), LIMITS);
        assert.ok(zero !== null && zero.ok, `${st} with Content-Length: 0`);
      }
    }
  });

  it('accepts any status from 100 to 999', () => {
    assert.equal(ok(res('', 'HTTP/1.1 100 Continue')).status, 100);
    assert.equal(ok(res('Content-Length: 0\r\n', 'HTTP/1.1 599 X')).status, 599);
    assert.equal(ok(res('Content-Length: 0\r\n', 'HTTP/1.1 999 X')).status, 999);
  });

  it('parses chunked and close-delimited framing', () => {
    const c = ok(res('Transfer-Encoding: chunked\r\n'));
    assert.equal(c.chunked, true);
    assert.equal(c.keepAlive, true);
    assert.equal(responseFraming(c, 'GET'), 'chunked');
    const gz = ok(res('Transfer-Encoding: gzip, chunked\r\n'));
    assert.equal(gz.chunked, true);
    const unknown = ok(res('Transfer-Encoding: foo, chunked\r\n'));
    assert.equal(unknown.chunked, true, 'unknown codings in a response are for the client to handle');
    const close = ok(res('Transfer-Encoding: gzip\r\n'));
    assert.equal(close.chunked, false);
    assert.equal(close.keepAlive, false);
    assert.equal(responseFraming(close, 'GET'), 'close');
    const none = ok(res(''));
    assert.equal(none.contentLength, -1);
    assert.equal(none.keepAlive, false);
    assert.equal(responseFraming(none, 'GET'), 'close');
  });

  it('follows RFC 9112 §6.3 for bodies that do not exist', () => {
    const withLength = ok(res('Content-Length: 10\r\n'));
    assert.equal(responseFraming(withLength, 'HEAD'), 'none');
    assert.equal(responseFraming(ok(res('', 'HTTP/1.1 204 No Content')), 'GET'), 'none');
    assert.equal(responseFraming(ok(res('Content-Length: 10\r\n', 'HTTP/1.1 304 Not Modified')), 'GET'), 'none');
    assert.equal(responseFraming(ok(res('', 'HTTP/1.1 100 Continue')), 'POST'), 'none');
    assert.equal(responseFraming(ok(res('', 'HTTP/1.1 103 Early Hints')), 'GET'), 'none');
    assert.equal(responseFraming(ok(res('Connection: Upgrade\r\nUpgrade: websocket\r\n', 'HTTP/1.1 101 Switching Protocols')), 'GET'), 'none');
    assert.equal(responseFraming(ok(res('', 'HTTP/1.1 200 Connection established')), 'CONNECT'), 'none');
    assert.equal(responseFraming(ok(res('Content-Length: 5\r\n', 'HTTP/1.1 407 Auth')), 'CONNECT'), 'length');
    assert.equal(responseFraming(ok(res('Transfer-Encoding: chunked\r\n', 'HTTP/1.1 500 X')), 'GET'), 'chunked');
  });

  it('computes keepAlive from version, Connection and framing', () => {
    assert.equal(ok(res('Content-Length: 0\r\nConnection: close\r\n')).keepAlive, false);
    assert.equal(ok(res('Content-Length: 0\r\nConnection: Close\r\n')).keepAlive, false);
    assert.equal(ok(res('Content-Length: 0\r\n', 'HTTP/1.0 200 OK')).keepAlive, false);
    assert.equal(ok(res('Content-Length: 0\r\nConnection: keep-alive\r\n', 'HTTP/1.0 200 OK')).keepAlive, true);
    assert.equal(ok(res('Connection: keep-alive\r\n', 'HTTP/1.0 200 OK')).keepAlive, false, 'no length: read to close');
    assert.equal(ok(res('', 'HTTP/1.1 204 No Content')).keepAlive, true);
    assert.equal(ok(res('', 'HTTP/1.1 304 Not Modified')).keepAlive, true);
    assert.equal(ok(res('Connection: upgrade\r\nUpgrade: websocket\r\n', 'HTTP/1.1 101 Switching')).keepAlive, false);
    assert.equal(ok(res('')).keepAlive, false, 'without the method a body-less HEAD answer counts as close-delimited');
    assert.equal(ok(res(''), 'HEAD').keepAlive, true);
    assert.equal(ok(res(''), 'CONNECT').keepAlive, false);
    const r = ok(res('Content-Length: 0\r\nConnection: keep-alive, X-Hop\r\n'));
    assert.deepEqual(r.connection, ['keep-alive', 'x-hop']);
  });
});

describe('parseResponseHead: refusals', () => {
  const cases: Array<[string, string, ParseFailure['status']?]> = [
    ['HTTP/2 status-line', 'HTTP/2 200 OK\r\n\r\n'],
    ['HTTP/2.0', 'HTTP/2.0 200 OK\r\n\r\n', 505],
    ['HTTP/0.9-style body', '<html>hello</html>'],
    ['lowercase protocol', 'http/1.1 200 OK\r\n\r\n'],
    ['another protocol', 'ICY 200 OK\r\n\r\n'],
    ['two-digit minor', 'HTTP/1.10 200 OK\r\n\r\n'],
    ['two spaces before the status', 'HTTP/1.1  200 OK\r\n\r\n'],
    ['status with two digits', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['status with four digits', 'HTTP/1.1 2000 OK\r\n\r\n'],
    ['status with letters', 'HTTP/1.1 2x0 OK\r\n\r\n'],
    ['status below 100', 'HTTP/1.1 099 Odd\r\n\r\n'],
    ['negative status', 'HTTP/1.1 -200 OK\r\n\r\n'],
    ['control character in the reason', 'HTTP/1.1 200 O\x01K\r\n\r\n'],
    ['bare LF after the status-line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'],
    ['bare LF after a field line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n'],
    ['CR without LF', 'HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n'],
    ['obs-fold', res('X: a\r\n b\r\nContent-Length: 0\r\n')],
    ['space before the colon', res('Content-Length : 0\r\n')],
    ['empty field name', res(': x\r\nContent-Length: 0\r\n')],
    ['invalid field name', res('X{}: x\r\nContent-Length: 0\r\n')],
    ['NUL in a value', res('X: a\x00\r\nContent-Length: 0\r\n')],
    ['Content-Length with Transfer-Encoding', res('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n')],
    ['Transfer-Encoding with Content-Length', res('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n')],
    ['duplicate equal Content-Length', res('Content-Length: 5\r\nContent-Length: 5\r\n')],
    ['Content-Length list', res('Content-Length: 5,5\r\n')],
    ['signed Content-Length', res('Content-Length: +5\r\n')],
    ['hex Content-Length', res('Content-Length: 0x10\r\n')],
    ['empty Content-Length', res('Content-Length: \r\n')],
    ['Content-Length above 2^53-1', res('Content-Length: 9007199254740992\r\n')],
    ['chunked not last', res('Transfer-Encoding: chunked, gzip\r\n')],
    ['chunked twice', res('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n')],
    ['chunked with a parameter', res('Transfer-Encoding: chunked; q=1\r\n')],
    ['tab in Transfer-Encoding', res('Transfer-Encoding: gzip,\tchunked\r\n')],
    ['empty Transfer-Encoding element', res('Transfer-Encoding: gzip, , chunked\r\n')],
    ['Transfer-Encoding on HTTP/1.0', res('Transfer-Encoding: chunked\r\n', 'HTTP/1.0 200 OK')],
    ['malformed Connection', res('Connection: "close"\r\nContent-Length: 0\r\n')],
  ];
  for (const [name, raw, status] of cases) {
    it(`refuses ${name}`, () => {
      refused(raw, status ?? 400);
    });
  }

  it('431 when the head is larger than maxHeaderBytes or has too many fields', () => {
    const raw = res(`X-Big: ${'v'.repeat(100)}\r\nContent-Length: 0\r\n`);
    refused(raw, 431, { ...LIMITS, maxHeaderBytes: raw.length - 1 });
    refused(raw.slice(0, 60), 431, { ...LIMITS, maxHeaderBytes: 60 });
    refused(raw, 431, { ...LIMITS, maxHeaders: 1 });
    assert.ok(parse(raw, { ...LIMITS, maxHeaderBytes: raw.length, maxHeaders: 2 })?.ok);
  });

  it('refuses a bare LF at once, even though such a head would never complete', () => {
    refused('HTTP/1.1 200 OK\n', 400);
    refused('HTTP/1.1 200 OK\r\nX: y\n', 400);
  });
});

describe('parseResponseHead: incremental input', () => {
  it('returns null for every proper prefix of a valid head, then the same head', () => {
    const samples = [
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n',
      'HTTP/1.1 204\r\n\r\n',
      'HTTP/1.0 301 Moved Permanently\r\nLocation: /x\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Obs: \xe9\r\n\r\n',
    ];
    for (const raw of samples) {
      const full = Buffer.from(`${raw}abc`, 'latin1');
      const whole = parseResponseHead(full, LIMITS);
      assert.ok(whole !== null && whole.ok);
      assert.equal(whole.headEnd, raw.length);
      for (let k = 0; k < whole.headEnd; k++) {
        assert.equal(parseResponseHead(full.subarray(0, k), LIMITS), null, `prefix ${k} of ${JSON.stringify(raw)}`);
      }
      for (let k = whole.headEnd; k <= full.length; k++) {
        assert.deepEqual(parseResponseHead(full.subarray(0, k), LIMITS), whole);
      }
    }
  });
});

describe('parseResponseHead: properties', () => {
  const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
  const name = fc
    .array(fc.constantFrom(...tchars), { minLength: 1, maxLength: 12 })
    .map((a) => a.join(''))
    .filter((n) => !['content-length', 'transfer-encoding', 'connection'].includes(n.toLowerCase()));
  const value = fc
    .array(fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })), { maxLength: 20 })
    .map((cs) => String.fromCharCode(...cs));

  it('parses generated valid responses to the generated fields', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 999 }),
        fc.constantFrom<0 | 1>(0, 1),
        fc.array(fc.record({ name, value }), { maxLength: 15 }),
        fc.nat(1_000_000),
        (status, minor, fields, anyLength) => {
          const length = status < 200 ? 0 : anyLength; // a 1xx may not carry a Content-Length above 0
          let raw = `HTTP/1.${minor} ${status} Reason Phrase\r\nContent-Length: ${length}\r\n`;
          for (const f of fields) raw += `${f.name}: ${f.value}\r\n`;
          raw += '\r\n';
          const r = parse(raw);
          assert.ok(r !== null && r.ok, JSON.stringify(r));
          assert.equal(r.status, status);
          assert.equal(r.minor, minor);
          assert.equal(r.reason, 'Reason Phrase');
          assert.equal(r.contentLength, length);
          assert.deepEqual(r.names, ['Content-Length', ...fields.map((f) => f.name)]);
          assert.deepEqual(r.values, [String(length), ...fields.map((f) => f.value)]);
          assert.equal(r.headEnd, raw.length);
          assert.equal(r.keepAlive, minor === 1 && status !== 101);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('GET', 'HEAD', 'CONNECT'), (bytes, method) => {
        const r = parseResponseHead(Buffer.from(bytes), { maxHeaderBytes: 200, maxHeaders: 10, maxUriBytes: 64 }, method);
        if (r !== null && r.ok) {
          assert.ok(r.headEnd <= bytes.length);
          assert.ok(['none', 'length', 'chunked', 'close'].includes(responseFraming(r, method)));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on random bytes after a valid status-line', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const buf = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n'), Buffer.from(bytes)]);
        const r = parseResponseHead(buf, LIMITS);
        assert.ok(r === null || r.ok || r.status === 400 || r.status === 431);
      }),
      { numRuns: 2000 },
    );
  });
});
