import { request, type IncomingMessage } from 'node:http';

export interface SseEvent {
  readonly event: string;
  readonly id: string;
  readonly data: string;
}

export interface SseStream {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  /** Every event received so far. */
  readonly events: SseEvent[];
  /** The next event of `type` not returned before (waits up to `ms`). */
  next(type: string, ms?: number): Promise<SseEvent>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

/** Open a server-sent events stream and parse it as it arrives. */
export function openSse(port: number, path: string): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      const events: SseEvent[] = [];
      const taken = new Set<SseEvent>();
      let waiters: (() => void)[] = [];
      let buf = '';
      let onEnd!: () => void;
      const ended = new Promise<void>((r) => (onEnd = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let at: number;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          let event = 'message';
          let id = '';
          const data: string[] = [];
          let any = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':') || line === '') continue;
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'event') event = value;
            else if (field === 'id') id = value;
            else if (field === 'data') {
              data.push(value);
              any = true;
            }
          }
          if (any) events.push({ event, id, data: data.join('\n') });
        }
        for (const w of waiters.splice(0)) w();
      });
      res.on('end', onEnd);
      res.on('close', onEnd);
      res.on('error', onEnd);
      const find = (type: string): SseEvent | undefined => events.find((e) => e.event === type && !taken.has(e));
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        ended,
        async next(type, ms = 5000) {
          const until = Date.now() + ms;
          for (;;) {
            const e = find(type);
            if (e !== undefined) {
              taken.add(e);
              return e;
            }
            const left = until - Date.now();
            if (left <= 0) throw new Error(`no '${type}' event within ${ms} ms (got: ${events.map((x) => x.event).join(', ')})`);
            await new Promise<void>((r) => {
              const t = setTimeout(r, left);
              waiters.push(() => {
                clearTimeout(t);
                r();
              });
            });
          }
        },
        close: () => {
          waiters = [];
          req.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}
