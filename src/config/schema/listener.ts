import { z } from 'zod';
import { accessSchema, rateLimitSchema } from './access.js';
import { dnsListenerSchema } from './dns.js';
import { cidrList, duration, flag, hostList, int, leaf, listenAddress, name, oneOf, orOff, upgradeProtocol } from './fields.js';
import { fail, ok, show } from '../values/parsed.js';
import { httpLimitsSchema } from './http-limits.js';
import { routeSchema } from './route.js';
import { listenerTlsSchema, redirectTlsSchema } from './tls.js';
import { kernelTcpListenerSchema, kernelUdpListenerSchema } from './kernel.js';

const base = {
  name: name().describe('Unique name of the listener'),
  listen: listenAddress().describe('Address to bind; port 0 takes any free port'),
};

/** PROXY protocol toward the servers: `false`, `v1` (text) or `v2` (binary). */
const sendProxy = leaf<false | 'false' | 'v1' | 'v2', false | 'v1' | 'v2'>('false | v1 | v2', (v) => {
  if (v === false || v === 'false') return ok(false);
  if (v === 'v1' || v === 'v2') return ok(v);
  return fail(`expected false, v1 or v2, got ${show(v)}`);
});

const proxyKeys = {
  sendProxy: sendProxy
    .prefault(false)
    .describe("Start every connection to a server with a PROXY protocol header naming the client: `v1`, `v2` or `false`"),
  acceptProxy: flag()
    .prefault(false)
    .describe('Clients (another balancer) start each connection with a PROXY protocol header (v1 or v2); its address is the client address'),
};

const httpKeys = {
  ...base,
  ...proxyKeys,
  limits: httpLimitsSchema.prefault({}),
  upgrades: z
    .array(upgradeProtocol())
    .prefault(['websocket'])
    .describe(
      'Protocols a client may switch to with Upgrade (the connection is tunnelled after the server answers 101); other protocols are removed from the request, h2c always',
    ),
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

const tcpRouteSchema = z
  .strictObject({
    name: name().optional().describe('Name of the route in logs and metrics (default: LISTENER#INDEX)'),
    match: z
      .strictObject({
        sni: hostList().describe('TLS server name from the ClientHello: exact, or *.example.com for every subdomain; one or a list'),
      })
      .optional()
      .describe('Conditions on the connection'),
    pool: name().describe('Pool that takes the matching connections'),
  })
  .describe('First match wins; a route without match takes every connection (also those without SNI) and must be the last');

export const tcpListenerSchema = z
  .strictObject({
    protocol: z.literal('tcp'),
    ...base,
    dataPlane: z
      .literal('userspace')
      .optional()
      .meta({ docDefault: '`userspace`' })
      .describe('`userspace` (this proxy) or `kernel` (nftables forwards the packets: see the kernel tcp listener)'),
    ...proxyKeys,
    pool: name().optional().describe('Pool whose servers take the connections (or `routes`)'),
    routes: z
      .array(tcpRouteSchema)
      .min(1, 'routes needs at least one route')
      .optional()
      .describe('Instead of `pool`: routes by TLS server name (with inspect: tls); the first that matches is taken'),
    inspect: z
      .enum(['none', 'tls'])
      .prefault('none')
      .describe('`tls`: read the ClientHello without terminating TLS (SNI routing, session-id persistence)'),
    inspectTimeout: duration()
      .prefault('5s')
      .describe('Longest wait for the ClientHello (inspect: tls) and for the PROXY header (acceptProxy); then the connection is closed'),
    inspectMaxBytes: int(512, 1_048_576)
      .prefault(16384)
      .describe('Largest ClientHello read (inspect: tls), across all its TLS records; a larger one closes the connection'),
    maxConnections: int(0).prefault(10000).describe('Most client connections open at once; 0 = unlimited'),
    access: accessSchema.prefault({}),
  })
  .superRefine((l, ctx) => {
    if ((l.pool === undefined) === (l.routes === undefined)) {
      ctx.addIssue({ code: 'custom', message: l.pool === undefined ? 'needs pool or routes' : 'takes pool or routes, not both' });
    }
    l.routes?.forEach((r, i) => {
      if (r.match !== undefined && l.inspect !== 'tls') {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'match', 'sni'], message: 'matching on sni needs inspect: tls on this listener' });
      }
    });
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
    tls: orOff(redirectTlsSchema)
      .prefault(false)
      .describe('`false` (plain HTTP) or TLS termination: the keys of an https listener\'s `tls` (certificates by SNI, reloaded when their files change, versions, ciphers, session cache) except `http2`, `clientAuth` and `certificates[].ocsp`'),
  })
  .describe("HTTP listener that answers each request with a redirect to the chosen server's url");

export { dnsListenerSchema, kernelTcpListenerSchema, kernelUdpListenerSchema };

/** `protocol: tcp`: the userspace proxy, or the kernel's virtual server with `dataPlane: kernel`. */
export const anyTcpListenerSchema = z.discriminatedUnion('dataPlane', [tcpListenerSchema, kernelTcpListenerSchema]);

export const listenerSchema = z
  .discriminatedUnion('protocol', [httpListenerSchema, httpsListenerSchema, anyTcpListenerSchema, kernelUdpListenerSchema, redirectListenerSchema, dnsListenerSchema])
  .describe('A listener accepts client connections; `protocol` selects its kind');
