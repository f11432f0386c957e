/** The configuration of the `redirect` listener kind. */
import { z } from 'zod';
import { accessSchema } from '../../config/schema/access.js';
import { name, oneOf, orOff } from '../../config/schema/fields.js';
import { httpLimitsSchema } from '../../config/schema/http-limits.js';
import { listenerKeys } from '../../config/schema/listener.js';
import { redirectTlsSchema } from '../../config/schema/tls.js';

declare module '../../config/schema/listener.js' {
  interface ListenerSchemas {
    redirect: typeof redirectListenerSchema;
  }
}

export const redirectListenerSchema = z
  .strictObject({
    protocol: z.literal('redirect'),
    ...listenerKeys,
    pool: name().describe("Pool whose servers' own URLs the redirects point to"),
    status: oneOf([301, 302, 307, 308]).prefault(302).describe('Redirect status'),
    limits: httpLimitsSchema.prefault({}),
    access: accessSchema.prefault({}),
    tls: orOff(redirectTlsSchema)
      .prefault(false)
      .describe('`false` (plain HTTP) or TLS termination: the keys of an https listener\'s `tls` (certificates by SNI, reloaded when their files change, versions, ciphers, session cache) except `http2`, `clientAuth` and `certificates[].ocsp`'),
  })
  .describe("HTTP listener that answers each request with a redirect to the chosen server's url");
