import { z } from 'zod';
import { adminSchema } from './admin.js';
import { cacheSchema } from './cache.js';
import { clusterSchema } from './cluster.js';
import { duration, text } from './fields.js';
import { listenerSchema } from './listener.js';
import { loadBalancersSchema } from './load-balancers.js';
import { logSchema } from './log.js';
import { poolSchema } from './pool.js';

export const configSchema = z
  .strictObject({
    admin: adminSchema.prefault({}),
    cluster: clusterSchema.prefault({}),
    log: logSchema.prefault({}),
    shutdownGrace: duration().prefault('10s').describe('On SIGTERM/SIGINT, how long in-flight requests may take to finish'),
    pidFile: text({ nonEmpty: true })
      .optional()
      .meta({ docDefault: 'none' })
      .describe('File the PID of the process to signal (the primary with cluster.workers) is written to at start and removed at exit, as systemd\'s PIDFile= and logrotate read it'),
    stateDir: text({ nonEmpty: true })
      .prefault('.portico')
      .meta({ docDefault: '.portico next to the configuration file' })
      .describe('Directory for state kept across restarts (runtime changes, secrets); a relative path is taken from the configuration file\'s directory, not the working directory'),
    listeners: z.array(listenerSchema).prefault([]).describe('Where clients connect'),
    pools: z.array(poolSchema).prefault([]).describe('Groups of servers'),
    caches: z.array(cacheSchema).prefault([]).describe('HTTP caches (RFC 9111) that routes use with `cache:`'),
    loadBalancers: loadBalancersSchema.prefault({}),
  })
  .describe('A Portico configuration');
