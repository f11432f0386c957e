import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  FIELD_VALUE,
  TARGET,
  TCHAR,
  TE_CHUNKED,
  TE_MALFORMED,
  TE_NOT_CHUNKED_FINAL,
  TE_UNKNOWN_CODING,
  isValidHost,
  parseConnection,
  parseContentLength,
  parseTransferEncoding,
} from './http-chars.js';
import { parseRequestHead } from './parse-request.js';
import { DEFAULT_HEAD_LIMITS } from './parse-request.js';

describe('character tables', () => {
  it('tchar is exactly RFC 9110 §5.6.2', () => {
    const expected = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (let c = 0; c < 256; c++) assert.equal(TCHAR[c] === 1, expected.includes(String.fromCharCode(c)), `0x${c.toString(16)}`);
  });

  it('field values allow HTAB, SP, VCHAR and obs-text only', () => {
    for (let c = 0; c < 256; c++) {
      const allowed = c === 0x09 || (c >= 0x20 && c !== 0x7f);
      assert.equal(FIELD_VALUE[c] === 1, allowed, `0x${c.toString(16)}`);
    }
  });

  it('request-targets allow visible ASCII except #', () => {
    for (let c = 0; c < 256; c++) assert.equal(TARGET[c] === 1, c > 0x20 && c < 0x7f && c !== 0x23, `0x${c.toString(16)}`);
  });
});

describe('parseTransferEncoding', () => {
  const cases: Array<[string, number]> = [
    ['chunked', TE_CHUNKED],
    ['CHUNKED', TE_CHUNKED],
    ['gzip, chunked', TE_CHUNKED],
    ['gzip,chunked', TE_CHUNKED],
    ['x-gzip , deflate ,  compress, chunked', TE_CHUNKED],
    ['gzip', TE_NOT_CHUNKED_FINAL],
    ['foo', TE_NOT_CHUNKED_FINAL],
    ['gzip, deflate', TE_NOT_CHUNKED_FINAL],
    ['foo, chunked', TE_UNKNOWN_CODING],
    ['identity, chunked', TE_UNKNOWN_CODING],
    ['chunked, gzip', TE_MALFORMED],
    ['chunked, chunked', TE_MALFORMED],
    ['chunked, foo', TE_MALFORMED],
    ['', TE_MALFORMED],
    [' ', TE_MALFORMED],
    [',chunked', TE_MALFORMED],
    ['chunked,', TE_MALFORMED],
    ['gzip,,chunked', TE_MALFORMED],
    ['gzip,\tchunked', TE_MALFORMED],
    ['chunked;q=1', TE_MALFORMED],
    ['chunked ;x', TE_MALFORMED],
    ['"chunked"', TE_MALFORMED],
    ['gzip chunked', TE_MALFORMED],
    ['chunked\x00', TE_MALFORMED],
    ['ch\xfcnked', TE_MALFORMED],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)} → ${['chunked', 'not chunked final', 'unknown coding', 'malformed'][expected]}`, () => {
      assert.equal(parseTransferEncoding(value), expected);
    });
  }
});

describe('parseContentLength', () => {
  const cl = (v: string): number => {
    const b = Buffer.from(`x${v}y`, 'latin1');
    return parseContentLength(b, 1, 1 + v.length);
  };
  it('accepts 1*DIGIT up to 2^53-1', () => {
    assert.equal(cl('0'), 0);
    assert.equal(cl('42'), 42);
    assert.equal(cl('0042'), 42);
    assert.equal(cl('9007199254740991'), 9007199254740991);
  });
  it('refuses everything else', () => {
    for (const v of ['', '+1', '-1', '1 ', ' 1', '1,1', '0x1', '1e3', '1.5', '9007199254740992', '12345678901234567', 'a']) {
      assert.equal(cl(v), -1, JSON.stringify(v));
    }
  });
});

describe('parseConnection', () => {
  const conn = (v: string): string[] | false => {
    const out: string[] = [];
    const s = `>${v}<`;
    return parseConnection(Buffer.from(s, 'latin1'), s, 1, 1 + v.length, out) ? out : false;
  };
  it('splits, trims and lowercases tokens and skips empty elements', () => {
    assert.deepEqual(conn('close'), ['close']);
    assert.deepEqual(conn('Keep-Alive, Upgrade'), ['keep-alive', 'upgrade']);
    assert.deepEqual(conn(' ,X-Foo ,\t, te,'), ['x-foo', 'te']);
    assert.deepEqual(conn(''), []);
  });
  it('refuses non-token elements', () => {
    assert.equal(conn('close keep-alive'), false);
    assert.equal(conn('close;x'), false);
    assert.equal(conn('"close"'), false);
  });
});

describe('isValidHost', () => {
  const valid = (h: string): boolean => isValidHost(Buffer.from(`<${h}>`, 'latin1'), 1, 1 + h.length);
  it('accepts reg-names, IPv4, IP-literals and ports', () => {
    for (const h of ['', 'a', 'example.com', 'EXAMPLE.com:80', 'a-b_c~d', '10.0.0.1:65535', '[::1]', '[2001:db8::1]:443', '%41b', 'a:']) {
      assert.ok(valid(h), h);
    }
  });
  it('refuses anything else', () => {
    for (const h of ['a b', 'a/b', 'u@h', 'h?', 'h#', '[::1', '::1', '[]', '[::1]x', 'h:1:2', 'h:123456', 'h:-1', '%4', '%zz', 'h\xe9']) {
      assert.ok(!valid(h), h);
    }
  });
});

describe('field name cache', () => {
  it('returns each name as sent, whatever else was cached before', () => {
    // 3000 distinct names over 512 cache slots: every slot is reused many times.
    const names: string[] = [];
    for (let i = 0; i < 3000; i++) names.push(i % 2 === 0 ? `X-Name-${i}` : `x-name-${i}`);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < names.length; i += 10) {
        const batch = names.slice(i, i + 10);
        const raw = `GET / HTTP/1.1\r\nHost: h\r\n${batch.map((n) => `${n}: v\r\n`).join('')}\r\n`;
        const r = parseRequestHead(Buffer.from(raw, 'latin1'), DEFAULT_HEAD_LIMITS);
        assert.ok(r !== null && r.ok);
        assert.deepEqual(r.names, ['Host', ...batch]);
        assert.deepEqual(r.lnames, ['host', ...batch.map((n) => n.toLowerCase())]);
      }
    }
  });

  it('keeps names that differ only in case apart, and still finds special names', () => {
    const raw = 'GET / HTTP/1.1\r\nHOST: h\r\nX-A: 1\r\nx-a: 2\r\nX-a: 3\r\ncontent-LENGTH: 4\r\n\r\n';
    const r = parseRequestHead(Buffer.from(raw, 'latin1'), DEFAULT_HEAD_LIMITS);
    assert.ok(r !== null && r.ok);
    assert.deepEqual(r.names, ['HOST', 'X-A', 'x-a', 'X-a', 'content-LENGTH']);
    assert.deepEqual(r.lnames, ['host', 'x-a', 'x-a', 'x-a', 'content-length']);
    assert.equal(r.host, 'h');
    assert.equal(r.contentLength, 4);
  });

  it('handles names longer than the cache keeps', () => {
    const long = `X-${'L'.repeat(200)}`;
    const r = parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\nHost: h\r\n${long}: v\r\n\r\n`, 'latin1'), DEFAULT_HEAD_LIMITS);
    assert.ok(r !== null && r.ok);
    assert.equal(r.names[1], long);
    assert.equal(r.lnames[1], long.toLowerCase());
  });
});
