import { z } from 'zod';
import { domain, flag, listenAddress, text } from './fields.js';

export const adminSchema = z
  .strictObject({
    enabled: flag().prefault(true).describe('Run the admin API; `false` runs Portico without it (embedded use, tests)'),
    listen: listenAddress().prefault('127.0.0.1:9090').describe('Address of the admin API, the dashboard and /metrics'),
    token: text()
      .prefault('')
      .describe('Bearer token that mutations must carry; required when `listen` is not a loopback address'),
    allowedHosts: z
      .array(domain())
      .prefault([])
      .describe(
        'Host names the admin API answers to, besides IP addresses, `localhost` and the `listen` host; any other Host header is refused (DNS rebinding)',
      ),
  })
  .describe('The admin API, the dashboard and the Prometheus endpoint');
