import { z } from 'zod';
import { domain, duration, flag, int, listenAddress, orOff, text } from './fields.js';

const adminTls = z
  .strictObject({
    cert: text({ nonEmpty: true }).describe('PEM file with the certificate chain (leaf first)'),
    key: text({ nonEmpty: true }).describe('PEM file with the private key'),
    reloadCheck: duration()
      .prefault('5s')
      .describe('How often the two files are checked for changes (a changed certificate is used for new connections without restart); 0 = never'),
  })
  .describe('HTTPS for the admin API');

const adminTimeouts = z
  .strictObject({
    header: duration()
      .prefault('10s')
      .describe('Time a client has to finish its TLS handshake and then each request head, from the connection start or the end of the previous response; then the connection is closed'),
    body: duration().prefault('30s').describe('Time a client has to send a whole request body once its head has arrived; then the connection is closed'),
    keepAlive: duration().prefault('5s').describe('Idle time allowed on a connection between two requests'),
  })
  .describe("Deadlines on the admin API's client connections, kept by Portico's own timers");

export const adminSchema = z
  .strictObject({
    enabled: flag().prefault(true).describe('Run the admin API; `false` runs Portico without it (embedded use, tests)'),
    listen: listenAddress().prefault('127.0.0.1:9090').describe('Address of the admin API, the dashboard and /metrics'),
    token: text()
      .prefault('')
      .describe('Bearer token that mutations (and with `protectReads` every read) must carry; required when `listen` is not a loopback address'),
    tls: orOff(adminTls)
      .prefault(false)
      .describe('`false` (plain HTTP) or the certificate to serve the API, the dashboard, /metrics and the events over HTTPS (see docs/admin.md)'),
    protectReads: flag()
      .prefault(false)
      .describe('Reads need the token too: every endpoint but `GET /api/v1/status/ready`, the dashboard page itself, and /metrics with `metricsOpen`; needs `token`'),
    metricsOpen: flag()
      .prefault(false)
      .describe('With `protectReads`: /metrics stays readable without the token (a Prometheus that cannot send one)'),
    timeouts: adminTimeouts.prefault({}),
    maxBodyBytes: int(1024, 64 * 1024 * 1024).prefault(1048576).describe('Largest request body (JSON) the admin API accepts, in bytes; 413 above it'),
    allowedHosts: z
      .array(domain())
      .prefault([])
      .describe(
        'Host names the admin API answers to, besides IP addresses, `localhost` and the `listen` host; any other Host header is refused (DNS rebinding)',
      ),
  })
  .describe('The admin API, the dashboard and the Prometheus endpoint');
