import type { ExchangeRecord } from './records.js';

/** A finished-request record for tests of the sinks (the data path hands its session instead). */
export function exchange(over: Partial<Omit<ExchangeRecord, 'requestId' | 'header'>> & { headers?: Record<string, string>; id?: string } = {}): ExchangeRecord {
  const headers = over.headers ?? {};
  return {
    listener: 'web',
    method: 'GET',
    target: '/',
    host: 'example.test',
    clientAddress: '127.0.0.1',
    route: 'web#0',
    pool: 'web',
    server: 'a',
    status: 200,
    bytesIn: 100,
    bytesOut: 200,
    startedAt: 0,
    queueMs: 0,
    connectMs: 0.1,
    firstByteMs: 1,
    totalMs: 2,
    tries: 1,
    error: '',
    httpVersion: '1.1',
    cacheStatus: '',
    ...over,
    requestId: () => over.id ?? 'rid-1',
    header: (name: string) => headers[name] ?? '',
  };
}
