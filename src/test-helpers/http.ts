import { request as httpRequest, type Agent, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

/** A whole HTTP response, and how long it took from the request to its last byte. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

export interface SendOptions {
  method?: string | undefined;
  headers?: OutgoingHttpHeaders | undefined;
  localAddress?: string | undefined;
  /** A keep-alive agent; without one each request has its own connection. */
  agent?: Agent | false | undefined;
}

/** One request to 127.0.0.1:port with node:http; resolves with the response read to its end. */
export function send(port: number, path = '/', o: SendOptions = {}): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers ?? {}, agent: o.agent ?? false, localAddress: o.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
