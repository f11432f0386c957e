import { z } from 'zod';
import { duration, flag, int, name, size, text } from './fields.js';

export const cacheSchema = z
  .strictObject({
    name: name().describe('Name of the cache, given to routes as `cache: NAME`'),
    memory: size(1024).prefault('256MiB').describe('Bytes of heads and bodies kept in memory; the least recently used go first'),
    maxObjectSize: size(0).prefault('8MiB').describe('Larger responses stream through unstored (also when a chunked body grows past it)'),
    keep: duration().prefault('1h').describe('How long an expired response with a validator (ETag, Last-Modified) is kept for revalidation'),
    hitForMiss: duration().prefault('30s').describe('How long a URL found uncacheable is fetched without coalescing'),
    shared: flag().prefault(false).describe('true: objects up to sharedMaxObjectSize are also kept in cluster.store, for every node and worker'),
    sharedMaxObjectSize: size(0).prefault('1MiB').describe('Largest object kept in cluster.store when shared'),
  })
  .superRefine((c, ctx) => {
    if (c.maxObjectSize > c.memory) ctx.addIssue({ code: 'custom', path: ['maxObjectSize'], message: 'cannot be larger than memory' });
  })
  .describe('A shared HTTP cache (RFC 9111) that routes name with `cache:`');

const CODINGS = ['br', 'gzip'] as const;

export const compressSchema = z
  .union([
    z.literal(true),
    z.literal(false),
    z.literal('true').transform((): true => true),
    z.literal('false').transform((): false => false),
    z.strictObject({
      algorithms: z
        .array(z.enum(CODINGS))
        .min(1)
        .prefault([...CODINGS])
        .describe('Codings offered, in order of preference (ties in Accept-Encoding go to the first)'),
      minSize: size(0).prefault('1KiB').describe('Bodies shorter than this (by Content-Length) are sent as they are'),
      types: z
        .array(text({ nonEmpty: true }))
        .optional()
        .describe('Media types compressed: exact (application/json) or a whole type (text/*); default: text/*, JSON, JavaScript, XML, SVG, wasm'),
      level: int(1, 11).prefault(5).describe('Brotli quality (1-11) and gzip level (1-9, capped); 5 suits dynamic content'),
    }),
  ])
  .meta({ docType: 'boolean | mapping' })
  .describe('Compress responses by Accept-Encoding (gzip, brotli): true for the defaults, or the options');
