import { z } from 'zod';
import { flag, httpUrl, int, ipAddress, name, serverAddress, text } from './fields.js';

export const serverSchema = z
  .strictObject({
    name: name().describe('Unique name within the pool'),
    address: serverAddress().describe('Where the server listens'),
    weight: int(0, 256).prefault(1).describe('Relative share of new requests; 0 takes none'),
    backup: flag().prefault(false).describe('Receives traffic only when no primary server is available'),
    maxConnections: int(0).prefault(0).describe('Most requests in flight on this server (more wait in the queue); 0 = unbounded'),
    state: z.enum(['ready', 'drain', 'maint']).prefault('ready').describe('Admin state at start: ready, drain (no new sessions) or maint (nothing)'),
    url: httpUrl().optional().describe("Public base URL of the server (redirect listeners send clients there)"),
    dnsAddress: ipAddress().optional().describe("Address that DNS answers give for this server (default: the address's host)"),
    site: text({ nonEmpty: true }).optional().describe('Site of the server (DNS geo and nearest policies)'),
    region: text({ nonEmpty: true }).optional().describe('Region of the server (DNS geo and nearest policies)'),
  })
  .describe('One server');
