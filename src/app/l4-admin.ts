import { AdminError } from '../admin/admin-error.js';
import type { AdminHandler, AdminMethod } from '../admin/router.js';
import { TcpListener } from '../proxy/tcp/tcp-listener.js';
import type { ListenerService } from './service.js';

interface RouteTable {
  route(method: AdminMethod, pattern: string, handler: AdminHandler): void;
}

/**
 * `GET /api/v1/listeners/{listener}/bindings`: the binding table of a tcp listener, one row per
 * live client connection (client address and port, pool, server, bytes each way, age in ms).
 */
export function mountTcpBindings(table: RouteTable, listeners: () => readonly ListenerService[]): void {
  table.route('GET', '/api/v1/listeners/{listener}/bindings', (_req, _res, ctx) => {
    const name = ctx.params.listener;
    const l = listeners().find((x) => x.name === name);
    if (!(l instanceof TcpListener)) throw new AdminError(404, 'LB_ADMIN_NOT_FOUND', `no tcp listener named ${JSON.stringify(name)}`);
    const bindings = l.bindings();
    return { listener: l.name, connections: bindings.length, bindings };
  });
}
