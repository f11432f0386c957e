/**
 * What the servers are told about a client's TLS certificate (https listeners with
 * `tls.clientAuth`), worked out once per client connection:
 *
 * - `X-Client-Verify: SUCCESS | NONE | FAILED:<reason>` (as nginx's $ssl_client_verify): the
 *   certificate verified, none was sent, or one was sent and did not verify (the reason is
 *   OpenSSL's, as Node.js names it: CERT_REVOKED, CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE ...).
 * - `X-Forwarded-Client-Cert` in Envoy's format, only for a certificate that verified:
 *   `Hash=<sha256 of the DER, hex>;Subject="<RFC 2253 subject>";URI=<first URI SAN>;DNS=<each DNS SAN>`.
 *
 * A client's own headers of these names are removed from every request (headers.ts), so what a
 * server reads was written by Portico.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

export type ClientCertState = 'verified' | 'failed' | 'none';

export interface ClientCertInfo {
  readonly state: ClientCertState;
  /** The header lines for the servers (each ending CRLF). */
  readonly head: string;
}

export const CLIENT_VERIFY_HEADER = 'X-Client-Verify';
export const XFCC_HEADER = 'X-Forwarded-Client-Cert';

const NONE: ClientCertInfo = { state: 'none', head: `${CLIENT_VERIFY_HEADER}: NONE\r\n` };

/** The client certificate of a TLS connection made with `requestCert`. */
export function clientCertInfo(s: TLSSocket): ClientCertInfo {
  const x = s.getPeerX509Certificate();
  if (x === undefined) return NONE;
  if (!s.authorized) {
    // On a server socket Node.js sets authorizationError to the code (a string), elsewhere to an Error.
    const e = s.authorizationError as unknown;
    const reason = typeof e === 'string' ? e : ((e as { code?: string } | undefined)?.code ?? 'UNKNOWN');
    return { state: 'failed', head: `${CLIENT_VERIFY_HEADER}: FAILED:${safeToken(reason)}\r\n` };
  }
  return { state: 'verified', head: `${CLIENT_VERIFY_HEADER}: SUCCESS\r\n${XFCC_HEADER}: ${xfcc(x)}\r\n` };
}

/** The Envoy XFCC element of a certificate: Hash, Subject, the first URI SAN, every DNS SAN. */
export function xfcc(x: X509Certificate): string {
  let out = 'Hash=' + x.fingerprint256.replace(/:/g, '').toLowerCase();
  out += ';Subject="' + quoted(rfc2253(x.subject)) + '"';
  const sans = subjectAltNames(x.subjectAltName);
  const uri = sans.find((s) => s.type === 'URI');
  if (uri !== undefined) out += ';URI=' + value(uri.value);
  for (const s of sans) if (s.type === 'DNS') out += ';DNS=' + value(s.value);
  return out;
}

/**
 * Node.js gives a subject one attribute a line, most significant first, with RFC 2253's escapes
 * already applied; RFC 2253 writes them least significant first, comma separated.
 */
export function rfc2253(subject: string): string {
  return subject
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .join(',');
}

/** The entries of Node.js's subjectAltName text ("DNS:a, URI:b"; values with odd characters JSON-quoted). */
export function subjectAltNames(text: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (text === undefined) return out;
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && (text[i] === ' ' || text[i] === ',')) i++;
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    i = colon + 1;
    let v: string;
    if (text[i] === '"') {
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      try {
        v = JSON.parse(text.slice(i, j + 1)) as string;
      } catch {
        v = '';
      }
      i = j + 1;
    } else {
      const end = text.indexOf(', ', i);
      v = end < 0 ? text.slice(i) : text.slice(i, end);
      i = end < 0 ? n : end;
    }
    out.push({ type, value: v });
  }
  return out;
}

/** Printable ASCII only: anything else (controls, CR, LF, non-ASCII) is written as \xHH. */
function printable(v: string): string {
  // eslint-disable-next-line no-control-regex
  return v.replace(/[^\x20-\x7e]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/** A quoted-string's content: backslash and double quote escaped. */
function quoted(v: string): string {
  return printable(v).replace(/["\\]/g, '\\$&');
}

/** An XFCC value: quoted when it holds `,`, `;`, `=`, `"` or a space (Envoy's rule). */
function value(v: string): string {
  const p = printable(v);
  return /[,;="\s\\]/.test(p) ? '"' + quoted(v) + '"' : p;
}

function safeToken(v: string): string {
  return v.replace(/[^A-Za-z0-9_.-]/g, '_');
}
