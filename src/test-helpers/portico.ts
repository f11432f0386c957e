import { createPortico, type Portico, type PorticoDeps } from '../app/app.js';

/**
 * The configuration of a Portico with one http listener `web` on 127.0.0.1:0 whose every request
 * goes to pool `web`, logging errors only, admin API off. `listener` adds to or replaces the
 * listener's keys, `top` the top level's (pools among them).
 */
export function webConfig(pools: readonly unknown[], listener: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: 'error' },
    admin: { enabled: false },
    listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }], ...listener }],
    pools,
    ...top,
  };
}

/** createPortico(config), started; `port` is the one listener `listener` bound. */
export function startPortico(config: unknown, listener = 'web', deps?: PorticoDeps): Promise<{ p: Portico; port: number }> {
  return started(createPortico(config, deps), listener);
}

/** `p` started; `port` is the one listener `listener` bound. */
export async function started(p: Portico, listener = 'web'): Promise<{ p: Portico; port: number }> {
  await p.start();
  return { p, port: p.address(listener)!.port };
}

/**
 * Portico started on `config` in front of `origin`: `close` stops both, and a start that fails
 * closes the origin.
 */
export async function startInFront(origin: { close(): Promise<void> }, config: unknown, listener = 'web'): Promise<{ p: Portico; port: number; close(): Promise<void> }> {
  try {
    const { p, port } = await startPortico(config, listener);
    return {
      p,
      port,
      close: async () => {
        await p.stop(0);
        await origin.close();
      },
    };
  } catch (err) {
    await origin.close();
    throw err;
  }
}
