import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { createPortico, type Portico } from '../../app/app.js';
import { SeededRng } from '../../core/rng.js';
import fc from 'fast-check';
import { fuzzParams, fuzzTimeout } from '../../test-helpers/fuzz.js';
import { request as grammarRequest } from '../../test-helpers/http-grammar.js';
import { rawRequest } from '../../test-helpers/origins.js';

/**
 * Mutation fuzzing of the HTTP data path: valid requests with bytes flipped, inserted,
 * deleted or lines duplicated, sent through Portico to a node:http server (llhttp, strict
 * mode) as an independent judge. Whatever Portico forwards must be a request that the
 * judge accepts without a parse error, and Portico must keep serving. Seeded and bounded.
 */
const SEED = Number(process.env.PORTICO_FUZZ_SEED ?? 20261123);
const ROUNDS = Number(process.env.PORTICO_FUZZ_ROUNDS ?? 400);

const CORPUS = [
  'GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: fuzz\r\nAccept: */*\r\nConnection: close\r\n\r\n',
  'POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world',
  'POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
  'GET / HTTP/1.0\r\nHost: example.com\r\n\r\n',
  'HEAD /h HTTP/1.1\r\nHost: example.com\r\nCookie: a=b; c=d\r\nConnection: close\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: example.com\r\n\r\nGET /second HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n',
];

const INTERESTING = ['\r', '\n', '\r\n', ' ', '\t', ':', '\0', ',', ';', '0', 'chunked', 'Content-Length: 5', 'Transfer-Encoding: chunked', '\x7f', '\xff'];

function mutate(rng: SeededRng, input: string): string {
  let s = input;
  const n = 1 + rng.nextInt(3);
  for (let k = 0; k < n; k++) {
    const at = rng.nextInt(s.length + 1);
    switch (rng.nextInt(6)) {
      case 0: // flip one byte
        s = s.slice(0, at) + String.fromCharCode(rng.nextInt(256)) + s.slice(at + 1);
        break;
      case 1: // insert something interesting
        s = s.slice(0, at) + INTERESTING[rng.nextInt(INTERESTING.length)]! + s.slice(at);
        break;
      case 2: // delete a few bytes
        s = s.slice(0, at) + s.slice(at + 1 + rng.nextInt(4));
        break;
      case 3: {
        // duplicate a header line
        const lines = s.split('\r\n');
        const i = 1 + rng.nextInt(Math.max(1, lines.length - 2));
        lines.splice(i, 0, lines[i] ?? '');
        s = lines.join('\r\n');
        break;
      }
      case 4: // change a digit
        s = s.replace(/\d/, String(rng.nextInt(10)));
        break;
      default: // case-flip a letter
        s = s.slice(0, at) + (s[at] ?? '').toUpperCase() + s.slice(at + 1);
    }
  }
  return s;
}

describe('mutation fuzzing of the request path', () => {
  let judge: Server;
  let judgeErrors: string[] = [];
  let judged = 0;
  let p: Portico;
  let port = 0;

  before(async () => {
    judge = createServer({ insecureHTTPParser: false }, (req, res) => {
      judged++;
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    judge.on('clientError', (err: Error & { rawPacket?: Buffer }, sock: Socket) => {
      // A connection closed in the middle of a message (the client left and Portico cut the
      // request it was relaying) is an incomplete request, not a malformed one.
      const code = (err as NodeJS.ErrnoException).code;
      // llhttp knows a fixed list of methods; Portico forwards any RFC 9110 token (WebDAV,
      // custom methods), so an unknown but well-formed method is not an error of Portico's.
      const raw = err.rawPacket?.toString('latin1') ?? '';
      const tokenMethod = code === 'HPE_INVALID_METHOD' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \/\S* HTTP\/1\.[01]\r\n/.test(raw);
      if (code !== 'ECONNRESET' && code !== 'HPE_INVALID_EOF_STATE' && !tokenMethod) {
        judgeErrors.push(`${(err as NodeJS.ErrnoException).code}: ${err.message} in ${JSON.stringify(err.rawPacket?.toString('latin1') ?? '')}`);
      }
      sock.destroy();
    });
    await new Promise<void>((r) => judge.listen(0, '127.0.0.1', () => r()));
    const judgePort = (judge.address() as { port: number }).port;
    p = createPortico({
      log: { level: 'error' },
      admin: { enabled: false },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', limits: { headerTimeout: '300ms', bodyTimeout: '300ms', keepAliveTimeout: '100ms' }, routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', timeouts: { response: '1s' }, servers: [{ name: 'judge', address: `127.0.0.1:${judgePort}` }] }],
    });
    await p.start();
    port = p.address('web')!.port;
  });

  after(async () => {
    await p.stop(100);
    judge.closeAllConnections();
    await new Promise<void>((r) => judge.close(() => r()));
  });

  it(`${ROUNDS} mutated requests: nothing malformed is forwarded, every answer is HTTP, Portico keeps serving`, { timeout: 120_000 }, async () => {
    const rng = new SeededRng(SEED);
    judgeErrors = [];
    const statuses = new Map<string, number>();
    const BATCH = 10;
    for (let i = 0; i < ROUNDS; i += BATCH) {
      const reqs: string[] = [];
      for (let j = 0; j < BATCH && i + j < ROUNDS; j++) reqs.push(mutate(rng, CORPUS[rng.nextInt(CORPUS.length)]!));
      const outs = await Promise.all(reqs.map((r) => rawRequest(port, Buffer.from(r, 'latin1'), 1500)));
      outs.forEach((out, j) => {
        const m = /^HTTP\/1\.1 (\d{3}) /.exec(out);
        const key = m === null ? (out === '' ? 'closed' : 'other') : m[1]!;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        assert.ok(m !== null || out === '', `round ${i + j}: not an HTTP answer: ${JSON.stringify(out.slice(0, 60))} for ${JSON.stringify(reqs[j])}`);
      });
      assert.deepEqual(judgeErrors, [], `rounds ${i}..${i + BATCH - 1}: forwarded something the judge refused; inputs: ${JSON.stringify(reqs)}`);
    }
    const ok = await rawRequest(port, CORPUS[0]!);
    assert.match(ok, /^HTTP\/1\.1 200 /);
    assert.ok(judged > 0, 'some mutated requests stay valid and reach the judge');
    assert.ok((statuses.get('400') ?? 0) > 0, 'some are refused');
  });
  it('grammar-generated requests (RFC 9112 edge cases): nothing malformed is forwarded, every answer is HTTP, Portico keeps serving', { timeout: fuzzTimeout(180_000) }, async () => {
    judgeErrors = [];
    const before = judged;
    await fc.assert(
      fc.asyncProperty(grammarRequest, async (req) => {
        const out = await rawRequest(port, Buffer.from(req.text, 'latin1'), 1500);
        assert.ok(out === '' || /^HTTP\/1\.1 \d{3} /.test(out), `not an HTTP answer: ${JSON.stringify(out.slice(0, 60))}`);
        assert.deepEqual(judgeErrors, [], `forwarded something the judge refused: ${JSON.stringify(req.text)}`);
      }),
      fuzzParams(150),
    );
    assert.match(await rawRequest(port, CORPUS[0]!), /^HTTP\/1\.1 200 /);
    assert.ok(judged > before, 'some generated requests are valid and reach the judge');
  });
});
