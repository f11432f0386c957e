import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { fuzzParams, fuzzTimeout } from '../../test-helpers/fuzz.js';
import { request } from '../../test-helpers/http-grammar.js';
import { HttpJudge } from '../../test-helpers/http-judge.js';
import { DEFAULT_HEAD_LIMITS, parseRequestHead } from './parse-request.js';

/**
 * Differential fuzzing of the request-head parser against Node's strict parser (llhttp): on
 * grammar-generated requests at the edge of RFC 9112, whatever Portico accepts, Node must accept
 * too and read the same way (method, target, version, every field name and value in order).
 * Portico may refuse more than Node (it is the stricter of the two by design: bare LF, obs-fold,
 * Content-Length lists, unknown codings); it may never accept more, nor read it differently.
 */

/** Methods llhttp knows; Portico forwards any RFC 9110 token, so an unknown token is no disagreement. */
const LLHTTP_METHODS = new Set(
  'DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY'.split(' '),
);

describe('request-head parser: differential fuzzing against node:http', () => {
  let judge: HttpJudge;
  before(async () => {
    judge = await HttpJudge.start();
  });
  after(async () => {
    await judge.close();
  });

  it('never throws, and what it accepts Node accepts and reads the same', { timeout: fuzzTimeout() }, async () => {
    let accepted = 0;
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const buf = Buffer.from(req.text, 'latin1');
        const r = parseRequestHead(buf, DEFAULT_HEAD_LIMITS);
        // Splitting the bytes anywhere gives the same answer once all have arrived; before, a
        // prefix is incomplete (null) or already refused, never accepted as a different head.
        for (const cut of [1, buf.length >> 1, buf.length - 1]) {
          if (cut <= 0 || cut >= buf.length) continue;
          const early = parseRequestHead(buf.subarray(0, cut), DEFAULT_HEAD_LIMITS);
          if (early !== null && early.ok) assert.ok(r !== null && r.ok && early.headEnd === r.headEnd, `a prefix of ${cut} bytes parsed as a different head`);
        }
        if (r === null || !r.ok) return;
        accepted++;
        const v = await judge.judge(buf);
        if (v.head === undefined && v.code === 'HPE_INVALID_METHOD' && !LLHTTP_METHODS.has(r.method)) return;
        // RFC 9112 §2.3: HTTP/1.2 and up are read as 1.1 (and forwarded as 1.1); llhttp refuses them.
        if (v.head === undefined && v.code === 'HPE_INVALID_VERSION' && /^[\r\n]*\S+ \S+ HTTP\/1\.[2-9]\r?\n/.test(req.text)) return;
        // RFC 9110 §5.5: OWS (SP or HTAB) around a value is not part of it; llhttp refuses a
        // Content-Length followed by HTAB (not by SP). Portico reads 'n\t' as n and forwards 'n'.
        if (v.head === undefined && v.code === 'HPE_INVALID_CONTENT_LENGTH' && /\ncontent-length:[ \t]*\d+[ \t]*\t[ \t]*\r\n/i.test(req.head)) return;
        assert.ok(v.head !== undefined, `Portico accepts a head that Node refuses (${v.code}): ${JSON.stringify(req.head)}`);
        compared++;
        assert.equal(v.head.method, r.method, 'method');
        assert.equal(v.head.url, r.target, 'target');
        // RFC 9112 §2.3: a higher minor version (HTTP/1.2) is read as the highest one implemented, 1.1.
        const nodeMinor = Number(v.head.httpVersion.split('.')[1]);
        assert.equal(Math.min(nodeMinor, 1), r.minor, `version ${v.head.httpVersion}`);
        const names = v.head.rawHeaders.filter((_, i) => i % 2 === 0);
        const values = v.head.rawHeaders.filter((_, i) => i % 2 === 1);
        if (r.form === 'absolute') {
          // RFC 9112 §3.2.2: Portico sends on the Host the absolute-form target names.
          const at = names.findIndex((n) => n.toLowerCase() === 'host');
          if (at >= 0) values[at] = r.host!;
          else {
            names.push('Host');
            values.push(r.host!);
          }
        }
        assert.deepEqual(names, r.names, 'field names');
        assert.deepEqual(values, r.values, 'field values');
      }),
      fuzzParams(300),
    );
    process.stdout.write(`# parse-request fuzz: ${accepted} heads accepted by Portico, ${compared} compared with node:http\n`);
    assert.ok(accepted > 20, `the grammar yields accepted heads: ${accepted}`);
  });
});
