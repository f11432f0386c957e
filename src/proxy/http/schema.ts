/** The configuration of the `http` and `https` listener kinds. */
import { z } from 'zod';
import { accessSchema, rateLimitSchema } from '../../config/schema/access.js';
import { cidrList, flag, oneOf, upgradeProtocol } from '../../config/schema/fields.js';
import { httpLimitsSchema } from '../../config/schema/http-limits.js';
import { listenerKeys, proxyProtocolKeys } from '../../config/schema/listener.js';
import { routeSchema } from '../../config/schema/route.js';
import { listenerTlsSchema } from '../../config/schema/tls.js';

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

export const httpsListenerSchema = z
  .strictObject({
    protocol: z.literal('https'),
    ...httpKeys,
    tls: listenerTlsSchema,
  })
  .describe('HTTPS listener (HTTP/1.1 and h2 by ALPN): an http listener with TLS termination');
