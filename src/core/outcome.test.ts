import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { OUTCOME_CODES, Outcome, answerHeaders, dnsFailure, httpStatus, refusal, retryAllowed } from './outcome.js';

describe('outcome', () => {
  it('maps each failure to the status and Retry-After of SPEC §4', () => {
    const cases: [Parameters<typeof Outcome.of>[0], number, boolean][] = [
      ['no-route', 503, false],
      ['no-server', 503, true],
      ['queue-full', 503, true],
      ['queue-timeout', 503, true],
      ['connect-failed', 502, false],
      ['connect-timeout', 502, false],
      ['upstream-failed', 502, false],
      ['upstream-reset', 502, false],
      ['bad-response', 502, false],
      ['response-timeout', 504, false],
      ['bad-request', 400, false],
      ['header-too-large', 431, false],
      ['uri-too-long', 414, false],
      ['body-too-large', 413, false],
      ['rate-limited', 429, true],
      ['request-timeout', 408, false],
    ];
    for (const [code, status, retryAfter] of cases) {
      const o = Outcome.of(code);
      assert.equal(httpStatus(o), status, code);
      assert.equal(answerHeaders(o, 7), retryAfter ? 'Retry-After: 7\r\n' : '', code);
    }
    // No route: 404 only where the listener says so.
    assert.equal(httpStatus(Outcome.of('no-route'), 404), 404);
    assert.equal(httpStatus(Outcome.of('no-server'), 404), 503);
  });

  it('keeps the metric reason labels the listeners count', () => {
    const labels: Record<string, string> = {
      'bad-request': 'bad-request',
      'bad-request-body': 'bad-request',
      'request-timeout': 'timeout',
      'proxy-header-timeout': 'timeout',
      'hello-timeout': 'timeout',
      'body-too-large': 'body-too-large',
      'uri-too-long': 'uri-too-long',
      'header-too-large': 'header-too-large',
      'rate-limited': 'rate-limit',
      'max-connections': 'max-connections',
      'access-denied': 'access',
      'bad-proxy-header': 'bad-proxy-header',
      'tls-handshake': 'tls-handshake',
      'bad-client-hello': 'bad-client-hello',
      'no-route': 'no-route',
      'no-server': 'no-server',
      'queue-full': 'queue-full',
      'queue-timeout': 'queue-timeout',
      'connect-failed': 'connect-failed',
      'connect-timeout': 'connect-failed',
      'method-not-allowed': 'method',
      'dns-servfail': 'SERVFAIL',
      'dns-dropped': 'DROPPED',
    };
    for (const [code, label] of Object.entries(labels)) assert.equal(Outcome.of(code as never).reason, label, code);
  });

  it('every code has a label, a text and a status that is an error or none', () => {
    assert.ok(OUTCOME_CODES.length >= 40);
    for (const code of OUTCOME_CODES) {
      const o = Outcome.of(code);
      assert.match(o.reason, /^[a-zA-Z-]+$/, code);
      assert.ok(o.text.length > 0, code);
      assert.ok(o.spec.status === 0 || o.spec.status >= 400, code);
    }
  });

  it('writes the access-log text with its detail', () => {
    assert.equal(Outcome.of('connect-failed', 'ECONNREFUSED').text, 'connect: ECONNREFUSED');
    assert.equal(Outcome.of('no-server').text, 'no available server');
    const err = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    assert.equal(Outcome.ofError('upstream-reset', err).text, 'reset: ECONNRESET');
    assert.equal(Outcome.ofError('upstream-reset', new Error('server closed the connection')).text, 'reset: server closed the connection');
  });

  it('shares the instance of a failure without a detail, and makes one with a detail', () => {
    assert.equal(Outcome.of('no-server'), Outcome.of('no-server'));
    assert.notEqual(Outcome.of('connect-failed', 'a'), Outcome.of('connect-failed', 'a'));
  });

  it('allows a retry as SPEC §4 says: unsent always, a sent request only when repeatable', () => {
    assert.equal(retryAllowed(Outcome.of('connect-failed'), false), true);
    assert.equal(retryAllowed(Outcome.of('connect-timeout'), false), true);
    assert.equal(retryAllowed(Outcome.of('upstream-reset'), true), true);
    assert.equal(retryAllowed(Outcome.of('upstream-reset'), false), false);
    for (const code of ['bad-response', 'response-timeout', 'response-truncated', 'no-server', 'bad-request'] as const) {
      assert.equal(retryAllowed(Outcome.of(code), true), false, code);
    }
  });

  it('says how passive health counts a failure', () => {
    assert.equal(Outcome.of('connect-failed').spec.server, 'connect');
    assert.equal(Outcome.of('connect-timeout').spec.server, 'connect');
    assert.equal(Outcome.of('upstream-reset').spec.server, 'response');
    assert.equal(Outcome.of('response-timeout').spec.server, 'response');
    assert.equal(Outcome.of('client-aborted').spec.server, '');
    assert.equal(Outcome.of('no-server').spec.server, '');
  });

  it('turns a parser refusal into its code by status, keeping the parser reason as the detail', () => {
    const o = refusal(431, 'too many header fields');
    assert.equal(o.code, 'header-too-large');
    assert.equal(httpStatus(o), 431);
    assert.equal(o.text, 'header too large: too many header fields');
    assert.equal(refusal(414, 'x').reason, 'uri-too-long');
    assert.equal(refusal(505, 'x').spec.status, 505);
    assert.equal(refusal(501, 'x').spec.status, 501);
    assert.equal(refusal(405, 'x').reason, 'method');
    assert.equal(refusal(418, 'x').code, 'bad-request');
  });

  it('names the DNS responses that are not answers by their rcode', () => {
    assert.equal(dnsFailure(0), undefined, 'NOERROR');
    assert.equal(dnsFailure(3), undefined, 'NXDOMAIN');
    const names: [number, string][] = [[1, 'FORMERR'], [2, 'SERVFAIL'], [4, 'NOTIMP'], [5, 'REFUSED'], [16, 'BADVERS']];
    for (const [rcode, label] of names) assert.equal(dnsFailure(rcode)!.reason, label);
    assert.equal(Outcome.of('dns-dropped').reason, 'DROPPED');
    assert.equal(Outcome.of('dns-rate-limited').reason, 'RATE-LIMITED');
  });
});
