import { z } from 'zod';
import { fail, ok, show } from '../values/parsed.js';
import { domain, duration, leaf, text } from './fields.js';

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
      })
      .describe('Servers from DNS SRV records'),
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
  .describe('Where the server list comes from; other than static, `servers` must be empty');
