import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { CidrSet } from '../../../core/cidr.js';
import { Outcome } from '../../../core/outcome.js';
import { ManualClock } from '../../../core/clock.js';
import { serverId, type Server } from '../../../core/server.js';
import type { ServerSet } from '../../../core/server-set.js';
import type { Persistence } from '../../../persistence/persistence.js';
import type { StickyRequest, StickyResponse } from '../../../persistence/request.js';
import type { ServerRuntime } from '../../../pool/server-runtime.js';
import { RateLimiter } from '../rate-limit.js';
import { Exchange } from '../exchange.js';
import type { HttpListenerRuntime, PoolHandle } from '../listener-runtime.js';
import type { RequestHead } from '../parse-request.js';
import type { ResponseHead } from '../parse-response.js';
import { compilePhases, isAnswer, NO_PHASES, type ErrorAnswer, type HttpPhase } from '../phases.js';
import { compileRedirect } from '../route-actions.js';
import { FORWARDING_PHASE } from './forwarding.js';
import { PassiveHealthPhase } from './passive-health.js';
import { PersistencePhase } from './persistence.js';
import { RateLimitPhase } from './rate-limit.js';
import { RouteAnswerPhase } from './route-answer.js';
import { SERVED_BY_PHASE } from './served-by.js';

/** Each phase module on its own, over an Exchange filled as the session fills it. */

function exchange(opts: { proto?: 'http' | 'https'; trusted?: string[]; client?: string; headers?: [string, string][]; host?: string } = {}): Exchange {
  const lst = { name: 'web', proto: opts.proto ?? 'http', trusted: new CidrSet(opts.trusted ?? []) } as unknown as HttpListenerRuntime;
  const ex = new Exchange(lst, opts.client ?? '192.0.2.7', undefined, undefined);
  const headers = opts.headers ?? [];
  const host = opts.host;
  ex.head = { method: 'GET', target: '/a?b=1', minor: 1, host, names: headers.map((h) => h[0]), lnames: headers.map((h) => h[0].toLowerCase()), values: headers.map((h) => h[1]) } as unknown as RequestHead;
  ex.method = 'GET';
  ex.path = '/a';
  ex.query = 'b=1';
  ex.host = host ?? '';
  ex.lnames = ex.head.lnames;
  ex.values = ex.head.values;
  return ex;
}

const server = (name: string): Server => ({ id: serverId('p', name), name, host: '127.0.0.1', port: 1, weight: 1, backup: false, maxConnections: 0, meta: {} });

describe('compilePhases', () => {
  it('no phase is NO_PHASES; phases are split by hook, in order, with the header names they write', () => {
    assert.equal(compilePhases([]), NO_PHASES);
    assert.equal(compilePhases([undefined]), NO_PHASES);
    const a: HttpPhase = { name: 'a', requestHeaders: ['x-a'], onRequest: () => undefined, onDone: () => {} };
    const b: HttpPhase = { name: 'b', responseHeaders: ['x-b'], onResponseHead: () => '', onResponseBody: (_ex, d) => d };
    const l = compilePhases([a, undefined, b]);
    assert.deepEqual(
      l.all.map((p) => p.name),
      ['a', 'b'],
    );
    assert.deepEqual(
      l.request.map((p) => p.name),
      ['a'],
    );
    assert.deepEqual(
      l.responseHead.map((p) => p.name),
      ['b'],
    );
    assert.deepEqual(
      l.responseBody.map((p) => p.name),
      ['b'],
    );
    assert.equal(l.upstreamHead.length, 0);
    assert.deepEqual(l.requestHeaders, ['x-a']);
    assert.deepEqual(l.responseHeaders, ['x-b']);
  });

  it('isAnswer tells an answer from continue and from a promise', () => {
    assert.equal(isAnswer(undefined), false);
    assert.equal(isAnswer(Promise.resolve(1)), false);
    assert.equal(isAnswer({ outcome: Outcome.of('rate-limited'), headers: '' }), true);
    assert.equal(isAnswer(compileRedirect(301, '/', '')), true);
    assert.equal(isAnswer({ status: 200 }), false);
  });
});

describe('rate-limit phase', () => {
  it('lets the burst through, then answers 429 with Retry-After and the rejection label', () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ listener: 'web', count: 1, perMs: 1000, burst: 2, key: (r) => r.clientAddress, clock });
    try {
      const p = new RateLimitPhase(limiter);
      const ex = exchange();
      assert.equal(p.onRequest(ex), undefined);
      assert.equal(p.onRequest(ex), undefined);
      const a = p.onRequest(ex) as ErrorAnswer;
      assert.equal(a.outcome.code, 'rate-limited');
      assert.equal(a.outcome.spec.status, 429);
      assert.equal(a.outcome.reason, 'rate-limit');
      assert.equal(a.headers, 'Retry-After: 1\r\n');
      assert.equal(a.rejected, true);
      // Another client has its own bucket.
      assert.equal(p.onRequest(exchange({ client: '192.0.2.8' })), undefined);
      clock.advance(1000);
      assert.equal(p.onRequest(ex), undefined);
    } finally {
      limiter.close();
    }
  });
});

describe('route-answer phase', () => {
  it('answers with the compiled answer, rendered from the exchange', () => {
    const p = new RouteAnswerPhase(compileRedirect(301, 'https://{host}{path}{query}', ''));
    const ex = exchange({ host: 'a.test' });
    const a = p.onRequest();
    assert.equal(a.status, 301);
    assert.match(a.render(ex, 'http', true), /^HTTP\/1\.1 301 .*\r\nLocation: https:\/\/a\.test\/a\?b=1\r\n/s);
  });
});

describe('forwarding phase', () => {
  it('an untrusted client: its own forwarding headers are ignored, this hop is written', () => {
    const ex = exchange({ host: 'a.test:8080', headers: [['X-Forwarded-For', '10.9.9.9'], ['Forwarded', 'for=10.9.9.9']] });
    assert.equal(
      FORWARDING_PHASE.upstreamHead!(ex),
      'X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.test:8080\r\nForwarded: for=192.0.2.7;proto=http;host="a.test:8080"\r\n',
    );
  });

  it('a trusted proxy: its values are kept and this hop appended; the first proto and host win', () => {
    const ex = exchange({
      proto: 'https',
      trusted: ['192.0.2.0/24'],
      host: 'a.test',
      headers: [
        ['X-Forwarded-For', '10.0.0.1'],
        ['X-Forwarded-For', '10.0.0.2'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Proto', 'http'],
        ['X-Forwarded-Host', 'front.test'],
        ['Forwarded', 'for=10.0.0.1'],
      ],
    });
    assert.equal(
      FORWARDING_PHASE.upstreamHead!(ex),
      'X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: front.test\r\nForwarded: for=10.0.0.1, for=192.0.2.7;proto=https;host=a.test\r\n',
    );
  });

  it('no Host: no X-Forwarded-Host and no host= in Forwarded; an IPv6 client is quoted in Forwarded', () => {
    const ex = exchange({ client: '2001:db8::1' });
    assert.equal(FORWARDING_PHASE.upstreamHead!(ex), 'X-Forwarded-For: 2001:db8::1\r\nX-Forwarded-Proto: http\r\nForwarded: for="[2001:db8::1]";proto=http\r\n');
  });
});

describe('persistence phase', () => {
  /** A persistence that records its calls; lookup answers from `pins` (a Promise when `async`). */
  function fakePersistence(pin: Server | undefined, async: boolean): Persistence & { calls: string[] } {
    const calls: string[] = [];
    return {
      type: 'cookie',
      requestHeaders: ['cookie'],
      responseHeaders: ['set-cookie'],
      calls,
      lookup(req: StickyRequest, _set: ServerSet) {
        calls.push('lookup ' + req.path);
        return async ? Promise.resolve(pin) : pin;
      },
      forwardHeaders() {
        calls.push('forward');
        return 'Cookie: a=1\r\n';
      },
      commit(_req: StickyRequest, res: StickyResponse | undefined, s: Server, pinned: Server | undefined, secure: boolean) {
        calls.push(`commit ${res === undefined ? '-' : 'res'} ${s.name} ${pinned?.name ?? '-'} ${secure}`);
        return 'Set-Cookie: SRV=x\r\n';
      },
    };
  }
  const handle = { pool: { current: { set: {} } } } as unknown as PoolHandle;

  it('pins on the request, writes its request headers, commits on the response', () => {
    const a = server('a');
    const per = fakePersistence(a, false);
    const p = new PersistencePhase(per);
    assert.deepEqual(p.requestHeaders, ['cookie']);
    assert.deepEqual(p.responseHeaders, ['set-cookie']);
    const ex = exchange({ proto: 'https' });
    ex.poolHandle = handle;
    assert.equal(p.onRequest(ex), undefined);
    assert.equal(ex.pinned, a);
    assert.equal(p.upstreamHead(ex), 'Cookie: a=1\r\n');
    ex.picked = server('b');
    assert.equal(p.onResponseHead(ex, { lnames: [], values: [] } as unknown as ResponseHead), 'Set-Cookie: SRV=x\r\n');
    assert.deepEqual(per.calls, ['lookup /a', 'forward', 'commit res b a true']);
  });

  it('a shared store: the request waits for the lookup; onResume takes the pin', async () => {
    const a = server('a');
    const p = new PersistencePhase(fakePersistence(a, true));
    const ex = exchange();
    ex.poolHandle = handle;
    const d = p.onRequest(ex);
    assert.ok(d instanceof Promise);
    assert.equal(ex.pinned, undefined);
    assert.equal(p.onResume(ex, await d), undefined);
    assert.equal(ex.pinned, a);
  });
});

describe('served-by and passive-health phases', () => {
  it('X-Served-By names the picked server', () => {
    const ex = exchange();
    ex.picked = server('web-2');
    assert.equal(SERVED_BY_PHASE.onResponseHead!(ex, {} as ResponseHead), 'X-Served-By: web-2\r\n');
  });

  it("passive health reports each try to the handle's current onOutcome, with the exchange's status", () => {
    const seen: string[] = [];
    const handle = {} as PoolHandle;
    const p = new PassiveHealthPhase(handle);
    const ex = exchange();
    const rt = { server: server('a') } as unknown as ServerRuntime;
    p.onAttemptDone(ex, rt, 'connect'); // no outlier detection yet: nothing happens
    handle.onOutcome = (r, failure, status) => void seen.push(`${r.server.name} ${failure || 'ok'} ${status}`);
    p.onAttemptDone(ex, rt, 'connect');
    ex.status = 503;
    p.onAttemptDone(ex, rt, '');
    assert.deepEqual(seen, ['a connect 0', 'a ok 503']);
  });
});
