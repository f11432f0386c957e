import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { ResponseRateLimiter, networkKey, type RrlSettings, type RrlVerdict } from './rrl.js';

const SETTINGS: RrlSettings = {
  responsesPerSecond: 10,
  burst: 10,
  slip: 2,
  ipv4PrefixLength: 24,
  ipv6PrefixLength: 56,
  exempt: [],
  maxTracked: 1000,
};

function tally(verdicts: RrlVerdict[]): Record<RrlVerdict, number> {
  const out = { send: 0, drop: 0, slip: 0 };
  for (const v of verdicts) out[v]++;
  return out;
}

describe('dns response-rate limiting', () => {
  it('a burst passes, then responses over the rate are dropped with every slip-th sent truncated', () => {
    const clock = new ManualClock();
    const rrl = new ResponseRateLimiter(SETTINGS, clock);
    const v = Array.from({ length: 30 }, () => rrl.check('192.0.2.7'));
    assert.deepEqual(v.slice(0, 10), Array(10).fill('send'));
    assert.deepEqual(v.slice(10, 14), ['drop', 'slip', 'drop', 'slip']);
    assert.deepEqual(tally(v), { send: 10, drop: 10, slip: 10 });
    assert.deepEqual(rrl.counts, { limited: 20, dropped: 10, slipped: 10 });
  });

  it('tokens come back at the configured rate', () => {
    const clock = new ManualClock();
    const rrl = new ResponseRateLimiter(SETTINGS, clock);
    for (let i = 0; i < 10; i++) rrl.check('192.0.2.7');
    assert.notEqual(rrl.check('192.0.2.7'), 'send');
    clock.advance(500); // 5 tokens at 10/s
    const v = Array.from({ length: 6 }, () => rrl.check('192.0.2.7'));
    assert.equal(tally(v).send, 5);
  });

  it('clients are counted per /24 (IPv4) and /56 (IPv6); other networks are not affected', () => {
    const rrl = new ResponseRateLimiter(SETTINGS, new ManualClock());
    for (let i = 0; i < 10; i++) assert.equal(rrl.check(`192.0.2.${i}`), 'send');
    assert.notEqual(rrl.check('192.0.2.250'), 'send');
    assert.equal(rrl.check('192.0.3.1'), 'send');
    for (let i = 0; i < 10; i++) assert.equal(rrl.check(`2001:db8:0:${i.toString(16)}::1`), 'send');
    assert.notEqual(rrl.check('2001:db8:0:ff::9'), 'send', 'same /56');
    assert.equal(rrl.check('2001:db8:0:100::1'), 'send', 'another /56');
    assert.equal(networkKey('192.0.2.77', 24, 56), networkKey('::ffff:192.0.2.1', 24, 56));
  });

  it('slip 0 drops everything over the limit; slip 1 truncates everything', () => {
    for (const [slip, want] of [[0, 'drop'], [1, 'slip']] as const) {
      const rrl = new ResponseRateLimiter({ ...SETTINGS, slip }, new ManualClock());
      for (let i = 0; i < 10; i++) rrl.check('198.51.100.1');
      for (let i = 0; i < 5; i++) assert.equal(rrl.check('198.51.100.1'), want);
    }
  });

  it('exempt networks are never limited', () => {
    const rrl = new ResponseRateLimiter({ ...SETTINGS, exempt: ['127.0.0.0/8'] }, new ManualClock());
    for (let i = 0; i < 100; i++) assert.equal(rrl.check('127.0.0.1'), 'send');
  });

  it('memory is bounded: at most maxTracked networks are kept', () => {
    const rrl = new ResponseRateLimiter({ ...SETTINGS, maxTracked: 1000 }, new ManualClock());
    for (let i = 0; i < 5000; i++) rrl.check(`10.${(i >> 8) & 255}.${i & 255}.1`);
    assert.ok(rrl.tracked <= 1000, `${rrl.tracked}`);
  });
});
