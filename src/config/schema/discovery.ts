import { z } from 'zod';
import { fail, ok, show } from '../values/parsed.js';
import { domain, duration, int, leaf, serverAddress, text } from './fields.js';

const nameservers = () =>
  z
    .array(serverAddress())
    .optional()
    .meta({ docType: 'list of address' })
    .describe('Name servers to ask (host:port); default: those of the system');

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
        type: z.literal('file'),
        path: text({ nonEmpty: true }).describe('YAML or JSON file with a list of servers, watched for changes'),
      })
      .describe('Servers from a watched file'),
  ])
  .describe('Where the server list comes from (see docs/discovery.md); other than static, `servers` must be empty');
