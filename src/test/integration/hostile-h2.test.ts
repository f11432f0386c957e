import { strict as assert } from 'node:assert';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { createPortico, type Portico } from '../../app/app.js';
import { missingBinary, selfSigned } from '../../test-helpers/certs.js';
import {
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  ENHANCE_YOUR_CALM,
  FLOW_CONTROL_ERROR,
  FRAME_SIZE_ERROR,
  GOAWAY,
  HEADERS,
  PING,
  PRIORITY,
  PROTOCOL_ERROR,
  RST_STREAM,
  SETTINGS,
  WINDOW_UPDATE,
  errorCode,
  frame,
  indexed,
  lit,
  litIndexed,
  rawH2,
  requestBlock,
  type Frame,
  type RawH2,
} from '../../test-helpers/h2-raw.js';
import { startRecordingOrigin, type RecordingOrigin } from '../../test-helpers/recording-origin.js';

/**
 * Hostile HTTP/2 clients against an https listener with h2. Each case sends frames by hand and
 * asserts the refusal (RST_STREAM or GOAWAY with its code) and that no malformed request reached
 * the server, which records every byte; the floods also show another client is served meanwhile.
 */

const skip = missingBinary('openssl');
const COMPRESSION_ERROR = 0x9;
/**
 * Node's HTTP/2 ends a connection on an error nghttp2 reports with GOAWAY INTERNAL_ERROR, where
 * nghttp2 alone would send the precise code (PROTOCOL_ERROR, FLOW_CONTROL_ERROR ...): either is
 * accepted, the connection must end.
 */
const INTERNAL_ERROR = 0x2;
const REFUSED_STREAM = 0x7;

const h = (block: Buffer, flags = END_HEADERS | END_STREAM, stream = 1): Buffer => frame(HEADERS, flags, stream, block);
const req = (extra: Buffer[] = [], pseudo: Record<string, string> = {}): Buffer => h(requestBlock(extra, pseudo));
/** A header block with exactly these fields, in this order (no pseudo-header added). */
const only = (fields: [string, string][]): Buffer => h(Buffer.concat(fields.map(([n, v]) => lit(n, v))));
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const setting = (id: number, value: number): Buffer => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(id);
  b.writeUInt32BE(value, 2);
  return b;
};

/** Malformed requests: the stream is reset with PROTOCOL_ERROR and no request reaches the server. */
const MALFORMED: [name: string, frames: Buffer[]][] = [
  // content-length against DATA
  ['content-length above the DATA length', [req([lit('content-length', '10')], { ':method': 'POST' }).subarray(0, 0), h(requestBlock([lit('content-length', '10')], { ':method': 'POST' }), END_HEADERS), frame(DATA, END_STREAM, 1, Buffer.from('hello'))]],
  ['DATA longer than content-length', [h(requestBlock([lit('content-length', '3')], { ':method': 'POST' }), END_HEADERS), frame(DATA, END_STREAM, 1, Buffer.from('EVIL!'))]],
  ['content-length with no DATA', [req([lit('content-length', '5')], { ':method': 'POST' })]],
  ['two different content-length', [h(requestBlock([lit('content-length', '5'), lit('content-length', '6')], { ':method': 'POST' }), END_HEADERS), frame(DATA, END_STREAM, 1, Buffer.from('hello'))]],
  ['content-length not a number', [h(requestBlock([lit('content-length', '5x')], { ':method': 'POST' }), END_HEADERS), frame(DATA, END_STREAM, 1, Buffer.from('hello'))]],
  // TE and connection-specific fields (RFC 9113 §8.2.2)
  ['te: gzip', [req([lit('te', 'gzip')])]],
  ['te: trailers, gzip', [req([lit('te', 'trailers, gzip')])]],
  ['connection: keep-alive', [req([lit('connection', 'keep-alive')])]],
  ['keep-alive field', [req([lit('keep-alive', 'timeout=5')])]],
  ['proxy-connection field', [req([lit('proxy-connection', 'keep-alive')])]],
  ['transfer-encoding: chunked', [req([lit('transfer-encoding', 'chunked')])]],
  ['upgrade: h2c', [req([lit('upgrade', 'h2c')])]],
  // names
  ['uppercase field name', [req([lit('X-Evil', '1')])]],
  ['uppercase Host', [req([lit('Host', 'evil.example')])]],
  // pseudo-header injection
  ['pseudo-header after a regular field', [req([lit(':path', '/EVIL')])]],
  ['duplicate :path', [only([[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':path', '/EVIL'], [':authority', 'www.example.com']])]],
  ['duplicate :method', [only([[':method', 'GET'], [':method', 'POST'], [':scheme', 'https'], [':path', '/EVIL'], [':authority', 'www.example.com']])]],
  ['unknown pseudo-header', [req([], { ':evil': 'x' })]],
  [':status in a request', [req([], { ':status': '200' })]],
  ['missing :method', [only([[':scheme', 'https'], [':path', '/EVIL'], [':authority', 'www.example.com']])]],
  ['missing :scheme', [only([[':method', 'GET'], [':path', '/EVIL'], [':authority', 'www.example.com']])]],
  ['missing :path', [only([[':method', 'GET'], [':scheme', 'https'], [':authority', 'www.example.com']])]],
  ['empty :path', [req([], { ':path': '' })]],
  [':method with a space', [req([], { ':method': 'GET /EVIL HTTP/1.1' })]],
  [':path with CRLF', [req([], { ':path': '/ HTTP/1.1\r\nX-Evil: 1\r\n' })]],
  [':authority with CRLF', [req([], { ':authority': 'www.example.com\r\nX-Evil: 1' })]],
  [':authority with NUL', [req([], { ':authority': 'www.example.com\x00EVIL' })]],
  // CR, LF and NUL in values, bad names (RFC 9113 §8.2.1, issue 16 defect 7)
  ['CR in a value', [req([lit('x-a', 'a\rEVIL')])]],
  ['LF in a value', [req([lit('x-a', 'a\nEVIL: 1')])]],
  ['CRLF in a value', [req([lit('x-a', 'a\r\nX-EVIL: 1')])]],
  ['NUL in a value', [req([lit('x-a', 'a\x00EVIL')])]],
  ['space in a name', [req([lit('x evil', '1')])]],
  ['colon inside a name', [req([lit('x:evil', '1')])]],
  ['NUL in a name', [req([lit('x\x00evil', '1')])]],
  ['empty name', [req([lit('', 'EVIL')])]],
  ['CR in a value that enters the dynamic table, then used by index', [req([litIndexed('x-a', 'a\rEVIL')])]],
];

/** Connection errors: GOAWAY with the code. */
const CONNECTION_ERRORS: [name: string, frames: Buffer[], code: number][] = [
  ['DATA on stream 0', [frame(DATA, 0, 0, Buffer.from('EVIL'))], PROTOCOL_ERROR],
  ['HEADERS on stream 0', [h(requestBlock(), END_HEADERS | END_STREAM, 0)], PROTOCOL_ERROR],
  ['HEADERS on an even stream', [h(requestBlock(), END_HEADERS | END_STREAM, 2)], PROTOCOL_ERROR],
  ['WINDOW_UPDATE of 0 on the connection', [frame(WINDOW_UPDATE, 0, 0, u32(0))], PROTOCOL_ERROR],
  ['WINDOW_UPDATE overflowing the window', [frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff)), frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff))], FLOW_CONTROL_ERROR],
  ['SETTINGS of 5 bytes', [frame(SETTINGS, 0, 0, Buffer.alloc(5))], FRAME_SIZE_ERROR],
  ['SETTINGS_ENABLE_PUSH = 2', [frame(SETTINGS, 0, 0, setting(2, 2))], PROTOCOL_ERROR],
  ['SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1', [frame(SETTINGS, 0, 0, setting(4, 0x80000000))], FLOW_CONTROL_ERROR],
  ['SETTINGS_MAX_FRAME_SIZE below 16384', [frame(SETTINGS, 0, 0, setting(5, 100))], PROTOCOL_ERROR],
  ['SETTINGS on a stream', [frame(SETTINGS, 0, 1, Buffer.alloc(0))], PROTOCOL_ERROR],
  ['PING of 7 bytes', [frame(PING, 0, 0, Buffer.alloc(7))], FRAME_SIZE_ERROR],
  ['PING on a stream', [frame(PING, 0, 1, Buffer.alloc(8))], PROTOCOL_ERROR],
  ['frame larger than SETTINGS_MAX_FRAME_SIZE', [h(requestBlock(), END_HEADERS, 1), frame(DATA, 0, 1, Buffer.alloc(20_000))], FRAME_SIZE_ERROR],
  ['CONTINUATION without HEADERS', [frame(CONTINUATION, END_HEADERS, 1, lit('x-a', 'EVIL'))], PROTOCOL_ERROR],
  ['DATA between HEADERS and its CONTINUATION', [h(requestBlock(), 0), frame(DATA, 0, 1, Buffer.from('EVIL')), frame(CONTINUATION, END_HEADERS, 1, lit('x-a', '1'))], PROTOCOL_ERROR],
  ['CONTINUATION on another stream', [h(requestBlock(), 0), frame(CONTINUATION, END_HEADERS, 3, lit('x-a', 'EVIL'))], PROTOCOL_ERROR],
  ['HPACK index beyond the tables', [h(Buffer.concat([requestBlock(), indexed(500)]))], COMPRESSION_ERROR],
  ['HPACK table size update above the setting', [h(Buffer.concat([Buffer.from([0x3f, 0xe1, 0xff, 0x03]), requestBlock()]))], COMPRESSION_ERROR],
  ['HPACK string longer than the block', [h(Buffer.concat([requestBlock(), Buffer.from([0x00, 0x7f, 0x80, 0x01, 0x61])]))], COMPRESSION_ERROR],
  ['RST_STREAM on an idle stream', [frame(RST_STREAM, 0, 7, u32(0))], PROTOCOL_ERROR],
  ['RST_STREAM of 3 bytes', [h(requestBlock([], { ':path': '/slow' }), END_HEADERS, 1), frame(RST_STREAM, 0, 1, Buffer.alloc(3))], FRAME_SIZE_ERROR],
  ['PRIORITY of 4 bytes', [frame(PRIORITY, 0, 1, Buffer.alloc(4))], FRAME_SIZE_ERROR],
];

/** Requests h2 allows that must reach the server rewritten as HTTP/1.1 rules want. */
const REWRITTEN: [name: string, frames: Buffer[], check: (head: string) => void][] = [
  [':authority wins over a different host', [req([lit('host', 'evil.example')])], (head) => {
    assert.match(head, /\r\nhost: www\.example\.com\r\n/i);
    assert.ok(!head.includes('evil.example'), head);
  }],
  ['host alone gives the Host', [only([[':method', 'GET'], [':scheme', 'https'], [':path', '/'], ['host', 'www.example.com']])], (head) => {
    assert.match(head, /\r\nhost: www\.example\.com\r\n/i);
  }],
  ['split cookie fields are joined', [req([lit('cookie', 'a=1'), lit('cookie', 'b=2')])], (head) => {
    assert.match(head, /\r\ncookie: a=1; b=2\r\n/i);
  }],
  ['http2-settings is not forwarded', [req([lit('http2-settings', 'AAMAAABk')])], (head) => {
    assert.ok(!/http2-settings/i.test(head));
  }],
  ['te: trailers reaches the server', [req([lit('te', 'trailers')])], (head) => {
    assert.match(head, /\r\nTE: trailers\r\n/i);
  }],
  ['content-length equal to the DATA length', [h(requestBlock([lit('content-length', '5')], { ':method': 'POST' }), END_HEADERS), frame(DATA, END_STREAM, 1, Buffer.from('hello'))], (head) => {
    assert.match(head, /\r\ncontent-length: 5\r\n/i);
  }],
  ['a body without content-length goes chunked', [h(requestBlock([], { ':method': 'POST' }), END_HEADERS), frame(DATA, END_STREAM, 1, Buffer.from('hello'))], (head) => {
    assert.match(head, /\r\nTransfer-Encoding: chunked\r\n/i);
  }],
  ['x-forwarded-for from the client is replaced', [req([lit('x-forwarded-for', '10.6.6.6')])], (head) => {
    assert.ok(!head.includes('10.6.6.6'));
  }],
  ['absolute :path rewritten by nothing (origin-form only)', [req([], { ':path': '/a?b=c' })], (head) => {
    assert.match(head, /^GET \/a\?b=c HTTP\/1\.1\r\n/);
  }],
];

describe('hostile h2 clients', { skip }, () => {
  let origin: RecordingOrigin;
  let p: Portico;
  let port = 0;

  before(async () => {
    origin = await startRecordingOrigin((head) => (head.startsWith('GET /slow ') ? 'silent' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const cert = selfSigned(['www.example.com']);
    p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 's', protocol: 'https', listen: '127.0.0.1:0', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] }, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [{ name: 'rec', address: `127.0.0.1:${origin.port}` }] }],
    });
    await p.start();
    port = p.address('s')!.port;
  });

  after(async () => {
    await p?.stop(100);
    await origin?.close();
  });

  /** Another client, on its own connection, gets its answer. */
  async function othersServed(): Promise<void> {
    const client = h2connect(`https://127.0.0.1:${port}`, { servername: 'www.example.com', rejectUnauthorized: false });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const r = client.request({ ':path': '/other', ':authority': 'www.example.com' });
        r.on('response', (hd) => resolve(Number(hd[':status'])));
        r.on('error', reject);
        r.resume();
        r.end();
      });
      assert.equal(status, 200);
    } finally {
      client.destroy();
    }
  }

  /** Requests that reached the server, except the other client's. */
  const flooded = (): number => origin.heads.filter((hd) => !hd.startsWith('GET /other ')).length;

  test('h2: stream ids going backwards: the lower stream is never served', async () => {
    origin.reset();
    const c = await rawH2(port);
    try {
      c.send(h(requestBlock([], { ':path': '/ok' }), END_HEADERS | END_STREAM, 5), h(requestBlock([], { ':path': '/EVIL' }), END_HEADERS | END_STREAM, 3));
      assert.ok((await c.until((x) => x.type === HEADERS && x.stream === 5)) !== undefined);
      await othersServed();
      assert.ok(!c.frames.some((x) => x.type === HEADERS && x.stream === 3));
      assert.ok(!origin.raw().includes('EVIL'));
    } finally {
      c.close();
    }
  });

  const refusal = (f: Frame): boolean => (f.type === RST_STREAM && f.stream === 1) || f.type === GOAWAY;

  for (const [name, frames] of MALFORMED) {
    test(`h2 malformed: ${name} → RST_STREAM PROTOCOL_ERROR, nothing reaches the server`, async () => {
      origin.reset();
      const c = await rawH2(port);
      try {
        c.send(...frames);
        const f = await c.until(refusal);
        assert.ok(f !== undefined, `no reset; frames: ${c.frames.map((x) => x.type).join(',')}`);
        assert.equal(errorCode(f), PROTOCOL_ERROR, `${f.type === GOAWAY ? 'GOAWAY' : 'RST_STREAM'} code ${errorCode(f)}`);
        assert.ok(!c.frames.some((x) => x.type === HEADERS && x.stream === 1), 'a response came');
        assert.equal(origin.heads.length, 0, `server read: ${origin.heads.join(' | ')}`);
        assert.ok(!/evil/i.test(origin.raw()), origin.raw());
      } finally {
        c.close();
      }
    });
  }

  for (const [name, frames, code] of CONNECTION_ERRORS) {
    test(`h2 connection error: ${name} → GOAWAY ${code}`, async () => {
      origin.reset();
      const c = await rawH2(port);
      try {
        c.send(...frames);
        const f = await c.until((x) => x.type === GOAWAY);
        assert.ok(f !== undefined, `no GOAWAY; frames: ${c.frames.map((x) => x.type).join(',')}`);
        assert.ok(errorCode(f) === code || errorCode(f) === INTERNAL_ERROR, `GOAWAY code ${errorCode(f)}`);
        assert.ok(!/evil/i.test(origin.raw()), origin.raw());
        assert.ok(origin.heads.every((hd) => !/evil/i.test(hd)));
      } finally {
        c.close();
      }
    });
  }

  for (const [name, frames, check] of REWRITTEN) {
    test(`h2 rewritten: ${name}`, async () => {
      origin.reset();
      const c = await rawH2(port);
      try {
        c.send(...frames);
        const f = await c.until((x) => (x.type === HEADERS || x.type === RST_STREAM) && x.stream === 1);
        assert.ok(f !== undefined && f.type === HEADERS, `no response; frames: ${c.frames.map((x) => x.type).join(',')}`);
        assert.equal(f.payload[0], 0x88, 'status 200 (HPACK static index 8)');
        assert.equal(origin.heads.length, 1);
        check(origin.heads[0]!);
      } finally {
        c.close();
      }
    });
  }

  // ---- floods: the flooding connection is cut or survives bounded; other clients are served ----

  test('h2 flood: rapid reset of 5,000 streams', async () => {
    origin.reset();
    const c = await rawH2(port);
    try {
      const bufs: Buffer[] = [];
      for (let i = 0; i < 5000; i++) {
        const id = 2 * i + 1;
        bufs.push(h(requestBlock([], { ':path': '/slow' }), END_HEADERS, id), frame(RST_STREAM, 0, id, u32(8)));
      }
      c.send(...bufs);
      await othersServed();
      const goaway = await c.until((x) => x.type === GOAWAY, 10_000);
      assert.ok(goaway !== undefined || c.isClosed(), 'the flooding connection is cut');
      if (goaway !== undefined) assert.ok([ENHANCE_YOUR_CALM, INTERNAL_ERROR].includes(errorCode(goaway)), `GOAWAY code ${errorCode(goaway)}`);
      assert.ok(flooded() < 5000, `${flooded()} requests reached the server`);
    } finally {
      c.close();
    }
  });

  test('h2 flood: 10,000 CONTINUATION frames after one HEADERS', async () => {
    origin.reset();
    const c = await rawH2(port);
    try {
      const bufs: Buffer[] = [h(requestBlock(), 0)];
      for (let i = 0; i < 10_000; i++) bufs.push(frame(CONTINUATION, 0, 1, lit(`x-${i % 100}`, 'EVIL'.repeat(10))));
      c.send(...bufs);
      await othersServed();
      await Promise.race([c.closed, c.until((x) => x.type === GOAWAY || x.type === RST_STREAM, 10_000)]);
      assert.ok(c.isClosed() || c.frames.some((x) => x.type === GOAWAY || x.type === RST_STREAM), 'the flood is refused');
      assert.equal(flooded(), 0);
      assert.ok(!origin.raw().includes('EVIL'));
    } finally {
      c.close();
    }
  });

  test('h2 flood: 100,000 empty CONTINUATION frames', async () => {
    origin.reset();
    const c = await rawH2(port);
    try {
      const bufs: Buffer[] = [h(requestBlock(), 0)];
      const empty = frame(CONTINUATION, 0, 1);
      for (let i = 0; i < 100_000; i++) bufs.push(empty);
      c.send(...bufs);
      await othersServed();
      await Promise.race([c.closed, c.until((x) => x.type === GOAWAY, 10_000)]);
      assert.ok(c.isClosed() || c.frames.some((x) => x.type === GOAWAY), 'the flood is refused');
      assert.equal(flooded(), 0);
    } finally {
      c.close();
    }
  });

  test('h2 flood: 20,000 SETTINGS frames', async () => {
    const c = await rawH2(port);
    try {
      const s = frame(SETTINGS, 0, 0, setting(3, 100));
      c.send(...Array.from({ length: 20_000 }, () => s));
      await othersServed();
      const acks = c.frames.filter((x) => x.type === SETTINGS && (x.flags & 1) === 1).length;
      assert.ok(acks <= 20_001, `${acks} acks`);
    } finally {
      c.close();
    }
  });

  test('h2 flood: 20,000 PINGs', async () => {
    const c = await rawH2(port);
    try {
      const ping = frame(PING, 0, 0, Buffer.alloc(8));
      c.send(...Array.from({ length: 20_000 }, () => ping));
      await othersServed();
      const pongs = c.frames.filter((x) => x.type === PING && (x.flags & 1) === 1).length;
      assert.ok(pongs <= 20_000, `${pongs} pongs`);
    } finally {
      c.close();
    }
  });

  test('h2 flood: HPACK bomb (one 4 KB entry referenced 4,000 times)', async () => {
    origin.reset();
    const c = await rawH2(port);
    try {
      const refs = Array.from({ length: 4000 }, () => indexed(62));
      c.send(req([litIndexed('x-bomb', 'EVIL'.repeat(1000)), ...refs]));
      await othersServed();
      const f = await c.until((x) => (x.type === HEADERS || x.type === RST_STREAM || x.type === GOAWAY) && x.stream <= 1);
      if (f?.type === HEADERS) assert.notEqual(f.payload[0], 0x88, 'the bomb got a 200');
      assert.equal(flooded(), 0);
      assert.ok(!origin.raw().includes('EVIL'));
    } finally {
      c.close();
    }
  });

  test('h2 flood: 1,000 streams opened at once are bounded by SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    origin.reset();
    const c = await rawH2(port);
    try {
      const bufs: Buffer[] = [];
      for (let i = 0; i < 1000; i++) bufs.push(h(requestBlock([], { ':path': '/slow' }), END_HEADERS | END_STREAM, 2 * i + 1));
      c.send(...bufs);
      await othersServed();
      const refused = await c.until((x) => x.type === RST_STREAM && errorCode(x) === REFUSED_STREAM, 5000);
      assert.ok(refused !== undefined || c.frames.some((x) => x.type === GOAWAY), 'streams above the limit are refused');
    } finally {
      c.close();
    }
  });
});
