// The typical request and response heads the parse benchmarks use.
export const limits = { maxHeaderBytes: 16384, maxHeaders: 100, maxUriBytes: 8192 };

export const request = Buffer.from(
  'GET /products/42?ref=home HTTP/1.1\r\n' +
    'Host: shop.example.com\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n' +
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n' +
    'Accept-Language: en-US,en;q=0.5\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Connection: keep-alive\r\n' +
    'Cookie: sid=4f2a9c\r\n' +
    '\r\n',
  'latin1',
);

export const response = Buffer.from(
  'HTTP/1.1 200 OK\r\n' +
    'Date: Mon, 02 Jun 2025 10:00:00 GMT\r\n' +
    'Content-Type: text/html; charset=utf-8\r\n' +
    'Content-Length: 5120\r\n' +
    'Cache-Control: max-age=60\r\n' +
    'Connection: keep-alive\r\n' +
    '\r\n',
  'latin1',
);
