import { z } from 'zod';
import { duration, int } from './fields.js';

export const httpLimitsSchema = z
  .strictObject({
    headerTimeout: duration().prefault('10s').describe('Time a client has to send the whole request head'),
    keepAliveTimeout: duration().prefault('60s').describe('Idle time allowed on a client connection between two requests'),
    bodyTimeout: duration().prefault('60s').describe('Longest pause while receiving a request body'),
    maxHeaderBytes: int(256, 1_048_576).prefault(16384).describe('Largest request head in bytes (431 above it)'),
    maxHeaders: int(1, 10_000).prefault(100).describe('Most header fields in a request (431 above it)'),
    maxUriBytes: int(16, 1_048_576).prefault(8192).describe('Longest request target in bytes (414 above it)'),
    maxBodyBytes: int(0).prefault(0).describe('Largest request body in bytes, 413 above it; 0 = unlimited'),
    maxConnections: int(0).prefault(10000).describe('Most client connections open at once; 0 = unlimited'),
    maxRequestsPerConnection: int(0).prefault(0).describe('Requests served on one client connection before it is closed; 0 = unlimited'),
  })
  .describe('Limits and timeouts on the client side');
