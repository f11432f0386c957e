import { z } from 'zod';
import { compressSchema } from './cache.js';
import { fail, ok, show } from '../values/parsed.js';
import { parseHeaderName } from '../values/text.js';
import { cidrList, flag, headerName, hostList, hostPattern, int, leaf, name, oneOf, regex, text } from './fields.js';

const METHOD = /^[A-Za-z]+$/;
const methods = leaf<string | string[], string[]>('method | list of methods', (v) => {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return fail('expected at least one method');
  for (const m of list) if (typeof m !== 'string' || !METHOD.test(m)) return fail(`bad method ${show(m)}`);
  return ok(list.map((m) => (m as string).toUpperCase()));
});

function exactlyOne(keys: readonly string[]) {
  return (o: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const given = keys.filter((k) => o[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', message: given.length === 0 ? `needs one of ${keys.join(', ')}` : `takes only one of ${given.join(', ')}` });
    }
  };
}

const headerMatch = z
  .strictObject({
    name: headerName().describe('Header field name (any case)'),
    value: text().optional().describe('The value must equal this'),
    regex: regex().optional().describe('The value must match this regular expression'),
    present: flag().optional().describe('true: the header must be there; false: it must be absent'),
  })
  .superRefine(exactlyOne(['value', 'regex', 'present']))
  .describe('A request header, with one of value, regex or present');

const namedValueMatch = (what: string) =>
  z
    .strictObject({
      name: text({ nonEmpty: true }).describe(`${what} name`),
      value: text().optional().describe('The value must equal this'),
      regex: regex().optional().describe('The value must match this regular expression'),
    })
    .superRefine(exactlyOne(['value', 'regex']))
    .describe(`A ${what.toLowerCase()}, with one of value or regex`);

export const matchSchema = z
  .strictObject({
    host: hostList().optional().describe('Host header (without port): exact, or *.example.com for every subdomain; one or a list'),
    path: text({ nonEmpty: true })
      .optional()
      .describe('Path prefix, e.g. /api/ (matched against the normalised path)'),
    pathRegex: regex().optional().describe('Regular expression over the normalised path'),
    method: methods.optional().describe('Request method, one or a list'),
    header: headerMatch.optional(),
    cookie: namedValueMatch('Cookie').optional(),
    query: namedValueMatch('Query parameter').optional(),
    userAgent: regex().optional().describe('Regular expression over the User-Agent header'),
    source: cidrList().optional().describe('Client address ranges'),
    sni: hostPattern().optional().describe('TLS server name: exact, or *.example.com'),
    clientCert: z
      .enum(['verified', 'failed', 'none'])
      .optional()
      .describe('The client certificate of the connection (https listeners with tls.clientAuth): `verified`, `failed` (sent, did not verify) or `none` (not sent)'),
  })
  .superRefine((m, ctx) => {
    if (m.path !== undefined && !m.path.startsWith('/')) ctx.addIssue({ code: 'custom', path: ['path'], message: `a path prefix starts with "/", got ${show(m.path)}` });
  })
  .describe('Conditions on the request; all that are given must hold');

/** Headers that frame the message or belong to one hop: Portico writes them itself, so no route may edit them. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);
/** Forwarding headers are Portico's own (trustedProxies decides which of a client's are kept). */
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
/** The client certificate headers are Portico's own (a client's are always removed). */
const CLIENT_CERT = new Set(['x-forwarded-client-cert', 'x-client-verify']);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

const headerMap = z
  .record(z.string(), text())
  .superRefine((m, ctx) => {
    for (const [k, v] of Object.entries(m)) {
      const r = parseHeaderName(k);
      if (!r.ok) ctx.addIssue({ code: 'custom', path: [k], message: r.message });
      else if (FRAMING.has(k.toLowerCase())) ctx.addIssue({ code: 'custom', path: [k], message: `${k} is written by Portico and cannot be set` });
      if (CONTROL.test(v)) ctx.addIssue({ code: 'custom', path: [k], message: 'a header value cannot hold control characters (CR, LF ...)' });
    }
  })
  .meta({ docType: 'map of header: value' });

/** An issue for every name in `refused`; `key` is the edit (`set`, `add`: keyed by name; `remove`: a list). */
function refuseNames(names: readonly string[], ctx: z.RefinementCtx, key: 'set' | 'add' | 'remove', refused: ReadonlySet<string>, why: string): void {
  names.forEach((n, i) => {
    if (refused.has(n.toLowerCase())) ctx.addIssue({ code: 'custom', path: [key, key === 'remove' ? i : n], message: `${n} ${why}` });
  });
}

const headerEdits = (direction: 'request' | 'response') =>
  z
    .strictObject({
      set: headerMap.prefault({}).describe('Headers to set, replacing any present'),
      add: headerMap.prefault({}).describe('Headers to add alongside any present'),
      remove: z.array(headerName()).prefault([]).meta({ docType: 'list of header names' }).describe('Headers to remove'),
    })
    .superRefine((e, ctx) => {
      const own = direction === 'request' ? FORWARDING : new Set<string>();
      const why = 'is written by Portico (see trustedProxies)';
      refuseNames(Object.keys(e.set), ctx, 'set', own, why);
      refuseNames(Object.keys(e.add), ctx, 'add', own, why);
      refuseNames(e.remove, ctx, 'remove', new Set([...FRAMING, ...own]), 'is written by Portico and cannot be removed');
      if (direction === 'request') {
        const why = 'is written by Portico from the TLS client certificate (see tls.clientAuth)';
        refuseNames(Object.keys(e.set), ctx, 'set', CLIENT_CERT, why);
        refuseNames(Object.keys(e.add), ctx, 'add', CLIENT_CERT, why);
      }
      if (direction === 'request') {
        // A second Host is a request smuggling vector, and a request without one is invalid.
        refuseNames(Object.keys(e.add), ctx, 'add', new Set(['host']), 'cannot be added (use set to replace it)');
        refuseNames(e.remove, ctx, 'remove', new Set(['host']), 'cannot be removed (HTTP/1.1 requires it)');
      }
    });

const PLACEHOLDERS = new Set(['scheme', 'host', 'path', 'query']);
const locationTemplate = leaf<string, string>('location template', (v) => {
  if (typeof v !== 'string' || v === '') return fail(`expected a location, got ${show(v)}`);
  if (/[\x00-\x20\x7f]/.test(v)) return fail(`a location cannot hold spaces or control characters: ${show(v)}`);
  for (const m of v.matchAll(/\{([^}]*)\}/g)) {
    if (!PLACEHOLDERS.has(m[1]!)) return fail(`unknown placeholder {${m[1]}} in ${show(v)}: use {scheme}, {host}, {path} or {query}`);
  }
  return ok(v);
});

export const routeSchema = z
  .strictObject({
    name: name().optional().describe('Name of the route in logs and metrics (default: LISTENER#INDEX)'),
    match: matchSchema.optional(),
    pool: name().optional().describe('Pool that serves the matching requests'),
    redirect: z
      .strictObject({
        status: oneOf([301, 302, 303, 307, 308]).prefault(302).describe('Redirect status'),
        location: locationTemplate.describe(
          'Location header; {scheme}, {host}, {path} and {query} (with its "?", or empty) are replaced from the request',
        ),
      })
      .optional()
      .describe('Answer with a redirect instead of forwarding'),
    respond: z
      .strictObject({
        status: int(200, 599).prefault(200).describe('Status code'),
        body: text().prefault('').describe('Response body (UTF-8; Content-Type text/plain unless headers give one)'),
        headers: headerMap.prefault({}).describe('Response headers'),
      })
      .superRefine((r, ctx) => {
        if ((r.status === 204 || r.status === 304) && r.body !== '') ctx.addIssue({ code: 'custom', path: ['body'], message: `a ${r.status} response has no body` });
      })
      .optional()
      .describe('Answer directly instead of forwarding'),
    headers: z
      .strictObject({
        request: headerEdits('request').prefault({}).describe('Edits to the request before it is forwarded'),
        response: headerEdits('response')
          .prefault({})
          .describe('Edits to the response before it is returned (set and add also apply to redirect and respond answers)'),
      })
      .prefault({})
      .describe('Header edits on requests that take this route'),
    cache: name().optional().describe('Answer from this cache (a name under `caches:`) where RFC 9111 allows, and store what it allows'),
    compress: compressSchema.optional(),
    priority: z
      .enum(['high', 'normal', 'low'])
      .prefault('normal')
      .describe("Order in the pool's queue when every server is at maxConnections: high leaves first"),
  })
  .superRefine(exactlyOne(['pool', 'redirect', 'respond']))
  .describe('First match wins; a route without match takes every request and must be the last');
