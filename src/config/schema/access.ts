import { z } from 'zod';
import { cidrList, int, orOff, rate, requestKey } from './fields.js';

export const accessSchema = z
  .strictObject({
    allow: cidrList().prefault(['0.0.0.0/0', '::/0']).describe('Client addresses admitted (an empty list admits nobody)'),
    deny: cidrList().prefault([]).describe('Client addresses refused even when `allow` admits them'),
  })
  .describe('Which client addresses may connect');

const rateLimit = z
  .strictObject({
    key: requestKey().prefault('source-ip').describe('What is counted: source-ip | uri | header:NAME | cookie:NAME | query:NAME'),
    rate: rate().describe('Sustained rate allowed per key, e.g. 100/s'),
    burst: int(1).optional().describe('Requests allowed at once above the rate; defaults to the rate\'s count'),
  })
  .transform((r) => ({ key: r.key, rate: r.rate, burst: r.burst ?? r.rate.count }))
  .describe('Token-bucket rate limit per key; requests above it get 429');

export const rateLimitSchema = orOff(rateLimit);
