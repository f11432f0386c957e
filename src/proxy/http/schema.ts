/** The configuration of the `http` and `https` listener kinds. */
import { z } from 'zod';
import { accessSchema, rateLimitSchema } from '../../config/schema/access.js';
import { cidrList, flag, int, leaf, oneOf, upgradeProtocol } from '../../config/schema/fields.js';
import { httpLimitsSchema } from '../../config/schema/http-limits.js';
import { listenerKeys, proxyProtocolKeys } from '../../config/schema/listener.js';
import { routeSchema } from '../../config/schema/route.js';
import { listenerTlsSchema } from '../../config/schema/tls.js';
import { fail, show } from '../../config/values/parsed.js';
import { parseSize } from '../../config/values/size.js';

declare module '../../config/schema/listener.js' {
  interface ListenerSchemas {
    http: typeof httpListenerSchema;
    https: typeof httpsListenerSchema;
  }
}

const httpKeys = {
  ...listenerKeys,
  ...proxyProtocolKeys,
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

/** nghttp2 counts a session's memory in whole megabytes (10^6 bytes). */
const MB = 1_000_000;

/** A size that is a whole number of megabytes, at least one. */
const megabytes = leaf<string | number, number>('size', (v) => {
  const r = parseSize(v);
  if (!r.ok) return r;
  if (r.value < MB || r.value % MB !== 0) return fail(`bad size ${show(v)}: h2 session memory is counted in whole megabytes (10^6 bytes), at least 1MB, e.g. 16MB`);
  return r;
});

/** The client-side limits of an https listener: those of http, and those of its h2 connections. */
export const httpsLimitsSchema = httpLimitsSchema
  .extend({
    h2MaxConcurrentStreams: int(1, 2 ** 31 - 1)
      .prefault(128)
      .describe('Streams one h2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); a client opening more has them refused'),
    h2MaxSessionMemory: megabytes
      .prefault('16MB')
      .describe(
        'Memory one h2 connection may hold (frames and header blocks waiting, in whole megabytes); above it new streams are refused (ENHANCE_YOUR_CALM) until it drains',
      ),
  })
  .describe('Limits and timeouts on the client side; the h2 keys apply to connections that chose h2 (tls.http2)');

export const httpsListenerSchema = z
  .strictObject({
    protocol: z.literal('https'),
    ...httpKeys,
    limits: httpsLimitsSchema.prefault({}),
    tls: listenerTlsSchema,
  })
  .describe('HTTPS listener (HTTP/1.1 and h2 by ALPN): an http listener with TLS termination');
