/** The configuration of the `tcp` listener kind, and its checks on the pools its listeners use. */
import { z } from 'zod';
import { asMap, asString, maps, type RawMap } from '../../config/checks/raw.js';
import { accessSchema } from '../../config/schema/access.js';
import { duration, hostList, int, name } from '../../config/schema/fields.js';
import { listenerKeys, proxyProtocolKeys } from '../../config/schema/listener.js';
import type { PathIssue } from '../../config/path.js';

declare module '../../config/schema/listener.js' {
  interface ListenerSchemas {
    tcp: typeof tcpListenerSchema;
  }
}

const tcpRouteSchema = z
  .strictObject({
    name: name().optional().describe('Name of the route in logs and metrics (default: LISTENER#INDEX)'),
    match: z
      .strictObject({
        sni: hostList().describe('TLS server name from the ClientHello: exact, or *.example.com for every subdomain; one or a list'),
      })
      .optional()
      .describe('Conditions on the connection'),
    pool: name().describe('Pool that takes the matching connections'),
  })
  .describe('First match wins; a route without match takes every connection (also those without SNI) and must be the last');

export const tcpListenerSchema = z
  .strictObject({
    protocol: z.literal('tcp'),
    ...listenerKeys,
    dataPlane: z
      .literal('userspace')
      .optional()
      .meta({ docDefault: '`userspace`' })
      .describe('`userspace` (this proxy) or `kernel` (nftables forwards the packets: the kernel tcp listener, docs/kernel-l4.md)'),
    ...proxyProtocolKeys,
    pool: name().optional().describe('Pool whose servers take the connections (or `routes`)'),
    routes: z
      .array(tcpRouteSchema)
      .min(1, 'routes needs at least one route')
      .optional()
      .describe('Instead of `pool`: routes by TLS server name (with inspect: tls); the first that matches is taken'),
    inspect: z
      .enum(['none', 'tls'])
      .prefault('none')
      .describe('`tls`: read the ClientHello without terminating TLS (SNI routing, session-id persistence)'),
    inspectTimeout: duration()
      .prefault('5s')
      .describe('Longest wait for the ClientHello (inspect: tls) and for the PROXY header (acceptProxy); then the connection is closed'),
    inspectMaxBytes: int(512, 1_048_576)
      .prefault(16384)
      .describe('Largest ClientHello read (inspect: tls), across all its TLS records; a larger one closes the connection'),
    maxConnections: int(0).prefault(10000).describe('Most client connections open at once; 0 = unlimited'),
    access: accessSchema.prefault({}),
  })
  .superRefine((l, ctx) => {
    if ((l.pool === undefined) === (l.routes === undefined)) {
      ctx.addIssue({ code: 'custom', message: l.pool === undefined ? 'needs pool or routes' : 'takes pool or routes, not both' });
    }
    l.routes?.forEach((r, i) => {
      if (r.match !== undefined && l.inspect !== 'tls') {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'match', 'sni'], message: 'matching on sni needs inspect: tls on this listener' });
      }
    });
  })
  .describe('TCP (layer 4) listener');

/** The pools a listener sends traffic to (its `pool` and its routes' pools). */
function poolsOf(l: RawMap): string[] {
  const out: string[] = [];
  const p = asString(l['pool']);
  if (p !== undefined) out.push(p);
  for (const [, r] of maps(l['routes'])) {
    const rp = asString(r['pool']);
    if (rp !== undefined) out.push(rp);
  }
  return out;
}

/**
 * The pools tcp listeners use: `persistence: tls-session` is learnt only by tcp listeners that
 * read the ClientHello (inspect: tls), so such a pool must be used only there; and a tcp
 * listener has no request to hash, so `balance: hash` behind one hashes the client address.
 */
export function checkTcpPools(root: RawMap): PathIssue[] {
  const out: PathIssue[] = [];
  const users = new Map<string, { tlsInspect: boolean; tcp: boolean; listener: string }[]>();
  for (const [i, l] of maps(root['listeners'])) {
    const proto = asString(l['protocol']);
    const tcp = proto === 'tcp' && l['dataPlane'] !== 'kernel'; // a kernel listener's pools: src/kernel/schema.ts
    const use = { tlsInspect: tcp && l['inspect'] === 'tls', tcp, listener: asString(l['name']) ?? String(i) };
    for (const p of poolsOf(l)) users.set(p, [...(users.get(p) ?? []), use]);
  }
  for (const [i, p] of maps(root['pools'])) {
    const name = asString(p['name']);
    if (name === undefined) continue;
    const used = users.get(name) ?? [];
    if (asString(asMap(p['persistence'])?.['type']) === 'tls-session') {
      const other = used.find((u) => !u.tlsInspect);
      if (other !== undefined) {
        out.push({
          path: ['pools', i, 'persistence', 'type'],
          message: `tls-session persistence works on tcp listeners with inspect: tls; listener "${other.listener}" uses this pool without it`,
        });
      }
    }
    const key = asString(asMap(p['hash'])?.['key']);
    if (asString(p['balance']) === 'hash' && key !== undefined && key !== 'source-ip') {
      const tcp = used.find((u) => u.tcp);
      if (tcp !== undefined) {
        out.push({ path: ['pools', i, 'hash', 'key'], message: `tcp listener "${tcp.listener}" uses this pool: a connection can only be hashed by source-ip` });
      }
    }
  }
  return out;
}
