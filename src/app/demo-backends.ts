import { createServer, type Server } from 'node:http';

/** A small web server that answers with its own name: the demo farm's servers. */
export interface DemoBackend {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startDemoBackend(name: string, host: string, port: number): Promise<DemoBackend> {
  let count = 0;
  const server: Server = createServer((req, res) => {
    count++;
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    const body =
      `hello from ${name}\n` +
      `request #${count} on this server: ${req.method} ${req.url}\n` +
      `x-forwarded-for: ${req.headers['x-forwarded-for'] ?? ''}\n`;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-demo-server': name });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  return {
    name,
    port: a !== null && typeof a === 'object' ? a.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
