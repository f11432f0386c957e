import { createPortico, type Portico } from '../app/app.js';
import type { Logger } from '../observability/logger.js';

/** A logger that keeps every line but debug, for tests that read what was logged. */
export function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const put = (m: string): void => void lines.push(m);
  return { log: { error: put, warn: put, info: put, debug() {} }, lines };
}

/** A Portico with one http listener in front of pool `web`, whose servers come from `discovery`. */
export function discoveryPortico(discovery: unknown, log: Logger, opts: { health?: unknown; admin?: boolean } = {}): Portico {
  return createPortico(
    {
      admin: opts.admin === false ? { enabled: false } : { enabled: true, listen: '127.0.0.1:0' },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', health: opts.health ?? { type: 'none' }, discovery }],
    },
    { logger: log },
  );
}

/** The names of pool `web`'s servers that are in it and ready, sorted. */
export function readyNames(p: Portico): string[] {
  return [...p.pools.get('web')!].filter((rt) => !rt.removing && rt.admin === 'ready').map((rt) => rt.server.name).sort();
}

/** Who answers `n` requests in a row ("STATUS BODY" each). */
export async function answers(port: number, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    seen.add(`${res.status} ${await res.text()}`);
  }
  return seen;
}
