// A fixed number of head parses, for instruction counts under valgrind (stable on a busy machine):
//   valgrind --tool=callgrind --smc-check=all --callgrind-out-file=/dev/null node bench/parse-count.mjs request 200000
// Run it twice with different counts; the difference in instructions over the difference in count is
// the cost of one parse, without start-up and compilation. Run after `npx tsc -p .`.
import { parseRequestHead } from '../dist/proxy/http/parse-request.js';
import { parseResponseHead } from '../dist/proxy/http/parse-response.js';
import { request, response, limits } from './parse-heads.mjs';

const which = process.argv[2] ?? 'request';
const n = Number(process.argv[3] ?? 100_000);
if (which !== 'request' && which !== 'response') throw new Error('first argument: request or response');
if (!Number.isInteger(n) || n < 0 || n > 100_000_000) throw new Error('second argument: a count of parses');
let sink = 0;
if (which === 'request') for (let i = 0; i < n; i++) sink += parseRequestHead(request, limits).headEnd;
else for (let i = 0; i < n; i++) sink += parseResponseHead(response, limits).headEnd;
if (n > 0 && sink === 0) throw new Error('nothing parsed');
