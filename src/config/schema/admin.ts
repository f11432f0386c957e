import { z } from 'zod';
import { listenAddress, text } from './fields.js';

export const adminSchema = z
  .strictObject({
    listen: listenAddress().prefault('127.0.0.1:9090').describe('Address of the admin API, the dashboard and /metrics'),
    token: text()
      .prefault('')
      .describe('Bearer token that mutations must carry; required when `listen` is not a loopback address'),
  })
  .describe('The admin API, the dashboard and the Prometheus endpoint');
