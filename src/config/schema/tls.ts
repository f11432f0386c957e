import { z } from 'zod';
import { text } from './fields.js';

const certificate = z
  .strictObject({
    cert: text({ nonEmpty: true }).describe('PEM file with the certificate chain'),
    key: text({ nonEmpty: true }).describe('PEM file with the private key'),
  })
  .describe('One certificate and its key');

export const listenerTlsSchema = z
  .strictObject({
    certificates: z
      .array(certificate)
      .min(1, 'an https listener needs at least one certificate')
      .describe('Certificates chosen by SNI; the first is the default'),
    sessionCache: z
      .enum(['local', 'shared'])
      .prefault('local')
      .describe('TLS session cache: `local` to this process, or `shared` through cluster.store'),
  })
  .describe('TLS termination');
