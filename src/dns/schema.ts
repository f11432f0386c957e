/** The configuration of the `dns` listener kind. */
import { z } from 'zod';
import { isHostname, isIPv4, isIPv6 } from '../config/values/host.js';
import { fail, ok, show } from '../config/values/parsed.js';
import { cidrList, domain, duration, int, leaf, listenAddress, name, orOff, text } from '../config/schema/fields.js';

declare module '../config/schema/listener.js' {
  interface ListenerSchemas {
    dns: typeof dnsListenerSchema;
  }
}

const recordName = leaf<string, string>('record name', (v) => {
  if (typeof v !== 'string') return fail(`expected a record name, got ${show(v)}`);
  if (v === '@' || /^(\*|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/.test(v)) {
    return ok(v.toLowerCase());
  }
  return fail(`bad record name ${show(v)}: a name relative to the zone, or @ for the zone itself`);
});

const POOL_TYPES = new Set(['A', 'AAAA', 'SRV']);
const TTL_MAX = 2_147_483_647;

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
      return /^\d{1,5}\s+\S+$/.test(v) && Number(v.split(/\s+/)[0]) <= 65535 && isHostname(v.split(/\s+/)[1]!.replace(/\.$/, ''))
        ? undefined
        : 'expected PREFERENCE HOST, e.g. 10 mail.example.com';
    case 'SRV': {
      const p = v.split(/\s+/);
      return /^\d{1,5}\s+\d{1,5}\s+\d{1,5}\s+\S+$/.test(v) && p.slice(0, 3).every((n) => Number(n) <= 65535) && (p[3] === '.' || isHostname(p[3]!.replace(/\.$/, '')))
        ? undefined
        : 'expected PRIORITY WEIGHT PORT TARGET, e.g. 10 5 443 www.example.com';
    }
    case 'TXT':
      return Buffer.byteLength(v) <= 255 ? undefined : 'a TXT string holds at most 255 bytes (give several values for longer text)';
    default:
      return undefined;
  }
}

/** `all` or a list of IP addresses. */
const fallbackValue = leaf<'all' | string[], 'all' | string[]>('all | list of IP address', (v) => {
  if (v === 'all') return ok('all');
  if (!Array.isArray(v) || v.length === 0) return fail(`expected "all" or a non-empty list of IP addresses, got ${show(v)}`);
  for (const a of v) if (typeof a !== 'string' || !(isIPv4(a) || isIPv6(a))) return fail(`bad fallback address ${show(a)}: expected an IP address`);
  return ok(v as string[]);
});

export const dnsRecordSchema = z
  .strictObject({
    name: recordName.describe('Name relative to the zone; @ is the zone itself; `*` as the first label is a wildcard'),
    type: z.enum(['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'SRV', 'NS']).describe('Record type'),
    ttl: int(0, TTL_MAX).optional().describe("TTL in seconds (default: the zone's ttl)"),
    pool: name().optional().describe('Answer with the available servers of this pool (A, AAAA or SRV)'),
    policy: z
      .enum(['roundrobin', 'weighted', 'all', 'first', 'geo', 'nearest'])
      .prefault('roundrobin')
      .describe(
        'How servers of the pool are chosen: roundrobin (rotate), weighted (weighted choice), all, first (failover order), geo (client region, then its fallback regions), nearest (by the proximity table)',
      ),
    answers: int(0, 64).prefault(0).describe('Most records in one answer; 0 = every chosen server'),
    fallback: fallbackValue
      .prefault('all')
      .describe('When no server of the pool is available: `all` answers with every server not in maint, a list of addresses answers with those (a sorry server)'),
    targets: recordName
      .optional()
      .describe("SRV from a pool: the targets are SERVER.targets (relative to the zone), whose A/AAAA records are served too (default: the record's own name)"),
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
    if (r.targets !== undefined && (r.pool === undefined || r.type !== 'SRV')) {
      ctx.addIssue({ code: 'custom', path: ['targets'], message: 'targets applies only to an SRV record from a pool' });
    }
    if (Array.isArray(r.fallback) && r.type !== 'SRV') {
      const bad = r.fallback.find((a) => (r.type === 'A' ? !isIPv4(a) : !isIPv6(a)));
      if (bad !== undefined) ctx.addIssue({ code: 'custom', path: ['fallback'], message: `fallback ${show(bad)} is not an ${r.type === 'A' ? 'IPv4' : 'IPv6'} address` });
    }
    if (Array.isArray(r.fallback) && r.type === 'SRV') {
      ctx.addIssue({ code: 'custom', path: ['fallback'], message: 'an SRV record takes fallback: all (addresses have no port)' });
    }
    if (r.type === 'NS' && r.name === '@') {
      ctx.addIssue({ code: 'custom', path: ['type'], message: "the zone's own NS records come from the zone's `nameservers`" });
    }
    r.values?.forEach((v, i) => {
      const why = recordDataProblem(r.type, v);
      if (why !== undefined) ctx.addIssue({ code: 'custom', path: ['values', i], message: `bad ${r.type} value ${show(v)}: ${why}` });
    });
    if (r.type === 'CNAME' && r.values !== undefined && r.values.length > 1) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: 'a CNAME has exactly one value' });
    }
  })
  .describe('One record: from a pool, or static values');

export const dnsSoaSchema = z
  .strictObject({
    primary: domain().optional().meta({ docDefault: 'the first nameserver' }).describe('MNAME: the primary name server'),
    email: domain()
      .optional()
      .meta({ docDefault: 'hostmaster.ZONE' })
      .describe('RNAME: the mailbox of the person responsible, with the @ written as a dot'),
    serial: int(0, 4_294_967_295).optional().meta({ docDefault: 'the time the configuration was loaded (seconds since 1970)' }).describe('Serial number'),
    refresh: int(0, TTL_MAX).prefault(3600).describe('Seconds between checks by secondaries'),
    retry: int(0, TTL_MAX).prefault(600).describe('Seconds before a failed refresh is retried'),
    expire: int(0, TTL_MAX).prefault(604800).describe('Seconds after which secondaries stop answering without a refresh'),
    minimum: int(0, TTL_MAX).prefault(60).describe('TTL of negative answers (NXDOMAIN, NODATA), capped by the SOA TTL (RFC 2308)'),
  })
  .describe('The SOA record at the zone apex');

export const dnsZoneSchema = z
  .strictObject({
    name: domain().describe('Zone apex, e.g. example.com'),
    ttl: int(0, TTL_MAX).prefault(20).describe('Default TTL of answers in seconds (short: clients cache)'),
    nameservers: z
      .array(domain())
      .min(1)
      .optional()
      .meta({ docType: 'list of domain', docDefault: 'ns1.ZONE' })
      .describe('Names of the authoritative servers: the NS records at the apex (absolute names)'),
    soa: dnsSoaSchema.prefault({}),
    records: z.array(dnsRecordSchema).prefault([]).describe('Records of the zone'),
  })
  .superRefine((zone, ctx) => {
    const types = new Map<string, Set<string>>();
    zone.records.forEach((r, i) => {
      let t = types.get(r.name);
      if (t === undefined) types.set(r.name, (t = new Set()));
      if (r.type === 'CNAME' && (r.name === '@' || t.size > 0)) {
        ctx.addIssue({ code: 'custom', path: ['records', i, 'type'], message: r.name === '@' ? 'a CNAME cannot be at the zone apex' : `a CNAME cannot share its name ${show(r.name)} with other records` });
      } else if (t.has('CNAME')) {
        ctx.addIssue({ code: 'custom', path: ['records', i, 'name'], message: `${show(r.name)} already has a CNAME, which takes no other record` });
      } else if (t.has(r.type) && (r.pool !== undefined || zone.records.some((o, j) => j < i && o.name === r.name && o.type === r.type && o.pool !== undefined))) {
        ctx.addIssue({ code: 'custom', path: ['records', i], message: `${show(r.name)} ${r.type} is defined twice; a record from a pool cannot be combined with another of its type` });
      }
      t.add(r.type);
    });
  })
  .describe('An authoritative zone');

const regionName = () => z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a region name: 1-64 letters, digits, ".", "_" or "-"');

export const dnsGeoSchema = z
  .strictObject({
    regions: z
      .record(regionName(), cidrList())
      .prefault({})
      .meta({ docType: 'mapping of region to list of CIDR' })
      .describe('Client networks of each region (the longest matching prefix wins); EDNS Client Subnet is used when a query has it'),
    fallback: z
      .record(regionName(), z.array(regionName()))
      .prefault({})
      .meta({ docType: 'mapping of region to list of region' })
      .describe('For policy geo: regions to try, in order, when a region has no available server'),
    default: regionName().optional().describe('Region of clients that match no network (unset: every available server)'),
  })
  .superRefine((g, ctx) => {
    for (const [r, list] of Object.entries(g.fallback)) {
      list.forEach((x, i) => {
        if (x === r) ctx.addIssue({ code: 'custom', path: ['fallback', r, i], message: `region ${show(r)} falls back to itself` });
      });
    }
  })
  .describe('Where clients are: networks by region, for the geo and nearest policies');

const rrlSchema = z
  .strictObject({
    responsesPerSecond: int(1, 1_000_000).prefault(100).describe('UDP responses per second allowed to one client network'),
    burst: int(1, 1_000_000).optional().meta({ docDefault: 'responsesPerSecond' }).describe('Responses allowed at once above the rate'),
    slip: int(0, 10)
      .prefault(2)
      .describe('Of the responses over the limit, every slip-th is sent truncated (TC, no answer) so that real clients retry over TCP; 0 = drop them all'),
    ipv4PrefixLength: int(8, 32).prefault(24).describe('IPv4 clients are counted together per network of this size'),
    ipv6PrefixLength: int(16, 128).prefault(56).describe('IPv6 clients are counted together per network of this size'),
    exempt: cidrList().prefault([]).describe('Client networks never limited'),
    maxTracked: int(1000, 10_000_000).prefault(100_000).describe('Most client networks tracked at once (bounds memory)'),
  })
  .transform((r) => ({ ...r, burst: r.burst ?? r.responsesPerSecond }))
  .describe('Response-rate limiting of UDP answers per client network, so that Portico is not an amplifier (TCP is never limited)');

export const dnsTcpSchema = z
  .strictObject({
    idleTimeout: duration().prefault('10s').describe('A TCP connection with no query for this long is closed'),
    maxConnections: int(0).prefault(1000).describe('Most TCP connections open at once; 0 = unlimited'),
    maxQueriesPerConnection: int(0).prefault(0).describe('Queries answered on one TCP connection before it is closed; 0 = unlimited'),
  })
  .describe('DNS over TCP');

export const dnsListenerSchema = z
  .strictObject({
    protocol: z.literal('dns'),
    name: name().describe('Unique name of the listener'),
    listen: listenAddress().describe('Address to bind, UDP and TCP; port 0 takes any free port'),
    zones: z.array(dnsZoneSchema).min(1, 'a dns listener needs at least one zone').describe('Zones served'),
    maxUdpSize: int(512, 4096)
      .prefault(1232)
      .describe("Largest UDP response in bytes; a client's EDNS buffer size is honoured up to this (without EDNS: 512)"),
    tcp: dnsTcpSchema.prefault({}),
    geo: dnsGeoSchema.prefault({}),
    proximity: z
      .record(regionName(), z.record(regionName(), int(0, 1_000_000)))
      .prefault({})
      .meta({ docType: 'mapping of client region to mapping of server region to distance' })
      .describe('For policy nearest: the distance from each client region to each server region (smaller is nearer)'),
    responseRateLimit: orOff(rrlSchema).prefault({}).describe('`false` (off) or response-rate limiting of UDP answers per client network'),
  })
  .superRefine((l, ctx) => {
    const regions = Object.keys(l.geo.regions);
    l.zones.forEach((zone, z) => {
      zone.records.forEach((r, i) => {
        // policy geo without geo.regions is accepted (every client is then unplaced and gets every
        // available server); nearest has nothing to go on without both tables.
        if (r.policy === 'nearest' && r.pool !== undefined && ((regions.length === 0 && l.geo.default === undefined) || Object.keys(l.proximity).length === 0)) {
          ctx.addIssue({ code: 'custom', path: ['zones', z, 'records', i, 'policy'], message: 'policy nearest needs geo.regions (where clients are) and a proximity table' });
        }
      });
    });
    const names = l.zones.map((zn) => zn.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['zones', i, 'name'], message: `zone ${show(n)} is served twice` });
    });
  })
  .describe('Authoritative DNS server (UDP and TCP on the same port) answering from the pools');
