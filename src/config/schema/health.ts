import { z } from 'zod';
import { duration, int, statusRanges, text } from './fields.js';

const probeKeys = {
  interval: duration().prefault('2s').describe('Time between two probes of a server'),
  timeout: duration().prefault('1s').describe('A probe that takes longer fails'),
  rise: int(1, 100).prefault(2).describe('Consecutive successes that bring a down server up'),
  fall: int(1, 100).prefault(3).describe('Consecutive failures that take an up server down'),
};

const httpCheck = z
  .strictObject({
    type: z.literal('http'),
    path: text({ nonEmpty: true }).prefault('/').describe('Request path'),
    method: z.enum(['GET', 'HEAD']).prefault('GET').describe('Request method'),
    host: text({ nonEmpty: true }).optional().describe("Host header (default: the server's address)"),
    expect: z
      .strictObject({
        status: statusRanges().prefault('200-399').describe('Status codes that pass'),
        body: text().optional().describe('Text the body must contain'),
      })
      .prefault({})
      .describe('What a passing response looks like'),
    ...probeKeys,
  })
  .describe('HTTP probe on a fresh connection');

export const healthSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('none') }).describe('No active checks'),
    z.strictObject({ type: z.literal('tcp'), ...probeKeys }).describe('A TCP connection opens'),
    httpCheck,
    z.strictObject({ type: z.literal('icmp'), ...probeKeys }).describe('ICMP echo request and reply'),
  ])
  .describe('Active health check of every server of the pool; `type` selects the probe');

export const passiveSchema = z
  .strictObject({
    consecutiveErrors: int(1, 1000).prefault(5).describe('Consecutive connect failures or 5xx that eject a server'),
    ejectFor: duration().prefault('30s').describe('How long a first ejection lasts; it doubles on each repeat'),
    maxEjectFor: duration().prefault('5m').describe('Longest ejection'),
    maxEjectPercent: int(0, 100).prefault(50).describe('Never eject more than this share of the pool'),
  })
  .describe('Passive checks: outlier detection from live traffic');
