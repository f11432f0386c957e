import { z } from 'zod';
import { balancerNames } from '../../balancer/registry.js';
import { fail, ok, show } from '../values/parsed.js';
import { didYouMean } from '../values/suggest.js';
import { discoverySchema } from './discovery.js';
import { duration, flag, int, leaf, name, orOff, requestKey, text, toNumber } from './fields.js';
import { healthSchema, passiveSchema } from './health.js';
import { persistenceSchema } from './persistence.js';
import { serverSchema } from './server.js';

/** Checked against the balancer registry when the configuration is validated, not when this module loads. */
const balance = leaf<string, string>('balancer name', (v) => {
  if (typeof v !== 'string') return fail(`expected a balancer name, got ${show(v)}`);
  const known = balancerNames().sort();
  if (known.includes(v)) return ok(v);
  const list = known.length === 0 ? 'no balancer is registered' : `known: ${known.join(', ')}`;
  return fail(`unknown balancer ${show(v)}${didYouMean(v, known)} (${list})`);
});

const isPrime = (n: number): boolean => {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
};

const hashSchema = z
  .strictObject({
    key: requestKey().prefault('source-ip').describe('What is hashed: source-ip | uri | header:NAME | cookie:NAME | query:NAME'),
    method: z.enum(['maglev', 'ring', 'jump']).prefault('maglev').describe('Consistent hashing method'),
    boundedLoad: leaf<number | string, number>('number above 1', (v) => {
      const n = toNumber(v);
      if (n !== undefined && n > 1 && n <= 100) return ok(n);
      return fail(`expected a load factor above 1 such as 1.25, got ${show(v)}`);
    })
      .optional()
      .meta({ docDefault: 'unset (off)' })
      .describe('Cap each server at this factor times the average load (consistent hashing with bounded loads), e.g. 1.25'),
    tableSize: leaf<number | string, number>('prime 7-5000011', (v) => {
      const n = toNumber(v);
      if (n !== undefined && Number.isInteger(n) && n >= 7 && n <= 5_000_011 && isPrime(n)) return ok(n);
      return fail(`expected a prime number 7-5000011 (e.g. 65537), got ${show(v)}`);
    })
      .optional()
      .meta({ docDefault: '`65537` with maglev; `4093` in a pool a kernel listener uses' })
      .describe('method maglev: lookup table size, a prime much larger than the number of servers'),
    vnodes: int(1, 10_000).optional().meta({ docDefault: '`160` with ring' }).describe('method ring: points on the ring per unit of weight'),
  })
  .superRefine((h, ctx) => {
    if (h.tableSize !== undefined && h.method !== 'maglev') ctx.addIssue({ code: 'custom', path: ['tableSize'], message: `applies only to method maglev (method is ${h.method})` });
    if (h.vnodes !== undefined && h.method !== 'ring') ctx.addIssue({ code: 'custom', path: ['vnodes'], message: `applies only to method ring (method is ${h.method})` });
  })
  .describe('Options of balance: hash');

const lardSchema = z
  .strictObject({
    low: int(1, 1_000_000).prefault(25).describe('T_low: a server below this load is under-loaded'),
    high: int(1, 1_000_000).prefault(65).describe('T_high: a server above this load hands targets over; none gets 2*high'),
    replicate: flag().prefault(false).describe('LARD/R: a target may be served by a set of servers'),
    shrinkAfter: duration(86_400_000).prefault('20s').describe('LARD/R: a set unchanged this long loses its most loaded server'),
    maxTargets: int(1, 10_000_000).prefault(65536).describe('Most targets (paths) remembered; the least recently used go first'),
  })
  .superRefine((l, ctx) => {
    if (l.low >= l.high) ctx.addIssue({ code: 'custom', path: ['low'], message: `low (${l.low}) must be below high (${l.high})` });
  })
  .describe('Options of balance: lard (locality-aware request distribution)');

const upstreamTls = z.strictObject({
  ca: text({ nonEmpty: true }).optional().describe('PEM file of the CA that signs the servers\' certificates (default: the system CAs)'),
  servername: text({ nonEmpty: true }).optional().describe('SNI and name to verify (default: the server\'s host)'),
  verify: flag().prefault(true).describe('Verify the server certificate'),
});

export interface UpstreamTlsConfig {
  readonly ca?: string | undefined;
  readonly servername?: string | undefined;
  readonly verify: boolean;
}

const poolTls = z
  .union([z.boolean(), z.enum(['true', 'false']), upstreamTls])
  .meta({ docType: 'false | true | mapping' })
  .transform((v): false | UpstreamTlsConfig => (v === true || v === 'true' ? { verify: true } : v === false || v === 'false' ? false : v))
  .meta({ docType: 'false | true | mapping' });

const pool = z
  .strictObject({
    name: name().describe('Unique name of the pool'),
    balance: balance
      .prefault('roundrobin')
      .describe('Balancing algorithm: roundrobin, leastconn, least-traffic, fastest, p2c, random, hash, lard (any registered)'),
    hash: hashSchema.prefault({}),
    lard: lardSchema.prefault({}),
    persistence: orOff(persistenceSchema).prefault(false).describe('`false` (off) or how clients stick to a server'),
    health: healthSchema.prefault({ type: 'none' }),
    passive: orOff(passiveSchema).prefault(false).describe('`false` (off) or outlier detection from live traffic'),
    slowStart: duration().prefault('0s').describe('A server coming back up ramps its weight up over this time; 0 = off'),
    retries: int(0, 10).prefault(2).describe('Further attempts on other servers, only where safe'),
    timeouts: z
      .strictObject({
        connect: duration().prefault('2s').describe('Time to open a connection to a server'),
        response: duration().prefault('30s').describe('Time from the end of the request to the response head'),
        idle: duration().prefault('60s').describe('Longest silence in either direction once a response has started'),
      })
      .prefault({})
      .describe('Timeouts toward the servers'),
    keepAlive: z
      .strictObject({
        maxIdlePerServer: int(0, 100_000).prefault(64).describe('Idle connections kept open per server'),
        idleTimeout: duration().prefault('30s').describe('An idle pooled connection is closed after this'),
        maxRequests: int(0).prefault(0).describe('Requests on one server connection before it is closed; 0 = unlimited'),
        readBuffer: int(0, 1_048_576)
          .prefault(32768)
          .describe(
            "Bytes of the buffer each connection to a server reads into, reused for every read (nothing allocated per read; taken when the connection opens, kept for the next one when it closes); 0 = a new buffer per read. Not used toward TLS servers",
          ),
      })
      .prefault({})
      .describe('Pooled keep-alive connections to the servers'),
    queue: z
      .strictObject({
        max: int(0).prefault(0).describe('Requests (and tcp connections) that may wait when every server is at maxConnections; 0 = no queue (503 at once; a tcp connection is closed)'),
        timeout: duration().prefault('5s').describe('Longest wait in the queue (then 503; a tcp connection is closed)'),
      })
      .prefault({})
      .describe('Queue of requests waiting for a server'),
    panicThreshold: int(0, 100)
      .prefault(0)
      .describe('When fewer than this percent of servers are available, balance across all of them; 0 = off'),
    tls: poolTls.prefault(false).describe('`false`, `true` (verify with the system CAs) or TLS options toward the servers'),
    servers: z.array(serverSchema).prefault([]).describe('Servers of the pool'),
    discovery: discoverySchema.prefault({ type: 'static' }),
  })
  .describe('A named group of servers with one balancing algorithm');

/** The keys a pool has besides the options of an algorithm (for the check of unknown keys). */
export const poolKeys: readonly string[] = Object.keys(pool.shape);

/**
 * A pool. Besides its own keys it takes the options of its algorithm under the algorithm's name:
 * `hash:` and `lard:` are described above; an algorithm registered with registerBalancer takes
 * its own the same way (`balance: my-algo` with `my-algo: {...}`), validated by its factory's
 * parseOptions (src/config/balancer-options.ts). Any other key is refused by checkPoolOptions
 * (src/config/checks/pools.ts) with the message of an unknown key. The type is the strict object's:
 * the options of registered algorithms are read through balancerOptionsOf only.
 */
export const poolSchema = pool
  .catchall(z.unknown())
  .describe(
    "A named group of servers with one balancing algorithm; the algorithm's options go under its name (`hash`, `lard`, or the name of an algorithm registered with registerBalancer)",
  ) as unknown as typeof pool;
