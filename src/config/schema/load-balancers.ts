import { z } from 'zod';
import { isIPv4 } from '../values/host.js';
import { fail, ok, show } from '../values/parsed.js';
import { domain, leaf } from './fields.js';

/** An IPv4 address (the A records of load-balancer names, and where their listeners bind). */
const ipv4 = (what: string) =>
  leaf<string, string>('IPv4 address', (v) => (typeof v === 'string' && isIPv4(v) ? ok(v) : fail(`expected ${what}, got ${show(v)}`)));

/**
 * `loadBalancers:`: how load balancers created through the admin API (POST /api/v1/loadbalancers)
 * are placed: the host their listeners bind, the address their DNS name answers with, and the
 * zone of a `dns` listener that serves those names.
 */
export const loadBalancersSchema = z
  .strictObject({
    zone: domain()
      .optional()
      .meta({ docDefault: 'the only zone of the dns listeners, when there is exactly one' })
      .describe('Zone (of a `dns` listener) in which a load balancer NAME gets the A record NAME.ZONE; every dns listener that has the zone serves it'),
    listen: ipv4('an IPv4 address to bind')
      .prefault('0.0.0.0')
      .describe("Host the listeners of a new load balancer bind (with the port each listener asks for)"),
    address: ipv4('an IPv4 address')
      .optional()
      .meta({ docDefault: "listen, or this machine's first non-loopback IPv4 address when listen is 0.0.0.0" })
      .describe("Address in a load balancer's A record and its `address` answer"),
  })
  .describe('Load balancers created at run time through the admin API (POST /api/v1/loadbalancers)');
