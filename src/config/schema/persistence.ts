import { z } from 'zod';
import { fail, ok, show } from '../values/parsed.js';
import { domain, duration, flag, int, leaf, text } from './fields.js';

/** A cookie or parameter name: an RFC 6265 token (no separators, no '=' or ';'). */
const cookieName = leaf<string, string>('name', (v) =>
  typeof v === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) ? ok(v) : fail(`bad name ${show(v)}: letters, digits and !#$%&'*+.^_\`|~- only`),
);

const COOKIE_MAX_AGE = 400 * 86_400_000; // browsers cap cookie lifetimes at 400 days

export const persistenceSchema = z
  .discriminatedUnion('type', [
    z
      .strictObject({
        type: z.literal('cookie'),
        name: cookieName.prefault('SRV').describe('insert: the cookie Portico sets; prefix: the application\'s cookie to prefix'),
        mode: z.enum(['insert', 'prefix']).prefault('insert').describe('insert a cookie of its own, or prefix the application\'s cookie'),
        secret: text({ nonEmpty: true }).optional().describe('Key of the HMAC in the cookie (default: generated and kept in stateDir)'),
        maxAge: duration(COOKIE_MAX_AGE).optional().describe('Lifetime of the inserted cookie (default: a session cookie)'),
        domain: domain().optional().describe('Domain attribute of the inserted cookie'),
      })
      .describe('A cookie names the server with an opaque token'),
    z
      .strictObject({
        type: z.literal('source-ip'),
        ttl: duration().prefault('30m').describe('How long an idle entry is kept'),
        size: int(1, 10_000_000).prefault(100_000).describe('Most entries in the stick table (least recently used go first)'),
      })
      .describe('A stick table from client address to server'),
    z
      .strictObject({
        type: z.literal('url-param'),
        name: cookieName.describe('Query parameter or path parameter (;name=) holding the session id, matched in any case'),
        learn: flag().prefault(false).describe("Learn session ids from the server's Set-Cookie and Location (else hash them)"),
        ttl: duration().prefault('30m').describe('How long an idle learned session is kept'),
        size: int(1, 10_000_000).prefault(100_000).describe('Most learned sessions kept'),
      })
      .describe('A session id in the URL'),
    z
      .strictObject({
        type: z.literal('tls-session'),
        ttl: duration().prefault('5m').describe('How long an idle session id is kept'),
        size: int(1, 10_000_000).prefault(100_000).describe('Most session ids kept'),
      })
      .describe('The TLS session id (tcp listeners with inspect: tls)'),
  ])
  .describe('Keep a client on one server; `type` selects how');
