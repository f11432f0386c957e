/**
 * OCSP stapling (RFC 6960, RFC 6066 §8): for a certificate with `ocsp: true`, Portico asks the
 * OCSP responder named in the certificate (its Authority Information Access) for the
 * certificate's status, checks the answer (for this certificate, signed by its issuer or by a
 * responder the issuer delegated to, not expired) and staples it to handshakes of clients that
 * ask (status_request). The answer is fetched again halfway to its nextUpdate; a failed fetch
 * keeps the last good answer and is retried, and an answer past its nextUpdate is never stapled.
 */
import { createHash, verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { children, content, DerError, encode, encodeOid, expect, generalizedTime, oid, readTlv, TAG, whole, type Tlv } from './der.js';

const OID_SHA1 = '1.3.14.3.2.26';
const OID_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OID_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

const HASHES: Readonly<Record<string, string>> = {
  [OID_SHA1]: 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** Signature algorithm → the digest crypto.verify takes (null: the key decides, as Ed25519). */
const SIGNATURES: Readonly<Record<string, string | null>> = {
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};

/** What is asked about one certificate. */
export interface OcspTarget {
  readonly leaf: X509Certificate;
  readonly issuer: X509Certificate;
  /** The responder's URL (http or https). */
  readonly url: string;
  /** DER of the leaf's issuer Name, the issuer's public key bits, the leaf's serial number (content octets). */
  readonly issuerName: Buffer;
  readonly issuerKey: Buffer;
  readonly serial: Buffer;
}

export interface OcspAnswer {
  readonly status: 'good' | 'revoked' | 'unknown';
  /** ms since 1970. */
  readonly thisUpdate: number;
  /** ms since 1970; undefined when the responder gave none (newer status is always available). */
  readonly nextUpdate: number | undefined;
}

/** The fields of a certificate's TBSCertificate: serial, issuer, subject, subjectPublicKeyInfo. */
function tbsFields(der: Buffer): { serial: Tlv; issuer: Tlv; subject: Tlv; spki: Tlv } {
  const cert = expect(readTlv(der, 0), TAG.SEQUENCE, 'Certificate');
  const tbs = expect(children(der, cert)[0], TAG.SEQUENCE, 'TBSCertificate');
  const f = children(der, tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0;
  return {
    serial: expect(f[i], TAG.INTEGER, 'serialNumber'),
    issuer: expect(f[i + 2], TAG.SEQUENCE, 'issuer'),
    subject: expect(f[i + 4], TAG.SEQUENCE, 'subject'),
    spki: expect(f[i + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo'),
  };
}

/** The public key bits of a certificate (the BIT STRING of its subjectPublicKeyInfo, without the unused-bits byte). */
function publicKeyBits(der: Buffer): Buffer {
  const { spki } = tbsFields(der);
  const bits = expect(children(der, spki)[1], TAG.BIT_STRING, 'subjectPublicKey');
  return der.subarray(bits.body + 1, bits.end);
}

/**
 * The OCSP target of a PEM chain (leaf first, its issuer after it); throws an Error saying what
 * is missing (no issuer in the file, no OCSP responder in the certificate).
 */
export function ocspTarget(chainPem: string): OcspTarget {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('holds no PEM certificate');
  const leaf = new X509Certificate(blocks[0]!);
  const url = /(?:^|\n)OCSP - URI:(\S+)/.exec(leaf.infoAccess ?? '')?.[1];
  if (url === undefined || !/^https?:\/\//i.test(url)) throw new Error('names no OCSP responder (http URL in its Authority Information Access) to ask for the status');
  const issuer = blocks
    .slice(1)
    .map((b) => new X509Certificate(b))
    .find((x) => leaf.checkIssued(x) && leaf.verify(x.publicKey));
  if (issuer === undefined) throw new Error("holds no issuer certificate after the leaf: OCSP needs it (use the full chain, the issuer's certificate second)");
  const f = tbsFields(leaf.raw);
  return { leaf, issuer, url, issuerName: whole(leaf.raw, f.issuer), issuerKey: publicKeyBits(issuer.raw), serial: content(leaf.raw, f.serial) };
}

/** The DER OCSPRequest for one certificate (SHA-1 CertID, no nonce: responders may answer from cache, RFC 5019). */
export function ocspRequest(t: OcspTarget): Buffer {
  const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
  const certId = encode(
    TAG.SEQUENCE,
    encode(TAG.SEQUENCE, encodeOid(OID_SHA1), encode(TAG.NULL)),
    encode(TAG.OCTET_STRING, sha1(t.issuerName)),
    encode(TAG.OCTET_STRING, sha1(t.issuerKey)),
    encode(TAG.INTEGER, t.serial),
  );
  return encode(TAG.SEQUENCE, encode(TAG.SEQUENCE, encode(TAG.SEQUENCE, encode(TAG.SEQUENCE, certId))));
}

/**
 * Check a DER OCSPResponse for `t` at time `now` (ms since 1970): successful, a basic response
 * signed by the issuer (or by a certificate the issuer made for OCSP signing), holding this
 * certificate's status, current. Throws an Error saying what is wrong.
 */
export function checkOcspResponse(der: Buffer, t: OcspTarget, now: number): OcspAnswer {
  try {
    return check(der, t, now);
  } catch (err) {
    if (err instanceof DerError) throw new Error(`not an OCSP response (${err.message})`);
    throw err;
  }
}

function check(der: Buffer, t: OcspTarget, now: number): OcspAnswer {
  const top = expect(readTlv(der, 0), TAG.SEQUENCE, 'OCSPResponse');
  if (top.end !== der.length) throw new DerError('bytes after the response');
  const [statusEl, bytesEl] = children(der, top);
  const status = content(der, expect(statusEl, TAG.ENUMERATED, 'responseStatus'))[0];
  if (status !== 0) throw new Error(`the responder answered ${['successful', 'malformedRequest', 'internalError', 'tryLater', '4', 'sigRequired', 'unauthorized'][status ?? 4] ?? status}`);
  const rb = expect(children(der, expect(bytesEl, 0xa0, 'responseBytes'))[0], TAG.SEQUENCE, 'ResponseBytes');
  const [typeEl, respEl] = children(der, rb);
  if (oid(der, expect(typeEl, TAG.OID, 'responseType')) !== OID_BASIC) throw new Error('not a basic OCSP response');
  const basic = content(der, expect(respEl, TAG.OCTET_STRING, 'response'));
  const b = expect(readTlv(basic, 0), TAG.SEQUENCE, 'BasicOCSPResponse');
  const [tbsEl, algEl, sigEl, certsEl] = children(basic, b);
  const tbs = expect(tbsEl, TAG.SEQUENCE, 'ResponseData');
  const sigOid = oid(basic, expect(children(basic, expect(algEl, TAG.SEQUENCE, 'signatureAlgorithm'))[0], TAG.OID, 'algorithm'));
  const sig = expect(sigEl, TAG.BIT_STRING, 'signature');
  const certs: X509Certificate[] = [];
  if (certsEl !== undefined && certsEl.tag === 0xa0) {
    const seq = expect(children(basic, certsEl)[0], TAG.SEQUENCE, 'certs');
    for (const c of children(basic, seq)) certs.push(new X509Certificate(whole(basic, c)));
  }
  if (!(sigOid in SIGNATURES)) throw new Error(`signature algorithm ${sigOid} is not supported`);
  const signed = whole(basic, tbs);
  const signature = basic.subarray(sig.body + 1, sig.end);
  if (!signerKeys(t, certs, now).some((k) => verifySignature(SIGNATURES[sigOid]!, signed, k, signature))) {
    throw new Error('the signature does not verify with the issuer key or a responder certificate the issuer delegated to');
  }

  const rd = children(basic, tbs);
  let i = rd[0]?.tag === 0xa0 ? 1 : 0; // version
  i++; // responderID
  i++; // producedAt
  const responses = expect(rd[i], TAG.SEQUENCE, 'responses');
  for (const single of children(basic, responses)) {
    const s = children(basic, expect(single, TAG.SEQUENCE, 'SingleResponse'));
    if (!sameCert(basic, expect(s[0], TAG.SEQUENCE, 'certID'), t)) continue;
    const cs = s[1];
    const st = cs?.tag === 0x80 ? 'good' : cs?.tag === 0xa1 ? 'revoked' : cs?.tag === 0x82 ? 'unknown' : undefined;
    if (st === undefined) throw new DerError('certStatus');
    const thisUpdate = generalizedTime(basic, expect(s[2], TAG.GENERALIZED_TIME, 'thisUpdate'));
    const nextUpdate = s[3]?.tag === 0xa0 ? generalizedTime(basic, expect(children(basic, s[3])[0], TAG.GENERALIZED_TIME, 'nextUpdate')) : undefined;
    if (thisUpdate > now + CLOCK_SKEW_MS) throw new Error('the response is not valid yet (thisUpdate in the future)');
    if (nextUpdate !== undefined && nextUpdate <= now) throw new Error('the response has expired (nextUpdate passed)');
    return { status: st, thisUpdate, nextUpdate };
  }
  throw new Error('the response says nothing about this certificate');
}

/** Clocks of Portico and the responder may differ by this much. */
const CLOCK_SKEW_MS = 5 * 60_000;

function sameCert(buf: Buffer, certId: Tlv, t: OcspTarget): boolean {
  const [algEl, nameEl, keyEl, serialEl] = children(buf, certId);
  const alg = HASHES[oid(buf, expect(children(buf, expect(algEl, TAG.SEQUENCE, 'hashAlgorithm'))[0], TAG.OID, 'algorithm'))];
  if (alg === undefined) return false;
  const h = (b: Buffer): Buffer => createHash(alg).update(b).digest();
  return (
    content(buf, expect(nameEl, TAG.OCTET_STRING, 'issuerNameHash')).equals(h(t.issuerName)) &&
    content(buf, expect(keyEl, TAG.OCTET_STRING, 'issuerKeyHash')).equals(h(t.issuerKey)) &&
    content(buf, expect(serialEl, TAG.INTEGER, 'serialNumber')).equals(t.serial)
  );
}

/** The issuer's key, or that of a certificate in the response the issuer made for OCSP signing (valid now). */
function signerKeys(t: OcspTarget, certs: readonly X509Certificate[], now: number): KeyObject[] {
  const keys: KeyObject[] = [t.issuer.publicKey];
  for (const c of certs) {
    if (c.fingerprint256 === t.issuer.fingerprint256) continue;
    const delegated =
      c.checkIssued(t.issuer) &&
      c.verify(t.issuer.publicKey) &&
      (c.keyUsage ?? []).includes(OID_OCSP_SIGNING) &&
      Date.parse(c.validFrom) <= now &&
      now < Date.parse(c.validTo);
    if (delegated) keys.push(c.publicKey);
  }
  return keys;
}

/** POST the request to the responder; the DER answer (at most 64 KiB, within timeoutMs). */
export function fetchOcsp(url: string, body: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: 'POST', headers: { 'content-type': 'application/ocsp-request', 'content-length': body.length, accept: 'application/ocsp-response' }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > 65_536) req.destroy(new Error('the response is larger than 64 KiB'));
          else chunks.push(c);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`the responder answered HTTP ${res.statusCode}`));
          else resolve(Buffer.concat(chunks));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface StaplerOptions {
  /** Wall-clock time, ms since 1970 (tests move it). */
  readonly now?: () => number;
  readonly fetchTimeoutMs?: number;
  /** Wait before retrying a failed fetch. */
  readonly retryMs?: number;
  readonly onError?: (err: Error) => void;
  readonly onUpdate?: (a: OcspAnswer) => void;
}

/** Keeps one certificate's stapled response current. */
export class OcspStapler {
  readonly target: OcspTarget;
  private readonly request: Buffer;
  private readonly now: () => number;
  private readonly fetchTimeoutMs: number;
  private readonly retryMs: number;
  private readonly opts: StaplerOptions;
  private der: Buffer | undefined = undefined;
  answer: OcspAnswer | undefined = undefined;
  private timer: NodeJS.Timeout | undefined = undefined;
  private stopped = false;
  /** Fetches made and failed (for tests and logs). */
  fetches = 0;
  failures = 0;

  constructor(target: OcspTarget, opts: StaplerOptions = {}) {
    this.target = target;
    this.request = ocspRequest(target);
    this.now = opts.now ?? Date.now;
    this.fetchTimeoutMs = opts.fetchTimeoutMs ?? 10_000;
    this.retryMs = opts.retryMs ?? 60_000;
    this.opts = opts;
  }

  /** The response to staple now: undefined when there is none or it has expired. */
  current(): Buffer | undefined {
    const a = this.answer;
    if (a === undefined) return undefined;
    if (a.nextUpdate !== undefined && a.nextUpdate <= this.now()) return undefined;
    return this.der;
  }

  /** Fetch now and keep fetching (halfway to each nextUpdate; failures are retried). */
  start(): void {
    this.stopped = false;
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Fetch and check a response; true when a new one is in force (a failure keeps the last good one). */
  async refresh(): Promise<boolean> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.fetches++;
    let next: number;
    let ok = false;
    try {
      const der = await fetchOcsp(this.target.url, this.request, this.fetchTimeoutMs);
      const a = checkOcspResponse(der, this.target, this.now());
      this.der = der;
      this.answer = a;
      ok = true;
      this.opts.onUpdate?.(a);
      next = a.nextUpdate === undefined ? 3_600_000 : (a.nextUpdate - this.now()) / 2;
      next = Math.max(next, Math.min(this.retryMs, 60_000));
    } catch (err) {
      this.failures++;
      this.opts.onError?.(err as Error);
      next = this.retryMs;
    }
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.refresh(), Math.min(next, 86_400_000));
      this.timer.unref();
    }
    return ok;
  }
}
