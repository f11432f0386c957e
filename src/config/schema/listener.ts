import { z } from 'zod';
import { accessSchema, rateLimitSchema } from './access.js';
import { dnsListenerSchema } from './dns.js';
import { cidrList, flag, int, listenAddress, name, oneOf } from './fields.js';
import { httpLimitsSchema } from './http-limits.js';
import { routeSchema } from './route.js';
import { listenerTlsSchema } from './tls.js';

const base = {
  name: name().describe('Unique name of the listener'),
  listen: listenAddress().describe('Address to bind; port 0 takes any free port'),
};

const httpKeys = {
  ...base,
  limits: httpLimitsSchema.prefault({}),
  exposeServer: flag().prefault(false).describe('Add X-Served-By with the name of the server that answered'),
  noRouteStatus: oneOf([404, 503]).prefault(503).describe('Status when no route matches'),
  trustedProxies: cidrList()
    .prefault([])
    .describe("Peers whose X-Forwarded-For / Forwarded headers are kept (others' are replaced)"),
  access: accessSchema.prefault({}),
  rateLimit: rateLimitSchema.prefault(false).describe('`false` (off) or a rate limit per key'),
  routes: z.array(routeSchema).min(1, 'a listener needs at least one route').describe('Routes in order; the first that matches is taken'),
};

export const httpListenerSchema = z.strictObject({ protocol: z.literal('http'), ...httpKeys }).describe('HTTP/1.1 listener with content switching');

export const httpsListenerSchema = z
  .strictObject({
    protocol: z.literal('https'),
    ...httpKeys,
    tls: listenerTlsSchema,
  })
  .describe('HTTPS listener (HTTP/1.1 and h2 by ALPN): an http listener with TLS termination');

export const tcpListenerSchema = z
  .strictObject({
    protocol: z.literal('tcp'),
    ...base,
    pool: name().describe('Pool whose servers take the connections'),
    inspect: z
      .enum(['none', 'tls'])
      .prefault('none')
      .describe('`tls`: read the ClientHello without terminating TLS (SNI routing, session-id persistence)'),
    maxConnections: int(0).prefault(10000).describe('Most client connections open at once; 0 = unlimited'),
    access: accessSchema.prefault({}),
  })
  .describe('TCP (layer 4) listener');

export const redirectListenerSchema = z
  .strictObject({
    protocol: z.literal('redirect'),
    ...base,
    pool: name().describe("Pool whose servers' own URLs the redirects point to"),
    status: oneOf([301, 302, 307, 308]).prefault(302).describe('Redirect status'),
    limits: httpLimitsSchema.prefault({}),
    access: accessSchema.prefault({}),
  })
  .describe("HTTP listener that answers each request with a redirect to the chosen server's url");

export { dnsListenerSchema };

export const listenerSchema = z
  .discriminatedUnion('protocol', [httpListenerSchema, httpsListenerSchema, tcpListenerSchema, redirectListenerSchema, dnsListenerSchema])
  .describe('A listener accepts client connections; `protocol` selects its kind');
