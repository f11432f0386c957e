import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { serverId, type Server } from '../../core/server.js';
import type { Persistence } from '../../persistence/persistence.js';
import type { Exchange } from '../http/exchange.js';
import { isAnswer } from '../http/phases.js';
import { REDIRECT_TARGET_PHASE, RedirectPhase, baseUrlOf } from './redirect-phase.js';

const srv = (name: string, meta: Record<string, string> = {}, host = '10.0.0.1'): Server => ({
  id: serverId('web', name),
  name,
  host,
  port: 8080,
  weight: 1,
  backup: false,
  maxConnections: 0,
  meta,
});

/** The fields of an Exchange the redirect phases read. */
function exchange(fields: { method?: string; path?: string; query?: string; form?: string; picked?: Server; persistence?: Persistence; scheme?: string }): Exchange {
  return {
    method: fields.method ?? 'GET',
    path: fields.path ?? '/',
    query: fields.query ?? '',
    head: { form: fields.form ?? 'origin' },
    picked: fields.picked,
    pinned: undefined,
    scheme: fields.scheme ?? 'http',
    poolHandle: { persistence: fields.persistence },
  } as unknown as Exchange;
}

describe('redirect phases', () => {
  it("answers with the picked server's url, the path and the query, no-store, and a body", () => {
    const p = new RedirectPhase(302);
    const ex = exchange({ path: '/files/a.iso', query: 'x=1', picked: srv('m2', { url: 'https://mirror2.example.com/pub/' }) });
    assert.equal(p.onPicked(), p);
    const text = p.render(ex, 'http', true);
    const [head, body] = text.split('\r\n\r\n');
    assert.equal(body, '302 Found: https://mirror2.example.com/pub/files/a.iso?x=1\n');
    assert.deepEqual(head!.split('\r\n'), [
      'HTTP/1.1 302 Found',
      'Location: https://mirror2.example.com/pub/files/a.iso?x=1',
      'Cache-Control: no-store',
      'Content-Type: text/plain; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body!)}`,
    ]);
  });

  it('closes with the answer when asked, sends no body to HEAD, and takes the configured status', () => {
    const p = new RedirectPhase(307);
    const text = p.render(exchange({ method: 'HEAD', path: '/x', picked: srv('m1') }), 'http', false);
    assert.match(text, /^HTTP\/1\.1 307 Temporary Redirect\r\nLocation: http:\/\/10\.0\.0\.1:8080\/x\r\n/);
    assert.match(text, /Connection: close\r\n\r\n$/);
    assert.equal(p.status, 307);
  });

  it("adds the pool's persistence headers for the picked server, Secure over TLS", () => {
    const seen: unknown[] = [];
    const persistence = {
      commit: (_req: unknown, res: unknown, server: Server, _pinned: unknown, secure: boolean) => {
        seen.push([res, server.name, secure]);
        return 'Set-Cookie: SRV=t\r\n';
      },
    } as unknown as Persistence;
    const text = new RedirectPhase(302).render(exchange({ picked: srv('m1'), persistence, scheme: 'https' }), 'https', true);
    assert.match(text, /Cache-Control: no-store\r\nSet-Cookie: SRV=t\r\nContent-Type/);
    assert.deepEqual(seen, [[undefined, 'm1', true]]);
  });

  it('refuses OPTIONS * with 405, counted as method, before routing; lets a path through', () => {
    const a = REDIRECT_TARGET_PHASE.onRequest!(exchange({ method: 'OPTIONS', form: 'asterisk' }));
    assert.ok(isAnswer(a));
    assert.equal(a.render, undefined);
    if (a.render === undefined) {
      assert.equal(a.outcome.spec.status, 405);
      assert.equal(a.outcome.reason, 'method');
      assert.equal(a.rejected, true);
      assert.match(a.headers, /^Allow: GET, HEAD/);
    }
    assert.equal(REDIRECT_TARGET_PHASE.onRequest!(exchange({ method: 'OPTIONS', path: '/x' })), undefined);
  });

  it("gives a server's base url once: its url normalised without the trailing slash, else http://host:port", () => {
    assert.equal(baseUrlOf(srv('a', { url: 'http://MIRROR.example.com/pub/' })), 'http://mirror.example.com/pub');
    assert.equal(baseUrlOf(srv('b', {}, '::1')), 'http://[::1]:8080');
  });
});
