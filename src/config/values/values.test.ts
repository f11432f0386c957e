import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatAddress, parseAddress } from './address.js';
import { parseCidr } from './cidr.js';
import { formatDuration, parseDuration } from './duration.js';
import { parseRate } from './rate.js';
import { parseStatusRanges } from './status-ranges.js';
import { parseHostPattern, parseRegex, parseRequestKey } from './text.js';
import type { Parsed } from './parsed.js';

const value = <T>(r: Parsed<T>): T => {
  if (!r.ok) assert.fail(r.message);
  return r.value;
};
const message = (r: Parsed<unknown>): string => {
  if (r.ok) assert.fail(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.message;
};

test('durations: units, compounds, decimals and plain milliseconds', () => {
  assert.equal(value(parseDuration('250ms')), 250);
  assert.equal(value(parseDuration('2s')), 2000);
  assert.equal(value(parseDuration('1m')), 60_000);
  assert.equal(value(parseDuration('1h')), 3_600_000);
  assert.equal(value(parseDuration('1d')), 86_400_000);
  assert.equal(value(parseDuration('1m30s')), 90_000);
  assert.equal(value(parseDuration('1.5s')), 1500);
  assert.equal(value(parseDuration(1500)), 1500);
  assert.equal(value(parseDuration('1500')), 1500);
  assert.equal(value(parseDuration(0)), 0);
});

test('durations: what is refused, and why', () => {
  assert.match(message(parseDuration('2 sec')), /^bad duration "2 sec": a duration is a number with a unit/);
  assert.match(message(parseDuration('30s1m')), /units must go from largest to smallest/);
  assert.match(message(parseDuration('1s1s')), /units must go from largest to smallest/);
  assert.match(message(parseDuration('0.5ms')), /the smallest step is 1ms/);
  assert.match(message(parseDuration(-1)), /must not be negative/);
  assert.match(message(parseDuration(1.5)), /whole milliseconds/);
  assert.match(message(parseDuration('')), /bad duration ""/);
  assert.match(message(parseDuration(true)), /^expected a duration, got true/);
});

test('durations round-trip through their canonical text', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(90_061_001), '1d1h1m1s1ms');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (ms) => {
      assert.equal(value(parseDuration(formatDuration(ms))), ms);
    }),
  );
  fc.assert(
    fc.property(fc.nat({ max: 10_000 }), fc.constantFrom(['ms', 1], ['s', 1000], ['m', 60_000], ['h', 3_600_000], ['d', 86_400_000]), (n, [unit, size]) => {
      assert.equal(value(parseDuration(`${n}${unit}`)), n * (size as number));
    }),
  );
});

test('addresses: host and port, IPv6 in brackets, port ranges', () => {
  assert.deepEqual(value(parseAddress('127.0.0.1:8080', 1)), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(value(parseAddress('[::1]:53', 1)), { host: '::1', port: 53 });
  assert.deepEqual(value(parseAddress('db.internal:5432', 1)), { host: 'db.internal', port: 5432 });
  assert.deepEqual(value(parseAddress('0.0.0.0:0', 0)), { host: '0.0.0.0', port: 0 });
  assert.equal(message(parseAddress('127.0.0.1:0', 1)), 'bad address "127.0.0.1:0": port 0 is out of range 1-65535');
  assert.equal(message(parseAddress('127.0.0.1:65536', 0)), 'bad address "127.0.0.1:65536": port 65536 is out of range 0-65535');
  assert.equal(message(parseAddress(':8080', 0)), 'bad address ":8080": missing host (0.0.0.0 means every interface)');
  assert.equal(message(parseAddress('::1:80', 0)), 'bad address "::1:80": an IPv6 address goes in brackets, e.g. [::1]:8080');
  assert.equal(message(parseAddress('localhost', 0)), 'bad address "localhost": missing :PORT');
  assert.equal(message(parseAddress('1.2.3.999:80', 0)), 'bad address "1.2.3.999:80": "1.2.3.999" is neither an IPv4 address nor a host name');
  assert.equal(message(parseAddress(8080, 0)), 'expected an address HOST:PORT, got 8080 (write HOST:8080, e.g. 0.0.0.0:8080)');
  for (const a of [{ host: '10.1.2.3', port: 80 }, { host: 'fe80::1', port: 443 }]) {
    assert.deepEqual(value(parseAddress(formatAddress(a), 1)), a);
  }
});

test('CIDR blocks, rates, status ranges, request keys, hosts, regexes', () => {
  assert.equal(value(parseCidr('10.0.0.0/8')), '10.0.0.0/8');
  assert.equal(value(parseCidr('2001:db8::/32')), '2001:db8::/32');
  assert.equal(value(parseCidr('192.0.2.1')), '192.0.2.1');
  assert.equal(message(parseCidr('10.0.0.0/33')), 'bad CIDR block "10.0.0.0/33": prefix length must be 0-32');
  assert.equal(message(parseCidr('10.0.0/8')), 'bad CIDR block "10.0.0/8": "10.0.0" is not an IP address');

  assert.deepEqual(value(parseRate('100/s')), { count: 100, perMs: 1000 });
  assert.deepEqual(value(parseRate('6000/m')), { count: 6000, perMs: 60_000 });
  assert.deepEqual(value(parseRate('50/10s')), { count: 50, perMs: 10_000 });
  assert.match(message(parseRate('100')), /^bad rate "100"/);
  assert.match(message(parseRate('0/s')), /the count must be at least 1/);

  assert.deepEqual(value(parseStatusRanges('200-399')), [[200, 399]]);
  assert.deepEqual(value(parseStatusRanges('200,204')), [[200, 200], [204, 204]]);
  assert.deepEqual(value(parseStatusRanges(200)), [[200, 200]]);
  assert.deepEqual(value(parseStatusRanges(['200-299', 304])), [[200, 299], [304, 304]]);
  assert.equal(message(parseStatusRanges('399-200')), 'bad status range "399-200": 399 is above 200');
  assert.equal(message(parseStatusRanges('200-700')), 'bad status range "200-700": codes are 100-599');

  for (const k of ['source-ip', 'uri', 'header:X-User', 'cookie:sid', 'query:user']) assert.equal(value(parseRequestKey(k)), k);
  assert.match(message(parseRequestKey('on')), /^bad request key "on": one of source-ip, uri/);
  assert.match(message(parseRequestKey('header:bad name')), /is not a header name/);

  assert.equal(value(parseHostPattern('Images.Example.COM.')), 'images.example.com');
  assert.equal(value(parseHostPattern('*.example.com')), '*.example.com');
  assert.match(message(parseHostPattern('exa mple.com')), /^bad host/);

  assert.equal(value(parseRegex('^/api/v[0-9]+/')), '^/api/v[0-9]+/');
  assert.equal(message(parseRegex('([a-z')), 'bad regular expression "([a-z": Unterminated character class');
});
