import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTrace, parseTraceLine } from './trace.js';

test('Common Log Format: path without query, host or scheme; bytes; "-" is 0; errors skipped', () => {
  assert.deepEqual(parseTraceLine('10.0.0.1 - - [10/Oct/1998:13:55:36 -0700] "GET /a/b.html HTTP/1.0" 200 2326'), { path: '/a/b.html', bytes: 2326 });
  assert.deepEqual(parseTraceLine('h - frank [10/Oct/1998:13:55:36 -0700] "GET /s?q=1#x HTTP/1.1" 200 10'), { path: '/s', bytes: 10 });
  assert.deepEqual(parseTraceLine('h - - [d] "GET http://www.rice.edu/x.gif HTTP/1.0" 200 99'), { path: '/x.gif', bytes: 99 });
  assert.deepEqual(parseTraceLine('h - - [d] "GET / HTTP/1.0" 304 -'), { path: '/', bytes: 0 });
  assert.deepEqual(parseTraceLine('h - - [d] "GET /old" 302 0'), { path: '/old', bytes: 0 }); // HTTP/0.9 request line
  // Combined Log Format: referer and user agent follow
  assert.deepEqual(parseTraceLine('h - - [d] "GET /c HTTP/1.1" 200 5 "http://ref/" "Mozilla/4.0 (compatible)"'), { path: '/c', bytes: 5 });
  assert.equal(parseTraceLine('h - - [d] "GET /missing HTTP/1.0" 404 200'), 'skip');
  assert.equal(parseTraceLine('h - - [d] "GET /boom HTTP/1.0" 500 0'), 'skip');
  assert.equal(parseTraceLine('h - - [d] "OPTIONS * HTTP/1.1" 200 0'), 'skip');
  assert.equal(parseTraceLine('h - - [d] "\\x16\\x03\\x01" 400 0'), 'skip');
  assert.equal(parseTraceLine('h - - [d] "GET /x HTTP/1.0" 200'), 'skip');
});

test('"path size" lines, blanks and comments', () => {
  assert.deepEqual(parseTraceLine('/index.html 8192'), { path: '/index.html', bytes: 8192 });
  assert.deepEqual(parseTraceLine('  /a\t12  '), { path: '/a', bytes: 12 });
  assert.equal(parseTraceLine(''), 'blank');
  assert.equal(parseTraceLine('# a comment'), 'blank');
  assert.equal(parseTraceLine('/a 12 extra'), 'skip');
  assert.equal(parseTraceLine('/a -3'), 'skip');
  assert.equal(parseTraceLine('/a 1.5'), 'skip');
});

test('a mixed trace: dense file ids in order of first sight, file size = largest response', () => {
  const t = parseTrace(
    [
      '/a 100',
      'h - - [d] "GET /b HTTP/1.0" 200 50',
      'garbage line here',
      'h - - [d] "GET /a HTTP/1.0" 304 -',
      '',
      '/a 300',
      'h - - [d] "GET /b?x HTTP/1.0" 200 40',
    ].join('\r\n'),
    'mixed.log',
  );
  assert.deepEqual(t.paths, ['/a', '/b']);
  assert.deepEqual([...t.files], [0, 1, 0, 0, 1]);
  assert.deepEqual([...t.bytes], [100, 50, 0, 300, 40]);
  assert.deepEqual([...t.fileSizes], [300, 50]);
  assert.equal(t.skipped, 1);
  assert.match(t.description, /^mixed\.log: 5 requests for 2 files \(350 B\), 1 lines skipped$/);
});

test('a large trace grows its arrays', () => {
  const lines: string[] = [];
  for (let i = 0; i < 5000; i++) lines.push(`/f${i % 1500} ${i % 700}`);
  const t = parseTrace(lines.join('\n'));
  assert.equal(t.files.length, 5000);
  assert.equal(t.paths.length, 1500);
  assert.equal(t.files[4999], 4999 % 1500);
  assert.equal(t.fileSizes[1], Math.max(...[1, 1501, 3001, 4501].map((i) => i % 700)));
});
