import { z } from 'zod';
import { adminSchema } from './admin.js';
import { cacheSchema } from './cache.js';
import { clusterSchema } from './cluster.js';
import { duration, text } from './fields.js';
import { listenerSchema } from './listener.js';
import { logSchema } from './log.js';
import { poolSchema } from './pool.js';

export const configSchema = z
  .strictObject({
    admin: adminSchema.prefault({}),
    cluster: clusterSchema.prefault({}),
    log: logSchema.prefault({}),
    shutdownGrace: duration().prefault('10s').describe('On SIGTERM/SIGINT, how long in-flight requests may take to finish'),
    stateDir: text({ nonEmpty: true }).prefault('.portico').describe('Directory for state kept across restarts (runtime changes, secrets)'),
    listeners: z.array(listenerSchema).prefault([]).describe('Where clients connect'),
    pools: z.array(poolSchema).prefault([]).describe('Groups of servers'),
    caches: z.array(cacheSchema).prefault([]).describe('HTTP caches (RFC 9111) that routes use with `cache:`'),
  })
  .describe('A Portico configuration');
