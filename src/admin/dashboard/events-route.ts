import type { AdminHandler } from '../router.js';
import type { EventHub, LiveEvent } from '../../observability/events.js';

export interface EventsRouteOptions {
  /** What the first event (`hello`) says about this node. */
  readonly info: () => Record<string, unknown>;
  /** A subscriber whose unsent output passes this many bytes is disconnected (it reconnects and starts afresh). */
  readonly maxBufferedBytes?: number;
  /** Interval of the keep-alive comment (default 15 s). */
  readonly heartbeatMs?: number;
  /** How many past `stats` frames the `hello` event carries (default 120). */
  readonly statsHistory?: number;
}

/**
 * `GET /api/v1/events`: server-sent events. The stream opens with `hello` (this node, the
 * recent `stats` frames and the recent state changes and health results), then carries
 * every event as it is published: `stats` once a second, `server` on a state change,
 * `health` for each probe result. `?types=a,b` keeps only those types. A client that does
 * not keep up is disconnected rather than buffered without bound.
 */
export function eventsRoute(hub: EventHub, options: EventsRouteOptions): AdminHandler {
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const statsHistory = options.statsHistory ?? 120;
  return (req, res, ctx) => {
    const typesParam = ctx.url.searchParams.get('types');
    const types = typesParam === null || typesParam === '' ? undefined : new Set(typesParam.split(',').map((t) => t.trim()));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
    });
    if (req.method === 'HEAD') {
      res.end();
      return undefined;
    }
    res.socket?.setNoDelay(true);
    res.write('retry: 2000\n\n');

    const stats = hub.history(['stats']).slice(-statsHistory);
    const hello = {
      ...options.info(),
      // Histograms only in the last frame: the older ones are for the charts over time.
      stats: stats.map((e, i) => (i === stats.length - 1 ? e.data : withoutHistograms(e.data))),
      events: hub.history(['server', 'health']).map((e) => ({ id: e.id, type: e.type, time: e.time, ...(e.data as object) })),
    };
    res.write(`event: hello\ndata: ${JSON.stringify(hello)}\n\n`);

    let closed = false;
    const send = (ev: LiveEvent): void => {
      if (closed || (types !== undefined && !types.has(ev.type))) return;
      if (res.writableLength > maxBuffered) {
        end();
        return;
      }
      res.write(`id: ${ev.id}\nevent: ${ev.type}\ndata: ${JSON.stringify({ time: ev.time, ...(ev.data as object) })}\n\n`);
    };
    const unsubscribe = hub.subscribe(send);
    const heartbeat = setInterval(() => {
      if (!closed) res.write(': keep-alive\n\n');
    }, heartbeatMs);
    heartbeat.unref();
    const end = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(heartbeat);
      res.end();
    };
    ctx.signal.addEventListener('abort', end, { once: true });
    res.once('close', end);
    return undefined;
  };
}

/** A stats frame without the servers' `hist` arrays (anything else is passed through). */
function withoutHistograms(frame: unknown): unknown {
  const f = frame as { pools?: unknown };
  if (!Array.isArray(f.pools)) return frame;
  return {
    ...(frame as object),
    pools: (f.pools as { servers?: unknown }[]).map((p) =>
      Array.isArray(p.servers) ? { ...p, servers: (p.servers as Record<string, unknown>[]).map(({ hist: _h, ...s }) => s) } : p,
    ),
  };
}
