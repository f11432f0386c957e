import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { estimateService, poolLaws, type ServiceSample } from './op-laws.js';

/** One 1 s interval of a server answering `x` req/s in `t` ms each. */
const iv = (x: number, t: number): ServiceSample => ({ dtMs: 1000, svcN: x, svcSumMs: x * t });

describe('estimateService', () => {
  it('S is the low-load server time; T the recent mean; c from saturation (X·S when requests waited inside the server)', () => {
    // A server of 4 slots x 20 ms: at low load 40 req/s in 20 ms; then saturated with 16 at it: 200 req/s in 80 ms.
    const samples = [iv(40, 20.2), iv(40, 20), iv(200, 80), iv(199, 80.5)];
    const e = estimateService(samples, 0, { recent: 2 });
    assert.equal(e.S, 20);
    assert.ok(Math.abs(e.T! - 80.25) < 0.01);
    assert.equal(e.cSource, 'saturation');
    assert.ok(Math.abs(e.c! - 4) < 0.01, String(e.c));
  });

  it('never saturated: c is the most requests seen at once (a lower bound), at least 1', () => {
    const e = estimateService([iv(40, 20), iv(100, 21)], 0);
    assert.equal(e.cSource, 'observed');
    assert.ok(Math.abs(e.c! - 2.1) < 1e-9);
    assert.equal(estimateService([iv(10, 20)], 0).c, 1);
  });

  it('maxConnections bounds c: Portico never has more requests on the server; saturation below it wins', () => {
    assert.deepEqual(estimateService([iv(40, 20)], 4), { S: 20, T: 20, c: 4, cSource: 'maxConnections' });
    const e = estimateService([iv(40, 20), iv(100, 60)], 8); // waited inside with 6 at it: 2 slots
    assert.equal(e.cSource, 'saturation');
    assert.ok(Math.abs(e.c! - 2) < 1e-9);
    assert.equal(estimateService([iv(40, 20), iv(400, 60)], 3).c, 3);
  });

  it('a time that grew while less than one slot was busy is not saturation (a busy Portico, a slower network); c is 1 at least', () => {
    // 5 ms requests at 80 req/s (0.4 slots busy) measured at 9 ms: nothing waited for a slot.
    const e = estimateService([iv(40, 5), iv(80, 9)], 0);
    assert.equal(e.cSource, 'observed');
    assert.equal(e.c, 1);
  });

  it('intervals with too few requests do not count; no data gives nulls', () => {
    assert.deepEqual(estimateService([], 0), { S: null, T: null, c: null, cSource: null });
    const e = estimateService([iv(2, 1), iv(50, 20)], 0);
    assert.equal(e.S, 20);
    assert.deepEqual(estimateService([iv(2, 1)], 6), { S: null, T: 1, c: 6, cSource: 'maxConnections' });
  });
});

describe('poolLaws', () => {
  const srv = (name: string, X: number, S: number | null, c: number | null, cSource: 'maxConnections' | 'saturation' | 'observed' | null = 'saturation', weight = 1) => ({
    name,
    X,
    weight,
    inService: true,
    S,
    c,
    cSource,
  });

  it('demands, the bottleneck, 1/Dmax and the bounds (the textbook numbers)', () => {
    // Round robin over web1 (4 slots x 10 ms) and web2 (4 slots x 20 ms): V = 1/2 each.
    // D1 = 0.5*10/4 = 1.25 ms, D2 = 0.5*20/4 = 2.5 ms: web2 is the bottleneck, X <= 400 req/s.
    const l = poolLaws({ X: 100, R: 16, N: 1.6, servers: [srv('web1', 50, 10, 4), srv('web2', 50, 20, 4)] });
    assert.equal(l.bottleneck, 'web2');
    assert.equal(l.Dmax, 2.5);
    assert.equal(l.D, 15);
    assert.equal(l.saturation, 400);
    assert.equal(l.exact, true);
    assert.equal(l.knee, 6);
    assert.equal(l.XR, 1.6);
    // X(N) <= min(1/Dmax, N/(D+Z)) = min(400, 1.6/0.015) = 106.7; R(N) >= max(D, N·Dmax − Z) = 15.
    assert.deepEqual(l.bounds, { N: 1.6, Xmax: 106.7, Rmin: 15 });
    assert.equal(l.summary, 'this pool saturates near 400 req/s; web2 is the bottleneck');
    const w2 = l.servers[1]!;
    assert.deepEqual([w2.V, w2.U, w2.utilization, w2.D, w2.capacity], [0.5, 1, 0.25, 2.5, 200]);
    // Past the knee the bounds are the saturation ones; Z lowers them.
    const busy = poolLaws({ X: 390, R: 51, N: 20, servers: [srv('web1', 195, 10, 4), srv('web2', 195, 20, 4)] }, 5);
    assert.deepEqual(busy.bounds, { N: 20, Xmax: 400, Rmin: 45 });
    assert.equal(busy.knee, 8);
  });

  it('a bottleneck whose parallelism is a lower bound gives a lower bound, said so; another server\'s does not matter', () => {
    const l = poolLaws({ X: 20, R: 20, N: 0.4, servers: [srv('a', 10, 20, 1, 'observed'), srv('b', 10, 20, 4)] });
    assert.equal(l.bottleneck, 'a');
    assert.equal(l.exact, false);
    assert.match(l.summary, /^this pool saturates at 100 req\/s or more; a is the bottleneck \(its parallelism is only a lower bound/);
    const m = poolLaws({ X: 20, R: 20, N: 0.4, servers: [srv('a', 10, 20, 1, 'observed'), srv('b', 10, 200, 4)] });
    assert.equal(m.bottleneck, 'b');
    assert.equal(m.exact, true);
  });

  it('without traffic the shares follow the weights of the servers in service; unknown service times are named', () => {
    const l = poolLaws({ X: 0, R: null, N: 0, servers: [srv('a', 0, 10, 1, 'maxConnections', 3), srv('b', 0, 10, 1, 'maxConnections', 1), { ...srv('c', 0, 10, 1), inService: false }] });
    assert.deepEqual(l.servers.map((s) => s.V), [0.75, 0.25, 0]);
    assert.equal(l.bottleneck, 'a');
    assert.equal(l.saturation, 133.3);
    const u = poolLaws({ X: 10, R: 5, N: 0.05, servers: [srv('a', 5, 10, 1), srv('b', 5, null, null, null)] });
    assert.equal(u.saturation, null);
    assert.deepEqual(u.unknown, ['b']);
    assert.equal(u.summary, 'no saturation bound yet: no service time measured for b');
    assert.equal(poolLaws({ X: 0, R: null, N: 0, servers: [] }).summary, 'no saturation bound yet: no server takes requests');
  });
});

describe('estimateService, a slow second', () => {
  it('a second when the server was slow for another reason does not lower the parallelism seen in its normal time', () => {
    // 4 at the server in 57 ms (70 req/s), then one slow second: 72 ms, 50 req/s.
    const e = estimateService([iv(18, 57), iv(70, 57.5), iv(70, 57), iv(50, 72)], 4);
    assert.equal(e.c, 4);
    const f = estimateService([iv(18, 57), iv(70, 57.5), iv(70, 57), iv(50, 72)], 0);
    assert.equal(f.cSource, 'saturation');
    assert.ok(Math.abs(f.c! - 70 * 0.0575) < 1e-9, String(f.c));
  });
});
