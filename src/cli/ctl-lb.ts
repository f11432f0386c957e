/**
 * The ELB steps from the shell (`portico ctl create-lb`, `register-instances`,
 * `configure-healthcheck`, `delete-lb`, `lbs`) and `portico ctl health POOL` for a pool's health
 * check: each one call of the admin API (src/admin/config-api.ts, PUT /api/v1/pools/{pool}/health).
 */

/** Options of these commands that take a value; `--listener` may be given more than once. */
export const LB_VALUE_FLAGS = [
  '--listener',
  '--server',
  '--zone',
  '--target',
  '--interval',
  '--healthy-threshold',
  '--unhealthy-threshold',
  '--type',
  '--path',
  '--port',
  '--rise',
  '--fall',
] as const;

export const LB_USAGE = `  create-lb NAME --listener PROTO:PORT:SERVERPORT [--listener ...] [--server ADDRESS ...] [--zone ZONE]
                                  create a load balancer (listeners, a pool NAME, the DNS name NAME.ZONE)
  register-instances NAME ADDRESS...
                                  add servers (HOST takes the load balancer's serverPort, HOST:PORT its own)
  deregister-instances NAME ADDRESS...
                                  take servers out
  configure-healthcheck NAME --target HTTP:PORT/PATH|TCP:PORT [--interval D] [--timeout D]
                        [--healthy-threshold N] [--unhealthy-threshold N]
                                  the load balancer's health check
  delete-lb NAME                  drain and remove the load balancer (listeners, pool, DNS name)
  lbs                             the load balancers made through the API: address, DNS name, servers
  health POOL [none|tcp|http] [--path P] [--port N] [--interval D] [--timeout D] [--rise N] [--fall N]
                                  a pool's health check and its servers' probes; with a type, replace it
`;

type Json = Record<string, any>;

export interface LbCall {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  render(body: Json): string;
}

export type Flags = ReadonlyMap<string, readonly string[]>;

const seg = encodeURIComponent;

function one(flags: Flags, name: string): string | undefined {
  const v = flags.get(name);
  return v === undefined ? undefined : v[v.length - 1];
}

function int(v: string | undefined, what: string, usage: (m: string) => Error): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw usage(`${what} takes a whole number, got ${v}`);
  return n;
}

function renderLb(b: Json): string {
  const lines = [`${b.name}: ${b.address ?? '(no address)'}${b.dnsName !== null && b.dnsName !== undefined ? `  ${b.dnsName}` : ''}`];
  for (const l of (b.listeners as Json[]) ?? []) lines.push(`  listener ${l.name}: ${l.protocol} ${l.listen ?? '(not running)'} -> servers' port ${l.serverPort}`);
  const servers = (b.servers as Json[]) ?? [];
  lines.push(`  servers: ${servers.length === 0 ? 'none' : servers.map((s) => s.address).join(', ')}`);
  if (b.health !== null && b.health !== undefined && b.health.type !== 'none') {
    const h = b.health;
    lines.push(`  health: ${h.type}${h.port !== undefined ? ` port ${h.port}` : ''}${h.path !== undefined ? ` ${h.path}` : ''} every ${h.interval} ms, timeout ${h.timeout} ms, rise ${h.rise}, fall ${h.fall}`);
  }
  if (b.applied === false) lines.push(`  NOT APPLIED: ${b.reason}`);
  return lines.join('\n') + '\n';
}

/** The call of one of these commands, or undefined when `cmd` is none of them. */
export function planLbCall(cmd: string, args: readonly string[], flags: Flags, usage: (m: string) => Error, timeout: string | undefined): LbCall | undefined {
  switch (cmd) {
    case 'create-lb': {
      if (args.length !== 1) throw usage('create-lb takes NAME and one --listener PROTO:PORT:SERVERPORT or more');
      const ls = flags.get('--listener') ?? [];
      if (ls.length === 0) throw usage('create-lb needs --listener PROTO:PORT:SERVERPORT (e.g. http:80:8080)');
      const listeners = ls.map((l) => {
        const m = /^([A-Za-z]+):(\d+):(\d+)$/.exec(l);
        if (m === null) throw usage(`--listener ${l}: expected PROTO:PORT:SERVERPORT, e.g. http:80:8080`);
        return { protocol: m[1]!.toLowerCase(), port: Number(m[2]), serverPort: Number(m[3]) };
      });
      const body: Json = { name: args[0], listeners };
      const servers = flags.get('--server');
      if (servers !== undefined) body.servers = [...servers];
      const zone = one(flags, '--zone');
      if (zone !== undefined) body.zone = zone;
      return { method: 'POST', path: '/api/v1/loadbalancers', body, render: renderLb };
    }
    case 'register-instances':
    case 'deregister-instances': {
      if (args.length < 2) throw usage(`${cmd} takes NAME ADDRESS...`);
      const [name, ...addresses] = args as [string, ...string[]];
      if (cmd === 'register-instances') return { method: 'POST', path: `/api/v1/loadbalancers/${seg(name)}/instances`, body: { instances: addresses }, render: renderLb };
      if (addresses.length !== 1) throw usage('deregister-instances takes NAME and one ADDRESS at a time');
      return { method: 'DELETE', path: `/api/v1/loadbalancers/${seg(name)}/instances/${seg(addresses[0]!)}`, render: renderLb };
    }
    case 'configure-healthcheck': {
      if (args.length !== 1) throw usage('configure-healthcheck takes NAME --target HTTP:PORT/PATH');
      const target = one(flags, '--target');
      if (target === undefined) throw usage('configure-healthcheck needs --target HTTP:PORT/PATH or TCP:PORT');
      const body: Json = { target };
      const interval = one(flags, '--interval');
      if (interval !== undefined) body.interval = interval;
      if (timeout !== undefined) body.timeout = timeout;
      const rise = int(one(flags, '--healthy-threshold'), '--healthy-threshold', usage);
      if (rise !== undefined) body.healthyThreshold = rise;
      const fall = int(one(flags, '--unhealthy-threshold'), '--unhealthy-threshold', usage);
      if (fall !== undefined) body.unhealthyThreshold = fall;
      return { method: 'PUT', path: `/api/v1/loadbalancers/${seg(args[0]!)}/health`, body, render: renderLb };
    }
    case 'delete-lb':
      if (args.length !== 1) throw usage('delete-lb takes NAME');
      return {
        method: 'DELETE',
        path: `/api/v1/loadbalancers/${seg(args[0]!)}`,
        render: (b) => `${b.name}: removed; listeners ${(b.listeners as string[]).join(', ')} stop accepting and drain\n`,
      };
    case 'lbs':
      if (args.length !== 0) throw usage('lbs takes no argument');
      return {
        method: 'GET',
        path: '/api/v1/loadbalancers',
        render: (b) => ((b.loadbalancers as Json[]).length === 0 ? 'no load balancer was made through the API\n' : (b.loadbalancers as Json[]).map(renderLb).join('')),
      };
    case 'health': {
      if (args.length !== 1 && args.length !== 2) throw usage('health takes POOL [none|tcp|http]');
      const pool = args[0]!;
      if (args.length === 1) {
        return {
          method: 'GET',
          path: `/api/v1/pools/${seg(pool)}`,
          render: (b) => {
            const h = b.health as Json | null;
            const lines = [`${b.name}: health ${h === null ? 'none' : JSON.stringify(h)}`];
            for (const s of b.servers as Json[]) {
              const p = s.probe as Json | undefined;
              lines.push(`  ${s.name} ${s.address}: ${s.health}${p !== undefined ? ` (passed ${p.passed}, failed ${p.failed}${p.last !== null ? `, last ${typeof p.last === 'string' ? p.last : JSON.stringify(p.last)}` : ''})` : ''}`);
            }
            return lines.join('\n') + '\n';
          },
        };
      }
      const type = args[1]!;
      if (!['none', 'tcp', 'http', 'icmp'].includes(type)) throw usage(`health type ${type}: none, tcp, http or icmp`);
      const body: Json = { type };
      const path = one(flags, '--path');
      if (path !== undefined) body.path = path;
      const port = int(one(flags, '--port'), '--port', usage);
      if (port !== undefined) body.port = port;
      const interval = one(flags, '--interval');
      if (interval !== undefined) body.interval = interval;
      if (timeout !== undefined) body.timeout = timeout;
      const rise = int(one(flags, '--rise'), '--rise', usage);
      if (rise !== undefined) body.rise = rise;
      const fall = int(one(flags, '--fall'), '--fall', usage);
      if (fall !== undefined) body.fall = fall;
      return { method: 'PUT', path: `/api/v1/pools/${seg(pool)}/health`, body, render: (b) => `${b.pool}: health ${JSON.stringify(b.health)}\n` };
    }
    default:
      return undefined;
  }
}
