import { strict as assert } from 'node:assert';
import { after, before, describe, it, test } from 'node:test';
import type { Portico } from '../../app/app.js';
import { rawRequest, startRawServer, type RawServer } from '../../test-helpers/origins.js';
import { startPortico, webConfig } from '../../test-helpers/portico.js';
import { startRecordingOrigin, type RecordingOrigin } from '../../test-helpers/recording-origin.js';

/**
 * Malformed and ambiguous requests sent on raw sockets. Each must get its 4xx (or 5xx for
 * unsupported features), the connection must close, and no byte may reach the server.
 * The server here is a raw TCP listener that records everything it receives.
 */

const H = 'Host: example.com\r\n';

const CASES: [name: string, request: string | string[], status: number][] = [
  // request line
  ['garbage request line', 'HELLO\r\n\r\n', 400],
  ['HTTP/0.9 request', 'GET /\r\n\r\n', 400],
  ['lowercase version', `GET / http/1.1\r\n${H}\r\n`, 400],
  ['version 1.10', `GET / HTTP/1.10\r\n${H}\r\n`, 400],
  ['version 2.0', `GET / HTTP/2.0\r\n${H}\r\n`, 505],
  ['version 3.1', `GET / HTTP/3.1\r\n${H}\r\n`, 505],
  ['trailing junk after version', `GET / HTTP/1.1 x\r\n${H}\r\n`, 400],
  ['double space in request line', `GET  / HTTP/1.1\r\n${H}\r\n`, 400],
  ['space in target', `GET /a b HTTP/1.1\r\n${H}\r\n`, 400],
  ['control char in target', `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, 400],
  ['non-ASCII in target', `GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, 400],
  ['bad method char', `GE(T / HTTP/1.1\r\n${H}\r\n`, 400],
  ['URI too long', `GET /${'a'.repeat(9000)} HTTP/1.1\r\n${H}\r\n`, 414],
  // line endings and folding
  ['bare LF line endings', 'GET / HTTP/1.1\nHost: example.com\n\n', 400],
  ['bare LF after a header', `GET / HTTP/1.1\r\nHost: example.com\nX: y\r\n\r\n`, 400],
  ['CR without LF', `GET / HTTP/1.1\r\nHost: example.com\rX: y\r\n\r\n`, 400],
  ['obs-fold continuation', `GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, 400],
  ['obs-fold with tab', `GET / HTTP/1.1\r\n${H}X-A: one\r\n\ttwo\r\n\r\n`, 400],
  // header syntax
  ['space before colon', `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`, 400],
  ['empty header name', `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`, 400],
  ['header without colon', `GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, 400],
  ['NUL in header value', `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 400],
  ['control char in header value', `GET / HTTP/1.1\r\n${H}X-A: a\x07b\r\n\r\n`, 400],
  ['invalid char in header name', `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, 400],
  // Host
  ['missing Host on HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['two Host headers', `GET / HTTP/1.1\r\n${H}Host: evil.com\r\n\r\n`, 400],
  ['Host with a space', 'GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n', 400],
  // Content-Length / Transfer-Encoding smuggling
  ['CL then TE', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE then CL', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, 400],
  ['two equal Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, 400],
  ['two different Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400],
  ['Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello`, 400],
  ['Content-Length +5', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400],
  ['Content-Length -1', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400],
  ['Content-Length hex', `POST / HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, 400],
  ['Content-Length empty', `POST / HTTP/1.1\r\n${H}Content-Length: \r\n\r\n`, 400],
  ['Content-Length overflow', `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999\r\n\r\n`, 400],
  ['TE chunked not last', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE with tab separator', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip,\tchunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE with empty element', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked with parameter', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n`, 400],
  ['TE identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 400],
  ['TE on HTTP/1.0', `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['two TE headers ending in gzip', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n`, 400],
  // chunked bodies (the head is valid, the body is not: the request is cut before the server sees the bad bytes)
  // limits
  ['too many headers', `GET / HTTP/1.1\r\n${H}${'X-A: b\r\n'.repeat(120)}\r\n`, 431],
  ['header section too large', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20000)}\r\n\r\n`, 431],
  ['body larger than maxBodyBytes', `POST / HTTP/1.1\r\n${H}Content-Length: 2000000\r\n\r\n`, 413],
  ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
  // Connection nominating a field that frames or routes the request (issue 16, defects 1 and 3)
  ['Connection: Content-Length smuggling', `POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 36\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['Connection: Host', `GET / HTTP/1.1\r\n${H}Connection: Host\r\n\r\n`, 400],
  ...['content-length', 'CONTENT-LENGTH', 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-forwarded-client-cert', 'x-client-verify'].map(
    (f): [string, string, number] => [`Connection: keep-alive, ${f}`, `GET / HTTP/1.1\r\n${H}Connection: keep-alive, ${f}\r\n\r\n`, 400],
  ),
  ['second Connection header nominating Content-Length', `POST / HTTP/1.1\r\n${H}Connection: keep-alive\r\nConnection: content-length\r\nContent-Length: 1\r\n\r\nx`, 400],
  ['Connection with a non-token option', `GET / HTTP/1.1\r\n${H}Connection: close;x\r\n\r\n`, 400],
  ['Connection options separated by space', `GET / HTTP/1.1\r\n${H}Connection: close keep-alive\r\n\r\n`, 400],
  // obfuscated framing fields (0.CL / CL.0: a field one side sees and the other does not)
  ['Content-Length with vertical tab', `POST / HTTP/1.1\r\n${H}Content-Length:\x0b5\r\n\r\nhello`, 400],
  ['Content-Length with form feed', `POST / HTTP/1.1\r\n${H}Content-Length: 5\x0c\r\n\r\nhello`, 400],
  ['Content-Length split by a space', `POST / HTTP/1.1\r\n${H}Content-Length: 5 5\r\n\r\nhello`, 400],
  ['Content-Length with a parameter', `POST / HTTP/1.1\r\n${H}Content-Length: 5;x=1\r\n\r\nhello`, 400],
  ['Content-Length in exponent form', `POST / HTTP/1.1\r\n${H}Content-Length: 5e0\r\n\r\nhello`, 400],
  ['Content-Length with a decimal point', `POST / HTTP/1.1\r\n${H}Content-Length: 5.0\r\n\r\nhello`, 400],
  ['Content-Length with a non-ASCII digit', `POST / HTTP/1.1\r\n${H}Content-Length: \xd9\xa5\r\n\r\nhello`, 400],
  ['Content-Length folded onto the next line', `POST / HTTP/1.1\r\n${H}Content-Length:\r\n 5\r\n\r\nhello`, 400],
  ['Content-Length indented (obs-fold of the previous field)', `POST / HTTP/1.1\r\n${H} Content-Length: 5\r\n\r\nhello`, 400],
  ['Content-Length with NUL', `POST / HTTP/1.1\r\n${H}Content-Length: 5\x00\r\n\r\nhello`, 400],
  ['Content-Length with tab before colon', `POST / HTTP/1.1\r\n${H}Content-Length\t: 5\r\n\r\nhello`, 400],
  ['Content-Length: 0 and Content-Length: 5', `POST / HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello`, 400],
  ['Transfer-Encoding with space before colon', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding: xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding quoted', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding with vertical tab', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding folded', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding: chunked, identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding: gzip only', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, 400],
  ['Transfer-Encoding unknown coding before chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n`, 501],
  ['Transfer-Encoding: chunked with Content-Length: 0', `POST / HTTP/1.1\r\n${H}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  // names that CGI and WSGI servers read as framing or forwarding fields ('_' taken for '-')
  ['Transfer_Encoding beside Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\nhello`, 400],
  ['Content_Length on a GET', `GET / HTTP/1.1\r\n${H}Content_Length: 34\r\n\r\n`, 400],
  ['X_Forwarded_For spoofing', `GET / HTTP/1.1\r\n${H}X_Forwarded_For: 10.6.6.6\r\n\r\n`, 400],
  ['X-Forwarded_Proto spoofing', `GET / HTTP/1.1\r\n${H}X-Forwarded_Proto: https\r\n\r\n`, 400],
  ['X_Client_Verify spoofing', `GET / HTTP/1.1\r\n${H}X_Client_Verify: SUCCESS\r\n\r\n`, 400],
  ['Transfer-Encoding on an HTTP/1.0 request with Content-Length', `POST / HTTP/1.0\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello`, 400],
  // request line
  ['tab between method and target', `GET\t/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['space before the method', ` GET / HTTP/1.1\r\n${H}\r\n`, 400],
  ['space after the version', `GET / HTTP/1.1 \r\n${H}\r\n`, 400],
  ['lowercase method', `get / HTTP/1.1\r\n${H}\r\n`, 400],
  ['mixed-case POST', `Post / HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, 400],
  ['fragment in target', `GET /a#b HTTP/1.1\r\n${H}\r\n`, 400],
  ['NUL in method', `GE\x00T / HTTP/1.1\r\n${H}\r\n`, 400],
  ['CR inside the request line', `GET /a\rb HTTP/1.1\r\n${H}\r\n`, 400],
  ['LF inside the target', `GET /a\nHost: evil HTTP/1.1\r\n${H}\r\n`, 400],
  ['missing target', `GET HTTP/1.1\r\n${H}\r\n`, 400],
  ['version HTTP/01.1', `GET / HTTP/01.1\r\n${H}\r\n`, 400],
  ['version HTTP/1.1.1', `GET / HTTP/1.1.1\r\n${H}\r\n`, 400],
  ['version HTTPS/1.1', `GET / HTTPS/1.1\r\n${H}\r\n`, 400],
  ['asterisk-form with GET', `GET * HTTP/1.1\r\n${H}\r\n`, 400],
  ['authority-form with GET', `GET example.com:80 HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form with ftp scheme', `GET ftp://example.com/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form without authority', `GET http:///x HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form with userinfo', `GET http://user@example.com/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form with one slash', `GET http:/example.com/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['backslash path traversal encoded twice', `GET /a/%252e%252e/b HTTP/1.1\r\n${H}\r\n`, 400],
  // header fields
  ['NUL in a header name', `GET / HTTP/1.1\r\n${H}X-\x00A: b\r\n\r\n`, 400],
  ['DEL in a header value', `GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, 400],
  ['space inside a header name', `GET / HTTP/1.1\r\n${H}X A: b\r\n\r\n`, 400],
  ['non-ASCII header name', `GET / HTTP/1.1\r\n${H}X-\xe9: b\r\n\r\n`, 400],
  ['line of spaces inside the head', `GET / HTTP/1.1\r\n${H}   \r\nX-A: b\r\n\r\n`, 400],
  ['header line ending in bare CR', `GET / HTTP/1.1\r\n${H}X-A: b\r\r\n\r\n`, 400],
  ['head ending in LF CR LF', `GET / HTTP/1.1\r\n${H}\n\r\n`, 400],
  ['colon-only header line', `GET / HTTP/1.1\r\n${H}:\r\n\r\n`, 400],
  ['pseudo-header in HTTP/1.1', `GET / HTTP/1.1\r\n${H}:authority: evil\r\n\r\n`, 400],
  // Host
  ['Host with a path', 'GET / HTTP/1.1\r\nHost: example.com/evil\r\n\r\n', 400],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n', 400],
  ['Host with a comma list', 'GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n', 400],
  ['Host with a bad port', 'GET / HTTP/1.1\r\nHost: example.com:80x\r\n\r\n', 400],
  ['Host with an unclosed IPv6 literal', 'GET / HTTP/1.1\r\nHost: [::1\r\n\r\n', 400],
  ['Host folded', 'GET / HTTP/1.1\r\nHost:\r\n example.com\r\n\r\n', 400],
  ['Host twice with different case', 'GET / HTTP/1.1\r\nHost: a.example\r\nhOST: b.example\r\n\r\n', 400],
];

describe('hostile requests never reach a server', () => {
  let backend: RawServer;
  const received: Buffer[] = [];
  let p: Portico;
  let port = 0;

  before(async () => {
    backend = await startRawServer((s) => {
      s.on('data', (c) => {
        received.push(c);
        // answers GET heads only; a POST is left waiting for its body
        if (c.toString('latin1').startsWith('GET ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    ({ p, port } = await startPortico(
      webConfig([{ name: 'web', servers: [{ name: 'raw', address: `127.0.0.1:${backend.port}` }] }], { limits: { maxBodyBytes: 1_000_000 } }),
    ));
  });

  after(async () => {
    await p.stop(100);
    await backend.close();
  });

  it('the suite has at least 40 cases', () => {
    assert.ok(CASES.length >= 100, `${CASES.length} cases`);
  });

  it('a valid request does reach the server (control)', async () => {
    const out = await rawRequest(port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 200/);
    assert.equal(received.length, 1);
    received.length = 0;
  });

  for (const [name, request, status] of CASES) {
    it(`${name} → ${status}`, async () => {
      received.length = 0;
      const out = await rawRequest(port, request, 3000);
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(out);
      assert.ok(m !== null, `no status line in ${JSON.stringify(out.slice(0, 80))}`);
      assert.equal(Number(m[1]), status);
      assert.match(out, /\r\nConnection: close\r\n/i);
      assert.equal(received.length, 0, `server received: ${Buffer.concat(received).toString('latin1').slice(0, 100)}`);
    });
  }

  it('a bad chunk size in a body is cut: the client gets 400 and the connection closes', async () => {
    received.length = 0;
    const out = await rawRequest(port, [
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`,
      '0x5\r\nhello\r\n0\r\n\r\n',
    ]);
    // The head was valid and may have been forwarded; the invalid chunk never is.
    const seen = Buffer.concat(received).toString('latin1');
    assert.ok(!seen.includes('0x5'), 'bad chunk forwarded');
    assert.match(out, /^HTTP\/1\.1 400 /);
  });

  it('a chunk size that overflows is cut', async () => {
    received.length = 0;
    const out = await rawRequest(port, [
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`,
      'fffffffffffffffffff\r\nhello\r\n0\r\n\r\n',
    ]);
    const seen = Buffer.concat(received).toString('latin1');
    assert.ok(!seen.includes('fffffffffffffffffff'), 'bad chunk forwarded');
    assert.match(out, /^HTTP\/1\.1 400 /);
  });

  it('smuggling via a pipelined second request after a bad one is never forwarded', async () => {
    received.length = 0;
    const out = await rawRequest(
      port,
      `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n${H}\r\n`,
    );
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.equal((out.match(/HTTP\/1\.1/g) ?? []).length, 1);
    assert.equal(received.length, 0);
  });
});

/**
 * Chunked bodies whose head is valid: the head may reach the server, the malformed part never does,
 * and the client gets 400 on a connection that closes. Each case is [name, valid prefix, malformed rest].
 */
const BODY_CASES: [name: string, good: string, bad: string][] = [
  ['bare LF after the chunk size', '', '5\nhello\r\n0\r\n\r\n'],
  ['bare LF after chunk data', '5\r\nhello', '\n0\r\n\r\n'],
  ['CR without LF after the chunk size', '', '5\rhello\r\n0\r\n\r\n'],
  ['chunk data not followed by CRLF', '5\r\nhello', 'XX0\r\n\r\n'],
  ['chunk data longer than its size', '3\r\nhel', 'lo\r\n0\r\n\r\n'],
  ['bare LF in a chunk extension (TERM.EXT)', '', '5;a\nhello\r\n0\r\n\r\n'],
  ['bare CR in a chunk extension', '', '5;a\rb\r\nhello\r\n0\r\n\r\n'],
  ['LF inside a quoted chunk extension', '', '5;a="x\ny"\r\nhello\r\n0\r\n\r\n'],
  ['unterminated quoted chunk extension', '', '5;a="xy\r\nhello\r\n0\r\n\r\n'],
  ['chunk extension without a name', '', '5;=x\r\nhello\r\n0\r\n\r\n'],
  ['chunk extension with a space in its name', '', '5;a b=c\r\nhello\r\n0\r\n\r\n'],
  ['chunk extensions larger than the limit', '', `5${';a=b'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`],
  ['chunk size with 17 digits', '', '00000000000000005\r\nhello\r\n0\r\n\r\n'],
  ['chunk size above 2^53', '', 'fffffffffffffff\r\nhello\r\n0\r\n\r\n'],
  ['chunk size with a plus sign', '', '+5\r\nhello\r\n0\r\n\r\n'],
  ['chunk size with a minus sign', '', '-5\r\nhello\r\n0\r\n\r\n'],
  ['chunk size 0x5', '', '0x5\r\nhello\r\n0\r\n\r\n'],
  ['space before the chunk size', '', ' 5\r\nhello\r\n0\r\n\r\n'],
  ['tab before the chunk size', '', '\t5\r\nhello\r\n0\r\n\r\n'],
  ['space after the chunk size without extension', '', '5 \r\nhello\r\n0\r\n\r\n'],
  ['underscore in the chunk size', '', '5_0\r\nhello\r\n0\r\n\r\n'],
  ['non-hex chunk size', '', '5g\r\nhello\r\n0\r\n\r\n'],
  ['empty chunk size line', '', '\r\nhello\r\n0\r\n\r\n'],
  ['last chunk ended by bare LF', '5\r\nhello\r\n', '0\n\r\n'],
  ['final CRLF replaced by bare LF', '5\r\nhello\r\n0\r\n', '\n'],
  ['trailer line ending in bare LF', '5\r\nhello\r\n0\r\n', 'X-T: 1\n\r\n'],
  ['obs-fold in the trailer section', '5\r\nhello\r\n0\r\n', 'X-T: 1\r\n 2\r\n\r\n'],
  ['trailer without a colon', '5\r\nhello\r\n0\r\n', 'X-T\r\n\r\n'],
  ['trailer with a space before the colon', '5\r\nhello\r\n0\r\n', 'X-T : 1\r\n\r\n'],
  ['NUL in a trailer value', '5\r\nhello\r\n0\r\n', 'X-T: a\x00b\r\n\r\n'],
  ['trailer section larger than the limit', '5\r\nhello\r\n0\r\n', `X-T: ${'a'.repeat(17000)}\r\n\r\n`],
  ['a request smuggled after a bare-LF last chunk', '5\r\nhello\r\n', '0\n\nGET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n'],
];

/**
 * Requests Portico accepts, but must pass on framed and routed as it parsed them: the recording
 * server answers each and the test checks exactly what it received.
 * [name, request (ends with Connection: close), check on the raw bytes and the heads the server read]
 */
type Check = (raw: string, heads: readonly string[]) => void;
const once = (heads: readonly string[]): string => {
  assert.equal(heads.length, 1, `server read ${heads.length} requests: ${JSON.stringify(heads)}`);
  return heads[0]!;
};
const SMUGGLE = 'GET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n';
const FORWARD_CASES: [name: string, request: string, check: Check][] = [
  // absolute-form (issue 16, defect 4)
  ['absolute-form target sets Host', 'GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n', (_r, h) => {
    const head = once(h);
    assert.match(head, /^GET \/x HTTP\/1\.1\r\n/);
    assert.match(head, /\r\nHost: b\.example\r\n/);
    assert.ok(!head.includes('a.example'), head);
  }],
  ['absolute-form with port and query', 'GET http://b.example:8080?q=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n', (_r, h) => {
    const head = once(h);
    assert.match(head, /^GET \/\?q=1 HTTP\/1\.1\r\n/);
    assert.match(head, /\r\nHost: b\.example:8080\r\n/);
    assert.match(head, /\r\nX-Forwarded-Host: b\.example:8080\r\n/);
  }],
  ['absolute-form https scheme, uppercase', 'GET HTTPS://B.example/y HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n', (_r, h) => {
    assert.match(once(h), /\r\nHost: B\.example\r\n/);
  }],
  ['absolute-form on HTTP/1.0 without Host', 'GET http://b.example/z HTTP/1.0\r\n\r\n', (_r, h) => {
    assert.match(once(h), /\r\nHost: b\.example\r\n/);
  }],
  // trailers (issue 16, defect 5)
  ...['Content-Length: 50', 'Host: evil.example', 'Transfer-Encoding: chunked', 'Authorization: Basic eA==', 'Cookie: a=b', 'Content-Type: text/evil', 'Expect: 100-continue', 'Max-Forwards: 0', 'TE: trailers', 'Trailer: X-T', 'Connection: close', 'Range: bytes=0-1', 'Content-Encoding: gzip', 'X-Forwarded-For: 1.2.3.4'].map(
    (t): [string, string, Check] => [`forbidden trailer ${t.split(':')[0]} dropped`, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n${t}\r\nX-Ok: 1\r\n\r\n`, (raw, h) => {
      once(h);
      assert.ok(raw.endsWith('5\r\nhello\r\n0\r\nX-Ok: 1\r\n\r\n'), JSON.stringify(raw.slice(-80)));
      assert.ok(!raw.slice(raw.lastIndexOf('hello')).includes(t), `${t} reached the server`);
    }],
  ),
  ['allowed trailers kept as sent', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nServer-Timing: x;dur=1\r\n\r\n`, (raw) => {
    assert.ok(raw.endsWith('0\r\nX-Checksum: abc\r\nServer-Timing: x;dur=1\r\n\r\n'), raw.slice(-80));
  }],
  // h2c (issue 16, defect 2)
  ['Upgrade: h2c with HTTP2-Settings is stripped', `GET / HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`, (_r, h) => {
    const head = once(h);
    assert.ok(!/upgrade|http2-settings|h2c/i.test(head), head);
  }],
  ['Upgrade: h2c, websocket keeps websocket only', `GET / HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n`, (_r, h) => {
    const head = once(h);
    assert.match(head, /\r\nUpgrade: websocket\r\n/);
    assert.ok(!/h2c/i.test(head), head);
  }],
  ['Upgrade: TLS/1.2 (not configured) is stripped', `GET / HTTP/1.1\r\n${H}Connection: Upgrade, close\r\nUpgrade: TLS/1.2\r\n\r\n`, (_r, h) => {
    assert.ok(!/upgrade/i.test(once(h)));
  }],
  ['Upgrade without Connection: upgrade is stripped', `GET / HTTP/1.1\r\n${H}Upgrade: websocket\r\nConnection: close\r\n\r\n`, (_r, h) => {
    assert.ok(!/upgrade/i.test(once(h)));
  }],
  ['Upgrade on HTTP/1.0 is stripped', `GET / HTTP/1.0\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`, (_r, h) => {
    assert.ok(!/upgrade/i.test(once(h)));
  }],
  // Connection nominations that are allowed: the nominated field goes, framing stays
  ['Connection: X-Trace removes X-Trace', `GET / HTTP/1.1\r\n${H}Connection: X-Trace, close\r\nX-Trace: 1\r\n\r\n`, (_r, h) => {
    assert.ok(!/x-trace/i.test(once(h)));
  }],
  ['Connection: Transfer-Encoding keeps the chunked framing', `POST / HTTP/1.1\r\n${H}Connection: Transfer-Encoding, close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, (raw, h) => {
    assert.match(once(h), /\r\nTransfer-Encoding: chunked\r\n/);
    assert.ok(raw.endsWith('5\r\nhello\r\n0\r\n\r\n'));
  }],
  ['Connection: Keep-Alive, Proxy-Connection dropped', `GET / HTTP/1.1\r\n${H}Connection: Keep-Alive, close\r\nKeep-Alive: timeout=99\r\nProxy-Connection: keep-alive\r\n\r\n`, (_r, h) => {
    assert.ok(!/keep-alive|proxy-connection/i.test(once(h)));
  }],
  ['Connection: TE keeps TE: trailers only', `GET / HTTP/1.1\r\n${H}Connection: TE, close\r\nTE: gzip, trailers\r\n\r\n`, (_r, h) => {
    const head = once(h);
    assert.match(head, /\r\nTE: trailers\r\n/);
    assert.ok(!/gzip/.test(head));
  }],
  ['TE: gzip without trailers is dropped', `GET / HTTP/1.1\r\n${H}TE: gzip\r\nConnection: close\r\n\r\n`, (_r, h) => {
    assert.ok(!/\r\nTE:/i.test(once(h)));
  }],
  // 0.CL / CL.0 / Expect: the body is framed as Portico parsed it, whatever the method
  ['0.CL: GET with a body that looks like a request', `GET / HTTP/1.1\r\n${H}Content-Length: ${SMUGGLE.length}\r\nConnection: close\r\n\r\n${SMUGGLE}`, (raw, h) => {
    assert.match(once(h), new RegExp(`\r\nContent-Length: ${SMUGGLE.length}\r\n`));
    assert.ok(raw.endsWith('\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n'));
  }],
  ['CL.0: POST to a static path with a request in the body', `POST /static.css HTTP/1.1\r\n${H}Content-Length: ${SMUGGLE.length}\r\nConnection: close\r\n\r\n${SMUGGLE}`, (_r, h) => {
    assert.match(once(h), new RegExp(`\r\nContent-Length: ${SMUGGLE.length}\r\n`));
  }],
  ['HEAD with a Content-Length body', `HEAD / HTTP/1.1\r\n${H}Content-Length: 5\r\nConnection: close\r\n\r\nhello`, (raw, h) => {
    assert.match(once(h), /\r\nContent-Length: 5\r\n/);
    assert.ok(raw.endsWith('hello'));
  }],
  ['OPTIONS with a chunked body', `OPTIONS * HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, (_r, h) => {
    assert.match(once(h), /^OPTIONS \* HTTP\/1\.1\r\n[^]*\r\nTransfer-Encoding: chunked\r\n/);
  }],
  ['Expect: 100-continue with the body sent at once', `POST / HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`, (raw, h) => {
    assert.match(once(h), /\r\nContent-Length: 5\r\n/);
    assert.ok(raw.endsWith('hello'));
  }],
  ['obfuscated Expect with a request as body', `POST / HTTP/1.1\r\n${H}Expect: y 100-continue\r\nContent-Length: ${SMUGGLE.length}\r\nConnection: close\r\n\r\n${SMUGGLE}`, (_r, h) => {
    assert.match(once(h), new RegExp(`\r\nContent-Length: ${SMUGGLE.length}\r\n`));
  }],
  ['Expect on a GET without a body', `GET / HTTP/1.1\r\n${H}Expect: 100-continue\r\nConnection: close\r\n\r\n`, (_r, h) => {
    once(h);
  }],
  ['Content-Length with leading zeros', `POST / HTTP/1.1\r\n${H}Content-Length: 005\r\nConnection: close\r\n\r\nhello`, (raw, h) => {
    once(h);
    assert.ok(raw.endsWith('hello'));
  }],
  ['chunk size with leading zeros', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0005\r\nhello\r\n0000\r\n\r\n`, (raw, h) => {
    once(h);
    assert.ok(raw.endsWith('0005\r\nhello\r\n0000\r\n\r\n'));
  }],
  ['chunk extensions relayed with the body', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;a=b;c="d e"\r\nhello\r\n0;x\r\n\r\n`, (raw, h) => {
    once(h);
    assert.ok(raw.endsWith('5;a=b;c="d e"\r\nhello\r\n0;x\r\n\r\n'));
  }],
  // forwarding headers from an untrusted client are replaced
  ['client X-Forwarded-For replaced', `GET / HTTP/1.1\r\n${H}X-Forwarded-For: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\nX-Forwarded-Host: evil\r\nConnection: close\r\n\r\n`, (_r, h) => {
    const head = once(h);
    assert.ok(!head.includes('10.9.9.9') && !head.includes('evil'), head);
    assert.match(head, /\r\nX-Forwarded-For: 127\.0\.0\.1\r\n/);
  }],
  ['client certificate headers removed', `GET / HTTP/1.1\r\n${H}X-Forwarded-Client-Cert: Hash=evil\r\nX-Client-Verify: SUCCESS\r\nConnection: close\r\n\r\n`, (_r, h) => {
    assert.ok(!/client-cert|client-verify/i.test(once(h)));
  }],
  // pipelines: each request is routed and rebuilt on its own
  ['pipelined requests each get forwarding headers', `GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, (_r, h) => {
    assert.equal(h.length, 2);
    for (const head of h) assert.match(head, /\r\nX-Forwarded-For: /);
  }],
  ['pipelined request after Expect: 100-continue', `POST /1 HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, (_r, h) => {
    assert.equal(h.length, 2);
    assert.match(h[1]!, /^GET \/2 HTTP\/1\.1\r\n[^]*X-Forwarded-For: /);
  }],
  ['pipelined request after a 103 Early Hints answer', `GET /early HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, (_r, h) => {
    assert.equal(h.length, 2);
    assert.match(h[1]!, /^GET \/2 HTTP\/1\.1\r\n[^]*X-Forwarded-For: /);
  }],
  ['pipelined request after a 100 Continue the server sent unasked', `GET /continue HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, (_r, h) => {
    assert.equal(h.length, 2);
  }],
];

describe('hostile bodies and requests forwarded as parsed', () => {
  let origin: RecordingOrigin;
  let p: Portico;
  let port = 0;

  before(async () => {
    origin = await startRecordingOrigin((head) => {
      if (head.startsWith('GET /early ')) return 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
      if (head.startsWith('GET /continue ')) return 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
      return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    });
    ({ p, port } = await startPortico(webConfig([{ name: 'web', servers: [{ name: 'rec', address: `127.0.0.1:${origin.port}` }] }])));
  });

  after(async () => {
    await p.stop(100);
    await origin.close();
  });

  for (const [name, good, bad] of BODY_CASES) {
    test(`chunked body: ${name} → 400, never forwarded`, async () => {
      origin.reset();
      const out = await rawRequest(port, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${good}${bad}`, 5000);
      assert.match(out, /^HTTP\/1\.1 400 /);
      assert.match(out, /\r\nConnection: close\r\n/i);
      assert.equal((out.match(/HTTP\/1\.1 /g) ?? []).length, 1, out);
      const seen = origin.raw();
      assert.ok(!seen.includes(bad), `server received the malformed part: ${JSON.stringify(seen.slice(-120))}`);
      assert.ok(!seen.includes('SMUGGLED'));
      assert.ok(origin.heads.length <= 1);
    });
  }

  for (const [name, request, check] of FORWARD_CASES) {
    test(`forwarded as parsed: ${name}`, async () => {
      origin.reset();
      const out = await rawRequest(port, request, 5000);
      assert.match(out, /^HTTP\/1\.1 (1\d\d [^]*\r\n\r\nHTTP\/1\.1 )?200 /);
      check(origin.raw(), origin.heads);
    });
  }
});

/** Upgrades: only WebSocket is tunnelled, and only after the server's real 101. */
describe('upgrades answered with and without 101', () => {
  let origin: RecordingOrigin;
  let p: Portico;
  let port = 0;

  before(async () => {
    origin = await startRecordingOrigin((head) => (/\r\nx-answer: 101\r\n/i.test(head) ? 'upgrade' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    ({ p, port } = await startPortico(webConfig([{ name: 'web', servers: [{ name: 'rec', address: `127.0.0.1:${origin.port}` }] }])));
  });

  after(async () => {
    await p.stop(100);
    await origin.close();
  });

  const UPGRADE_CASES: [name: string, upgrade: string, answer101: boolean, tunnelled: boolean, status: number][] = [
    ['WebSocket answered 101 is tunnelled', 'websocket', true, true, 101],
    ['WebSocket answered 200 is not tunnelled', 'websocket', false, false, 200],
    ['h2c answered 101 is refused (502), nothing tunnelled', 'h2c', true, false, 502],
    ['h2c answered 200 stays HTTP/1.1', 'h2c', false, false, 200],
    ['TLS/1.2 answered 101 is refused (502)', 'TLS/1.2', true, false, 502],
    ['h2c, WebSocket answered 101 tunnels WebSocket', 'h2c, websocket', true, true, 101],
  ];

  for (const [name, upgrade, answer101, tunnelled, status] of UPGRADE_CASES) {
    test(`upgrade: ${name}`, async () => {
      origin.reset();
      const after = `GET /AFTER HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
      const out = await rawRequest(
        port,
        [`GET /ws HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: ${upgrade}\r\nHTTP2-Settings: AAMAAABk\r\nX-Answer: ${answer101 ? 101 : 200}\r\n\r\n`, after],
        3000,
      );
      assert.match(out, new RegExp(`^HTTP/1\\.1 ${status} `));
      const raw = origin.raw();
      assert.ok(!/http2-settings/i.test(origin.heads[0] ?? ''), origin.heads[0]);
      if (tunnelled) {
        // the bytes after the 101 are the tunnel's: they reach the server raw, as sent
        assert.ok(raw.endsWith(after), JSON.stringify(raw.slice(-100)));
      } else if (status === 502) {
        // nothing is tunnelled: a request sent after the refusal is parsed and rebuilt like any other
        const later = origin.heads.find((h) => h.startsWith('GET /AFTER '));
        if (later !== undefined) assert.match(later, /\r\nX-Forwarded-For: /);
        assert.equal(raw.split('/AFTER').length - 1, later === undefined ? 0 : 1);
      } else {
        // no tunnel: the next request is parsed, routed and rebuilt by Portico
        assert.equal(origin.heads.length, 2);
        assert.match(origin.heads[1]!, /^GET \/AFTER HTTP\/1\.1\r\n[^]*X-Forwarded-For: /);
      }
    });
  }
});
