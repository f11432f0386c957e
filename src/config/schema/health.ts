import { z } from 'zod';
import { duration, int, regex, statusRanges, text } from './fields.js';

const probeKeys = {
  interval: duration().prefault('2s').describe('Time between two probes of a server'),
  timeout: duration().prefault('1s').describe('A probe that takes longer fails'),
  rise: int(1, 100).prefault(2).describe('Consecutive successes that bring a down server up'),
  fall: int(1, 100).prefault(3).describe('Consecutive failures that take an up server down'),
  jitter: duration().prefault('0s').describe('Up to this much is added at random to every wait between probes, and the first probes are spread over it'),
  fastInterval: duration()
    .optional()
    .meta({ docDefault: 'interval' })
    .describe('Time between probes while a state is changing (a streak of results has begun, or the server was never probed)'),
  downInterval: duration().optional().meta({ docDefault: 'interval' }).describe('Time between probes while the server is down'),
};

/** The port probed on each server's host, when it is not the port traffic goes to (ELB's `HTTP:8080/ping`). */
const probePort = () => int(1, 65535).optional().meta({ docDefault: "the server's port" }).describe("Port probed on each server's host");

const httpCheck = z
  .strictObject({
    type: z.literal('http'),
    port: probePort(),
    path: text({ nonEmpty: true }).prefault('/').describe('Request path'),
    method: z.enum(['GET', 'HEAD']).prefault('GET').describe('Request method'),
    host: text({ nonEmpty: true }).optional().describe("Host header (default: the server's address)"),
    expect: z
      .strictObject({
        status: statusRanges().prefault('200-399').describe('Status codes that pass'),
        body: text().optional().describe('Text the body must contain (GET; the first 64 KiB are read)'),
        bodyRegex: regex().optional().describe('A regular expression the body must match (GET; the first 64 KiB are read)'),
      })
      .prefault({})
      .describe('What a passing response looks like'),
    ...probeKeys,
  })
  .describe('HTTP probe on a fresh connection');

export const healthSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('none') }).describe('No active checks'),
    z
      .strictObject({
        type: z.literal('tcp'),
        port: probePort(),
        send: text().optional().describe('Text written once the connection is open'),
        expect: text().optional().describe('Text the reply must contain (read until it comes, the server closes, or the timeout)'),
        ...probeKeys,
      })
      .describe('A TCP connection opens (and, with send/expect, a reply contains a text)'),
    httpCheck,
    z.strictObject({ type: z.literal('icmp'), ...probeKeys }).describe('ICMP echo request and reply'),
  ])
  .describe('Active health check of every server of the pool; `type` selects the probe');

export const passiveSchema = z
  .strictObject({
    consecutiveErrors: int(1, 1000).prefault(5).describe('Consecutive connect failures or 5xx that eject a server'),
    ejectFor: duration().prefault('30s').describe('How long a first ejection lasts; it doubles on each repeat'),
    maxEjectFor: duration().prefault('5m').describe('Longest ejection'),
    maxEjectPercent: int(0, 100).prefault(50).describe('Never eject more than this share of the pool (rounded down)'),
    errors: z
      .array(z.enum(['connect', 'response', '5xx']))
      .min(1)
      .prefault(['connect', 'response', '5xx'])
      .describe('What counts as an error: connect (refused, unreachable, connect timeout), response (reset, closed, response timeout, malformed), 5xx (a 5xx status)'),
  })
  .describe('Passive checks: outlier detection from live traffic');
