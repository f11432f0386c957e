import { z } from 'zod';
import { isHostname, isIPv4, isIPv6 } from '../values/host.js';
import { fail, ok, show } from '../values/parsed.js';
import { domain, int, leaf, name, text } from './fields.js';

const recordName = leaf<string, string>('record name', (v) => {
  if (typeof v !== 'string') return fail(`expected a record name, got ${show(v)}`);
  if (v === '@' || /^(\*|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/.test(v)) {
    return ok(v.toLowerCase());
  }
  return fail(`bad record name ${show(v)}: a name relative to the zone, or @ for the zone itself`);
});

const POOL_TYPES = new Set(['A', 'AAAA', 'SRV']);

/** What is wrong with the data of a static record, if anything. */
function recordDataProblem(type: string, v: string): string | undefined {
  switch (type) {
    case 'A':
      return isIPv4(v) ? undefined : 'expected an IPv4 address';
    case 'AAAA':
      return isIPv6(v) ? undefined : 'expected an IPv6 address';
    case 'CNAME':
    case 'NS':
      return isHostname(v.replace(/\.$/, '')) ? undefined : 'expected a domain name';
    case 'MX':
      return /^\d{1,5}\s+\S+$/.test(v) ? undefined : 'expected PREFERENCE HOST, e.g. 10 mail.example.com';
    case 'SRV':
      return /^\d{1,5}\s+\d{1,5}\s+\d{1,5}\s+\S+$/.test(v) ? undefined : 'expected PRIORITY WEIGHT PORT TARGET, e.g. 10 5 443 www.example.com';
    default:
      return undefined;
  }
}

export const dnsRecordSchema = z
  .strictObject({
    name: recordName.describe('Name relative to the zone; @ is the zone itself'),
    type: z.enum(['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'SRV', 'NS']).describe('Record type'),
    ttl: int(0, 2_147_483_647).optional().describe("TTL in seconds (default: the zone's ttl)"),
    pool: name().optional().describe('Answer with the available servers of this pool (A, AAAA or SRV)'),
    policy: z
      .enum(['roundrobin', 'weighted', 'all', 'first', 'geo', 'nearest'])
      .prefault('roundrobin')
      .describe('How servers of the pool are chosen for an answer'),
    answers: int(0, 64).prefault(0).describe('Most records in one answer; 0 = every chosen server'),
    values: z.array(text({ nonEmpty: true })).min(1).optional().meta({ docType: 'list of string' }).describe('Static record data (instead of pool)'),
  })
  .superRefine((r, ctx) => {
    if ((r.pool === undefined) === (r.values === undefined)) {
      ctx.addIssue({ code: 'custom', message: r.pool === undefined ? 'needs pool or values' : 'takes only one of pool, values' });
      return;
    }
    if (r.pool !== undefined && !POOL_TYPES.has(r.type)) {
      ctx.addIssue({ code: 'custom', path: ['pool'], message: `a ${r.type} record cannot come from a pool (A, AAAA or SRV can)` });
    }
    r.values?.forEach((v, i) => {
      const why = recordDataProblem(r.type, v);
      if (why !== undefined) ctx.addIssue({ code: 'custom', path: ['values', i], message: `bad ${r.type} value ${show(v)}: ${why}` });
    });
  })
  .describe('One record: from a pool, or static values');

export const dnsZoneSchema = z
  .strictObject({
    name: domain().describe('Zone apex, e.g. example.com'),
    ttl: int(0, 2_147_483_647).prefault(20).describe('Default TTL of answers in seconds (short: clients cache)'),
    records: z.array(dnsRecordSchema).prefault([]).describe('Records of the zone'),
  })
  .describe('An authoritative zone');
