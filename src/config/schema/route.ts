import { z } from 'zod';
import { fail, ok, show } from '../values/parsed.js';
import { parseHeaderName, parseHostPattern } from '../values/text.js';
import { cidrList, flag, headerName, hostPattern, int, leaf, name, oneOf, regex, text } from './fields.js';

const METHOD = /^[A-Za-z]+$/;
const methods = leaf<string | string[], string[]>('method | list of methods', (v) => {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return fail('expected at least one method');
  for (const m of list) if (typeof m !== 'string' || !METHOD.test(m)) return fail(`bad method ${show(m)}`);
  return ok(list.map((m) => (m as string).toUpperCase()));
});

const hosts = leaf<string | string[], string[]>('host | list of hosts', (v) => {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return fail('expected at least one host');
  const out: string[] = [];
  for (const h of list) {
    const r = parseHostPattern(h);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return ok(out);
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
    host: hosts.optional().describe('Host header (without port): exact, or *.example.com for every subdomain; one or a list'),
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
  })
  .superRefine((m, ctx) => {
    if (m.path !== undefined && !m.path.startsWith('/')) ctx.addIssue({ code: 'custom', path: ['path'], message: `a path prefix starts with "/", got ${show(m.path)}` });
  })
  .describe('Conditions on the request; all that are given must hold');

const headerMap = z
  .record(z.string(), text())
  .superRefine((m, ctx) => {
    for (const k of Object.keys(m)) {
      const r = parseHeaderName(k);
      if (!r.ok) ctx.addIssue({ code: 'custom', path: [k], message: r.message });
    }
  })
  .meta({ docType: 'map of header: value' });

const headerEdits = z
  .strictObject({
    set: headerMap.prefault({}).describe('Headers to set, replacing any present'),
    add: headerMap.prefault({}).describe('Headers to add alongside any present'),
    remove: z.array(headerName()).prefault([]).meta({ docType: 'list of header names' }).describe('Headers to remove'),
  });

const PLACEHOLDERS = new Set(['scheme', 'host', 'path', 'query']);
const locationTemplate = leaf<string, string>('location template', (v) => {
  if (typeof v !== 'string' || v === '') return fail(`expected a location, got ${show(v)}`);
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
        status: int(100, 599).prefault(200).describe('Status code'),
        body: text().prefault('').describe('Response body'),
        headers: headerMap.prefault({}).describe('Response headers'),
      })
      .optional()
      .describe('Answer directly instead of forwarding'),
    headers: z
      .strictObject({
        request: headerEdits.prefault({}).describe('Edits to the request before it is forwarded'),
        response: headerEdits.prefault({}).describe('Edits to the response before it is returned'),
      })
      .prefault({})
      .describe('Header edits on requests that take this route'),
    priority: z
      .enum(['high', 'normal', 'low'])
      .prefault('normal')
      .describe("Order in the pool's queue when every server is at maxConnections: high leaves first"),
  })
  .superRefine(exactlyOne(['pool', 'redirect', 'respond']))
  .describe('First match wins; a route without match takes every request and must be the last');
