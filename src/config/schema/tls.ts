import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import { fail, ok, show } from '../values/parsed.js';
import { duration, flag, leaf, orOff, text } from './fields.js';

/**
 * Default cipher list: the AEAD suites of Mozilla's "intermediate" profile (forward secrecy,
 * GCM or ChaCha20-Poly1305; no CBC, no RSA key exchange). TLS 1.3 suites first.
 */
export const DEFAULT_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** An OpenSSL cipher list that matches at least one cipher (checked with OpenSSL itself). */
const ciphers = leaf<string, string>('OpenSSL cipher list', (v) => {
  if (typeof v !== 'string' || v.trim() === '') return fail(`expected an OpenSSL cipher list, got ${show(v)}`);
  try {
    createSecureContext({ ciphers: v });
  } catch {
    return fail(`no cipher matches ${show(v)} (an OpenSSL cipher list such as ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256)`);
  }
  return ok(v);
});

const certificate = z
  .strictObject({
    cert: text({ nonEmpty: true }).describe('PEM file with the certificate chain (leaf first); its DNS names are the SNI names it serves'),
    key: text({ nonEmpty: true }).describe('PEM file with the private key'),
    ocsp: flag()
      .prefault(false)
      .describe("Staple an OCSP response from the certificate's OCSP responder (its Authority Information Access URL), refreshed halfway to its nextUpdate; the cert file must hold the issuer's certificate after the leaf"),
  })
  .describe('One certificate and its key');

const clientAuth = z
  .strictObject({
    ca: text({ nonEmpty: true }).describe('PEM file with the CA certificates a client certificate must chain to (only these: not the system CAs)'),
    verify: z
      .enum(['required', 'optional'])
      .prefault('required')
      .describe('`required`: a client without a certificate that verifies is refused at the handshake; `optional`: every client is served and the servers are told the outcome'),
    crl: text({ nonEmpty: true })
      .optional()
      .meta({ docDefault: 'none' })
      .describe('PEM file with the certificate revocation lists (one per CA of the chain); a revoked certificate does not verify'),
  })
  .describe('Client certificates (mutual TLS)');

export const listenerTlsSchema = z
  .strictObject({
    certificates: z
      .array(certificate)
      .min(1, 'an https listener needs at least one certificate')
      .describe('Certificates chosen by SNI (exact names, then *.wildcards); the first is the default'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).prefault('TLSv1.2').describe('Oldest TLS version accepted'),
    ciphers: ciphers.prefault(DEFAULT_CIPHERS).meta({ docDefault: 'AEAD suites with forward secrecy (see docs/tls.md)' }).describe('OpenSSL cipher list (TLS 1.3 suites and TLS 1.2 ciphers)'),
    http2: flag().prefault(true).describe('Offer h2 by ALPN (besides http/1.1)'),
    sessionCache: z
      .enum(['local', 'shared'])
      .prefault('local')
      .describe('TLS sessions and ticket keys: `local` to this process, or `shared` through cluster.store (every node resumes every session)'),
    sessionTimeout: duration(86_400_000).prefault('5m').describe('How long a session (id or ticket) may be resumed'),
    ticketKeyRotation: duration(7 * 86_400_000).prefault('1h').describe('Session ticket keys are replaced this often'),
    clientAuth: orOff(clientAuth)
      .prefault(false)
      .describe('`false` (off) or client certificates to ask for and verify; the outcome goes to the servers in X-Client-Verify and X-Forwarded-Client-Cert (see docs/tls.md)'),
    reloadCheck: duration()
      .prefault('5s')
      .describe('How often the certificate files (also the clientAuth CA and CRL files) are checked for changes (a changed file is reloaded without restart); 0 = never'),
  })
  .describe('TLS termination');

/**
 * The `tls` section of a redirect listener: an https listener's, without what a redirect has no
 * use for: `http2` (a redirect is one short HTTP/1.1 answer), `clientAuth` and OCSP stapling.
 */
export const redirectTlsSchema = listenerTlsSchema
  .omit({ http2: true, clientAuth: true })
  .extend({
    certificates: z
      .array(certificate.omit({ ocsp: true }))
      .min(1, 'a redirect listener with tls needs at least one certificate')
      .describe('Certificates chosen by SNI (exact names, then *.wildcards); the first is the default'),
    reloadCheck: duration()
      .prefault('5s')
      .describe('How often the certificate files are checked for changes (a changed file is reloaded without restart); 0 = never'),
  })
  .describe('TLS termination, as on an https listener (see docs/tls.md)');
