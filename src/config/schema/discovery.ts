import { z } from 'zod';
import { fail, ok, show } from '../values/parsed.js';
import { domain, duration, httpUrl, int, leaf, serverAddress, text } from './fields.js';

const nameservers = () =>
  z
    .array(serverAddress())
    .optional()
    .meta({ docType: 'list of address' })
    .describe('Name servers to ask (host:port); default: those of the system');

const znodePath = leaf<string, string>('znode path', (v) => {
  if (typeof v === 'string' && /^\/(?:[^/\s]+(?:\/[^/\s]+)*)?$/.test(v)) return ok(v);
  return fail(`expected an absolute znode path such as /services/web (no trailing /), got ${show(v)}`);
});

const etcdUrl = leaf<string, string>('URL', (v) => {
  if (typeof v === 'string' && /^etcd:\/\/[^/\s]+(\/\S*)?$/.test(v)) return ok(v);
  return fail(`expected etcd://HOST:PORT/PREFIX, got ${show(v)}`);
});

export const discoverySchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('static') }).describe('The servers listed in `servers`'),
    z
      .strictObject({
        type: z.literal('dns-srv'),
        name: domain().describe('SRV name to resolve, e.g. _http._tcp.web.example.com'),
        refresh: duration().prefault('30s').describe('Time between two resolutions'),
        nameservers: nameservers(),
      })
      .describe('Servers from DNS SRV records (target, port, weight; the lowest priority are primaries, others backups), each target resolved to its A and AAAA addresses'),
    z
      .strictObject({
        type: z.literal('dns'),
        name: domain().describe('Name whose A and AAAA records are the servers'),
        port: int(1, 65535).describe('Port of every server'),
        refresh: duration().prefault('30s').describe('Time between two resolutions'),
        nameservers: nameservers(),
      })
      .describe('Servers from the A and AAAA records of a name'),
    z
      .strictObject({
        type: z.literal('etcd'),
        url: etcdUrl.describe('etcd://HOST:PORT/PREFIX under which servers register'),
      })
      .describe('Servers registered in etcd (with leases)'),
    z
      .strictObject({
        type: z.literal('zookeeper'),
        hosts: z
          .array(serverAddress())
          .min(1)
          .meta({ docType: 'list of address' })
          .describe('ZooKeeper servers (host:port), tried in order until one grants a session'),
        path: znodePath.describe('The znode whose children are the servers (ephemeral nodes, data host:port or JSON)'),
        sessionTimeout: duration().prefault('10s').describe('Session timeout asked of ZooKeeper (it bounds it between 2 and 20 ticks)'),
        connectTimeout: duration().prefault('3s').describe('Time to connect to one ZooKeeper server and get a session'),
      })
      .describe('Servers registered in ZooKeeper as the children of a znode, watched'),
    z
      .strictObject({
        type: z.literal('consul'),
        url: httpUrl().prefault('http://127.0.0.1:8500').describe("The Consul agent's HTTP API"),
        service: text({ nonEmpty: true }).describe('The service whose instances with passing checks are the servers'),
        tags: z.array(text({ nonEmpty: true })).prefault([]).meta({ docType: 'list of text' }).describe('Only instances that carry every one of these tags'),
        datacenter: text({ nonEmpty: true }).optional().describe("Another datacenter than the agent's (`dc`)"),
        token: text({ nonEmpty: true }).optional().describe('ACL token, sent as X-Consul-Token (write ${CONSUL_TOKEN} to take it from the environment)'),
        wait: duration(600_000).prefault('5m').describe('How long Consul may hold a blocking query before answering with no change (at most 10m)'),
      })
      .describe('Servers of a Consul service with passing checks, followed by blocking queries'),
    z
      .strictObject({
        type: z.literal('file'),
        path: text({ nonEmpty: true }).describe('YAML or JSON file with a list of servers, watched for changes'),
      })
      .describe('Servers from a watched file'),
  ])
  .describe('Where the server list comes from (see docs/discovery.md); other than static, `servers` must be empty');
