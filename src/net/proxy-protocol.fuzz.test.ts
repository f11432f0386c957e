import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fuzzParams } from '../test-helpers/fuzz.js';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader, V2_SIGNATURE, type ProxyInfo } from './proxy-protocol.js';

/**
 * Grammar-based fuzzing of the PROXY protocol parser (v1 and v2). Oracles: the encoder (what
 * Portico writes toward servers) for well-formed headers, and consistency over the stream for any
 * bytes: a header is read the same however much follows it, every prefix of it asks for more, and
 * an error never turns into a header when more bytes arrive.
 */

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const ipv6 = fc.ipV6();
const port = fc.nat(65535);
const info4: fc.Arbitrary<ProxyInfo> = fc.record({ sourceAddress: ipv4, sourcePort: port, destAddress: ipv4, destPort: port });
const info6: fc.Arbitrary<ProxyInfo> = fc.record({ sourceAddress: ipv6, sourcePort: port, destAddress: ipv6, destPort: port });

/** A v2 header with TLVs after the addresses (the length covers them). */
const v2WithTlvs = fc.tuple(info4, fc.array(fc.tuple(fc.nat(255), fc.uint8Array({ maxLength: 40 })), { maxLength: 4 })).map(([info, tlvs]) => {
  const base = encodeProxyV2(info);
  const extra = Buffer.concat(tlvs.map(([type, value]) => Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 255]), Buffer.from(value)])));
  const b = Buffer.concat([base, extra]);
  b.writeUInt16BE(base.length - 16 + extra.length, 14);
  return { info, bytes: b };
});

/** v1 lines near the grammar: fields from a list of valid and invalid spellings. */
const v1Line = fc
  .tuple(
    fc.constantFrom('TCP4', 'TCP6', 'UNKNOWN', 'tcp4', 'TCP5', ''),
    fc.oneof(ipv4, ipv6, fc.constantFrom('256.1.1.1', '01.2.3.4', '1.2.3', '::ffff:1.2.3.4', '', 'a.b.c.d', '1.2.3.4 ')),
    fc.oneof(ipv4, ipv6, fc.constantFrom('0.0.0.0', '::', '1.2.3.4.5')),
    fc.oneof(port.map(String), fc.constantFrom('65536', '080', '-1', '', '99999', '1e3', ' 80')),
    fc.oneof(port.map(String), fc.constantFrom('0', '00', '65535')),
    fc.constantFrom(' ', '  ', '\t'),
    fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', ''),
  )
  .map(([fam, s, d, sp, dp, sep, end]) => Buffer.from(['PROXY', fam, s, d, sp, dp].join(sep) + end, 'latin1'));

/** Any of the above with a few bytes changed, cut or added. */
const mutated = fc
  .tuple(
    fc.oneof(info4.map(encodeProxyV1), info6.map(encodeProxyV1), info4.map(encodeProxyV2), info6.map(encodeProxyV2), v2WithTlvs.map((x) => x.bytes), v1Line),
    fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.constantFrom('set', 'insert', 'delete')), { maxLength: 4 }),
  )
  .map(([b, edits]) => {
    let out = Buffer.from(b);
    for (const [at, byte, op] of edits) {
      const i = out.length === 0 ? 0 : at % out.length;
      if (op === 'set' && out.length > 0) out[i] = byte;
      else if (op === 'insert') out = Buffer.concat([out.subarray(0, i), Buffer.from([byte]), out.subarray(i)]);
      else out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1)]);
    }
    return out;
  });

const anyBytes = fc.oneof(mutated, v1Line, fc.uint8Array({ maxLength: 120 }).map((u) => Buffer.concat([V2_SIGNATURE, Buffer.from(u)])), fc.uint8Array({ maxLength: 120 }).map((u) => Buffer.from(u)));

describe('PROXY protocol parser: fuzzing', () => {
  it('reads back every header the encoder writes (v1 and v2, IPv4 and IPv6, v2 with TLVs), whatever follows it', () => {
    fc.assert(
      fc.property(fc.oneof(info4, info6), fc.constantFrom('v1' as const, 'v2' as const), fc.uint8Array({ maxLength: 30 }), (info, v, after) => {
        const header = v === 'v1' ? encodeProxyV1(info) : encodeProxyV2(info);
        const r = parseProxyHeader(Buffer.concat([header, Buffer.from(after)]));
        assert.equal(r.kind, 'done');
        assert.ok(r.kind === 'done');
        assert.equal(r.length, header.length);
        const want = (a: string): string => (a.includes(':') ? a.toLowerCase() : a);
        assert.equal(r.info!.sourcePort, info.sourcePort);
        assert.equal(r.info!.destPort, info.destPort);
        // v1 keeps the text; v2 writes the 16 bytes, so compare the addresses as Node writes them back.
        const norm = (a: string): string => (a.includes(':') ? new URL(`http://[${a}]/`).hostname.slice(1, -1) : a);
        assert.equal(norm(r.info!.sourceAddress), norm(want(info.sourceAddress)));
        assert.equal(norm(r.info!.destAddress), norm(want(info.destAddress)));
      }),
      fuzzParams(500),
    );
    fc.assert(
      fc.property(v2WithTlvs, ({ info, bytes }) => {
        const r = parseProxyHeader(bytes);
        assert.ok(r.kind === 'done' && r.length === bytes.length && r.info?.sourceAddress === info.sourceAddress && r.info.destPort === info.destPort);
      }),
      fuzzParams(300),
    );
  });

  it('on any bytes: never throws, never reads past them, and answers the same however they arrive', () => {
    fc.assert(
      fc.property(anyBytes, (buf) => {
        const whole = parseProxyHeader(buf);
        if (whole.kind === 'done') {
          assert.ok(whole.length > 0 && whole.length <= buf.length, `length ${whole.length} of ${buf.length}`);
          // The header alone, or with anything after it, is the same header.
          assert.deepEqual(parseProxyHeader(buf.subarray(0, whole.length)), whole);
        }
        const end = whole.kind === 'done' ? whole.length : buf.length;
        for (let k = 0; k < end; k++) {
          const early = parseProxyHeader(buf.subarray(0, k));
          // Before its end a header is incomplete; bytes already refused stay refused.
          if (whole.kind === 'done') assert.equal(early.kind, 'more', `prefix of ${k} bytes: ${JSON.stringify(early)}`);
          else if (early.kind === 'error') assert.equal(whole.kind, 'error', `refused at ${k} bytes, then ${whole.kind}`);
          else assert.notEqual(early.kind, 'done');
        }
      }),
      fuzzParams(2000),
    );
  });
});
