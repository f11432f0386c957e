import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { connect, createServer, type Socket } from 'node:net';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader, readProxyHeader, V2_SIGNATURE, type ProxyInfo } from './proxy-protocol.js';

const v4: ProxyInfo = { sourceAddress: '192.0.2.10', sourcePort: 51234, destAddress: '198.51.100.1', destPort: 443 };
const v6: ProxyInfo = { sourceAddress: '2001:db8::1', sourcePort: 1, destAddress: '2001:db8:0:0:1::2', destPort: 65535 };

describe('PROXY protocol v1', () => {
  it('encodes TCP4 and TCP6 lines', () => {
    assert.equal(encodeProxyV1(v4).toString(), 'PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n');
    assert.equal(encodeProxyV1(v6).toString(), 'PROXY TCP6 2001:db8::1 2001:db8:0:0:1::2 1 65535\r\n');
  });

  it('writes IPv4-mapped addresses as TCP4, and mixed families as TCP6', () => {
    const mapped = { ...v4, sourceAddress: '::ffff:192.0.2.10', destAddress: '::ffff:198.51.100.1' };
    assert.equal(encodeProxyV1(mapped).toString(), 'PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n');
    const mixed = { ...v4, destAddress: '::1' };
    assert.equal(encodeProxyV1(mixed).toString(), 'PROXY TCP6 ::ffff:192.0.2.10 ::1 51234 443\r\n');
    assert.equal(encodeProxyV1({ ...v4, sourceAddress: '' }).toString(), 'PROXY UNKNOWN\r\n');
  });

  it('parses what it encodes, and says where the header ends', () => {
    for (const c of [v4, v6]) {
      const h = encodeProxyV1(c);
      const r = parseProxyHeader(Buffer.concat([h, Buffer.from('GET / HTTP/1.1\r\n')]));
      assert.equal(r.kind, 'done');
      if (r.kind !== 'done') return;
      assert.equal(r.length, h.length);
      assert.equal(r.info?.sourcePort, c.sourcePort);
      assert.equal(r.info?.destPort, c.destPort);
    }
  });

  it('asks for more until the CRLF, byte by byte', () => {
    const h = encodeProxyV1(v4);
    for (let i = 1; i < h.length; i++) assert.equal(parseProxyHeader(h.subarray(0, i)).kind, 'more', `prefix ${i}`);
    assert.equal(parseProxyHeader(h).kind, 'done');
  });

  it('UNKNOWN carries no addresses', () => {
    const r = parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'));
    assert.deepEqual(r, { kind: 'done', length: 35, info: undefined });
  });

  it('refuses malformed lines', () => {
    const bad = [
      'PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n',
      'PROXY TCP4 192.0.2.1 192.0.2.2 1 70000\r\n',
      'PROXY TCP4 ::1 192.0.2.2 1 2\r\n',
      'PROXY TCP6 192.0.2.1 ::1 1 2\r\n',
      'PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n',
      'PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n',
      'PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n',
      'GET / HTTP/1.1\r\n',
      'PROXY ' + 'x'.repeat(120),
    ];
    for (const b of bad) assert.equal(parseProxyHeader(Buffer.from(b)).kind, 'error', JSON.stringify(b));
  });
});

describe('PROXY protocol v2', () => {
  it('encodes and parses IPv4 and IPv6', () => {
    for (const c of [v4, v6]) {
      const h = encodeProxyV2(c);
      assert.ok(h.subarray(0, 12).equals(V2_SIGNATURE));
      assert.equal(h[12], 0x21);
      const r = parseProxyHeader(Buffer.concat([h, Buffer.from([1, 2, 3])]));
      assert.equal(r.kind, 'done');
      if (r.kind !== 'done') return;
      assert.equal(r.length, h.length);
      assert.equal(r.info?.sourceAddress, c === v4 ? '192.0.2.10' : '2001:db8::1');
      assert.equal(r.info?.destAddress, c === v4 ? '198.51.100.1' : '2001:db8::1:0:0:2');
      assert.equal(r.info?.sourcePort, c.sourcePort);
      assert.equal(r.info?.destPort, c.destPort);
    }
  });

  it('has the exact wire layout for IPv4', () => {
    const h = encodeProxyV2(v4);
    assert.equal(h.toString('hex'), '0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'c000020a' + 'c6336401' + 'c822' + '01bb');
  });

  it('skips TLVs and accepts LOCAL', () => {
    const h = encodeProxyV2(v4);
    const withTlv = Buffer.concat([h, Buffer.from([0x04, 0x00, 0x02, 0xaa, 0xbb])]);
    withTlv.writeUInt16BE(12 + 5, 14);
    const r = parseProxyHeader(withTlv);
    assert.equal(r.kind === 'done' && r.length, withTlv.length);
    const local = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
    assert.deepEqual(parseProxyHeader(local), { kind: 'done', length: 16, info: undefined });
  });

  it('asks for more on every strict prefix', () => {
    const h = encodeProxyV2(v6);
    for (let i = 1; i < h.length; i++) assert.equal(parseProxyHeader(h.subarray(0, i)).kind, 'more', `prefix ${i}`);
  });

  it('refuses a bad version, command or signature', () => {
    const h = encodeProxyV2(v4);
    const badVer = Buffer.from(h);
    badVer[12] = 0x11;
    assert.equal(parseProxyHeader(badVer).kind, 'error');
    const badCmd = Buffer.from(h);
    badCmd[12] = 0x22;
    assert.equal(parseProxyHeader(badCmd).kind, 'error');
    const badSig = Buffer.from(h);
    badSig[5] = 0x0e;
    assert.equal(parseProxyHeader(badSig).kind, 'error');
    const tooLong = Buffer.from(h);
    tooLong.writeUInt16BE(60000, 14);
    assert.equal(parseProxyHeader(tooLong).kind, 'error');
  });
});

describe('readProxyHeader on a socket', () => {
  async function serve(onSock: (s: Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
    const srv = createServer(onSock);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    return { port, close: () => new Promise<void>((r) => srv.close(() => r())) };
  }

  it('hands over the address and the bytes after the header, sent in pieces', async () => {
    let got: ProxyInfo | undefined;
    let rest = '';
    const done = new Promise<void>((resolve) => {
      void serve((s) => {
        readProxyHeader(
          s,
          2000,
          (info) => {
            got = info;
            s.on('data', (c: Buffer) => {
              rest += c.toString();
              if (rest === 'hello') {
                s.destroy();
                resolve();
              }
            });
            s.resume();
          },
          () => {},
        );
      }).then((srv) => {
        const c = connect(srv.port, '127.0.0.1', async () => {
          const h = encodeProxyV2(v4);
          c.write(h.subarray(0, 7));
          await new Promise((r) => setTimeout(r, 20));
          c.write(Buffer.concat([h.subarray(7), Buffer.from('hel')]));
          await new Promise((r) => setTimeout(r, 20));
          c.write('lo');
        });
        c.on('close', () => void srv.close());
        c.on('error', () => {});
      });
    });
    await done;
    assert.equal(got?.sourceAddress, '192.0.2.10');
    assert.equal(got?.sourcePort, 51234);
    assert.equal(rest, 'hello');
  });

  it('rejects a connection that sends no header in time, or garbage', async () => {
    const reasons: string[] = [];
    const srv = await serve((s) => readProxyHeader(s, 100, () => assert.fail('accepted'), (r) => reasons.push(r)));
    const closed = (data?: string): Promise<void> =>
      new Promise((resolve) => {
        const c = connect(srv.port, '127.0.0.1', () => {
          if (data !== undefined) c.write(data);
        });
        c.on('close', () => resolve());
        c.on('error', () => {});
      });
    await closed();
    await closed('GET / HTTP/1.1\r\n\r\n');
    await srv.close();
    assert.deepEqual(reasons, ['PROXY header timeout', 'not a PROXY protocol header']);
  });
});
