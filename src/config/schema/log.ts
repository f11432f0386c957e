import { z } from 'zod';
import { orOff, text } from './fields.js';

const accessLog = z
  .strictObject({
    path: text({ nonEmpty: true }).prefault('stdout').describe('File to append access-log lines to, or `stdout`'),
    format: z.enum(['json', 'combined']).prefault('json').describe('`json` (one object a line) or `combined` (Apache combined log format)'),
  })
  .describe('The access log: one line per request');

export const logSchema = z
  .strictObject({
    level: z.enum(['error', 'warn', 'info', 'debug']).prefault('info').describe('Least severe level written to the process log'),
    format: z
      .enum(['text', 'json'])
      .prefault('text')
      .describe('How the process log (standard error) writes a line: `text` (time, level, message, key=value) or `json` (one object a line: time, level, process, msg and the fields)'),
    access: orOff(accessLog).prefault(false).describe('`false` (off) or where and how to write the access log'),
  })
  .describe('Process log and access log');
