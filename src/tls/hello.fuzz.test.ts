import { strict as assert } from 'node:assert';
import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { fuzzParams, fuzzTimeout } from '../test-helpers/fuzz.js';
import { parseClientHello } from './hello.js';

/**
 * Grammar-based fuzzing of the ClientHello parser. Oracles: the generator itself (a ClientHello
 * built from fields, split over any number of TLS records, must read back as those fields), Node's
 * own TLS client (the hello it sends for a server name and ALPN list must read back as them), and
 * consistency over the stream for mutated hellos (no throw, every prefix of a hello asks for more,
 * a refusal stays a refusal).
 */

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 255]);
const vec8 = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length]), b]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);

/** Host names as SNI carries them (a trailing dot and upper case are allowed on the wire). */
const sniName = fc.tuple(fc.domain(), fc.boolean(), fc.boolean()).map(([d, upper, dot]) => (upper ? d.toUpperCase() : d) + (dot ? '.' : ''));
const alpnName = fc.oneof(fc.constantFrom('h2', 'http/1.1', 'acme-tls/1'), fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 20 }));

interface HelloFields {
  serverName: string | undefined;
  sessionId: Uint8Array;
  alpn: string[] | undefined;
  tls13: boolean | undefined;
  ticket: Uint8Array | undefined;
  psk: boolean;
  suites: number;
  unknown: [number, Uint8Array][];
  recordSizes: number[];
}

const fields: fc.Arbitrary<HelloFields> = fc.record({
  serverName: fc.option(sniName, { nil: undefined }),
  sessionId: fc.uint8Array({ maxLength: 32 }),
  alpn: fc.option(fc.array(alpnName, { minLength: 1, maxLength: 5 }), { nil: undefined }),
  tls13: fc.option(fc.boolean(), { nil: undefined }),
  ticket: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
  psk: fc.boolean(),
  suites: fc.integer({ min: 1, max: 40 }),
  unknown: fc.uniqueArray(fc.tuple(fc.integer({ min: 100, max: 65535 }), fc.uint8Array({ maxLength: 30 })), { maxLength: 3, selector: ([t]) => t }),
  recordSizes: fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 5 }),
});

/** The ClientHello of `f`, as TLS records whose payloads are cut at `f.recordSizes` (the rest in one last record). */
function build(f: HelloFields): { bytes: Buffer; exts: number } {
  const exts: Buffer[] = [];
  if (f.serverName !== undefined) exts.push(ext(0, vec16(Buffer.concat([Buffer.from([0]), vec16(Buffer.from(f.serverName, 'latin1'))]))));
  if (f.alpn !== undefined) exts.push(ext(16, vec16(Buffer.concat(f.alpn.map((p) => vec8(Buffer.from(p, 'latin1')))))));
  if (f.tls13 !== undefined) exts.push(ext(43, vec8(Buffer.concat([...(f.tls13 ? [u16(0x0304)] : []), u16(0x0303)]))));
  if (f.ticket !== undefined) exts.push(ext(35, Buffer.from(f.ticket)));
  for (const [t, d] of f.unknown) if (![0, 16, 35, 41, 43].includes(t)) exts.push(ext(t, Buffer.from(d)));
  if (f.psk) exts.push(ext(41, Buffer.alloc(10))); // pre_shared_key comes last (RFC 8446 §4.2.11)
  const body = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 7),
    vec8(Buffer.from(f.sessionId)),
    vec16(Buffer.alloc(f.suites * 2, 0x13)),
    vec8(Buffer.from([0])),
    ...(exts.length > 0 ? [vec16(Buffer.concat(exts))] : []),
  ]);
  const msg = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 255, body.length & 255]), body]);
  const records: Buffer[] = [];
  let at = 0;
  for (const size of f.recordSizes) {
    if (at >= msg.length) break;
    const part = msg.subarray(at, at + size);
    records.push(Buffer.concat([Buffer.from([22, 3, 1]), u16(part.length), part]));
    at += part.length;
  }
  if (at < msg.length) records.push(Buffer.concat([Buffer.from([22, 3, 1]), u16(msg.length - at), msg.subarray(at)]));
  return { bytes: Buffer.concat(records), exts: exts.length };
}

/** The bytes of a ClientHello Node's TLS client sends for `servername` and `alpn` (caught by a TCP server that never answers). */
function nodeHello(port: number, servername: string | undefined, alpn: string[] | undefined, got: Promise<Buffer>): Promise<Buffer> {
  const c = tlsConnect({ port, host: '127.0.0.1', ...(servername !== undefined ? { servername } : {}), ...(alpn !== undefined ? { ALPNProtocols: alpn } : {}), rejectUnauthorized: false });
  c.on('error', () => undefined);
  return got.finally(() => c.destroy());
}

describe('ClientHello parser: fuzzing', () => {
  let catcher: Server;
  let port = 0;
  const waiting: ((b: Buffer) => void)[] = [];
  const sockets = new Set<Socket>();
  before(async () => {
    catcher = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (parseClientHello(buf).kind !== 'more' || buf.length > 20_000) {
          waiting.shift()?.(buf);
          s.destroy();
        }
      });
    });
    await new Promise<void>((r) => catcher.listen(0, '127.0.0.1', () => r()));
    port = (catcher.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => catcher.close(() => r()));
  });

  it('reads back every generated hello, however it is split over records', () => {
    fc.assert(
      fc.property(fields, (f) => {
        const { bytes } = build(f);
        const r = parseClientHello(bytes);
        assert.equal(r.kind, 'done', JSON.stringify(r));
        assert.ok(r.kind === 'done');
        assert.equal(r.length, bytes.length);
        const h = r.hello;
        const name = f.serverName?.toLowerCase().replace(/\.$/, '');
        assert.equal(h.serverName, name === '' ? undefined : name);
        assert.equal(h.sessionId, Buffer.from(f.sessionId).toString('hex'));
        assert.deepEqual(h.alpn, f.alpn ?? []);
        assert.equal(h.offersTls13, f.tls13 === true);
        assert.equal(h.hasTicket, f.ticket !== undefined && f.ticket.length > 0);
        assert.equal(h.hasPsk, f.psk);
        for (let k = 0; k < bytes.length; k += 1 + (k >> 3)) assert.equal(parseClientHello(bytes.subarray(0, k)).kind, 'more', `prefix of ${k}`);
      }),
      fuzzParams(500),
    );
  });

  it("reads Node's own ClientHello: the server name and ALPN list it was given", { timeout: fuzzTimeout() }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.option(fc.domain(), { nil: undefined }), fc.option(fc.array(fc.constantFrom('h2', 'http/1.1', 'x-proto', 'acme-tls/1'), { minLength: 1, maxLength: 4 }), { nil: undefined }), async (servername, alpn) => {
        const got = new Promise<Buffer>((r) => waiting.push(r));
        const bytes = await nodeHello(port, servername, alpn, got);
        const r = parseClientHello(bytes);
        assert.ok(r.kind === 'done', JSON.stringify(r));
        assert.equal(r.hello.serverName, servername?.toLowerCase());
        assert.deepEqual(r.hello.alpn, alpn ?? []);
        assert.equal(r.hello.offersTls13, true);
      }),
      fuzzParams(40),
    );
  });

  it('on mutated hellos: never throws, never reads past the bytes, and answers the same however they arrive', () => {
    const mutated = fc.tuple(fields, fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.boolean()), { minLength: 1, maxLength: 4 })).map(([f, edits]) => {
      let b = Buffer.from(build(f).bytes);
      for (const [at, byte, insert] of edits) {
        const i = at % (b.length + 1);
        if (insert) b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
        else if (i < b.length) b[i] = byte;
      }
      return b;
    });
    fc.assert(
      fc.property(mutated, (buf) => {
        const whole = parseClientHello(buf);
        if (whole.kind === 'done') assert.ok(whole.length <= buf.length);
        const end = whole.kind === 'done' ? whole.length : buf.length;
        for (let k = 0; k < end; k += 1 + (k >> 3)) {
          const early = parseClientHello(buf.subarray(0, k));
          if (early.kind === 'error') assert.equal(whole.kind, 'error', `refused at ${k} bytes, then ${whole.kind}`);
          else if (whole.kind === 'done') assert.equal(early.kind, 'more', `prefix of ${k} bytes`);
        }
      }),
      fuzzParams(1000),
    );
  });
});
