/**
 * A load balancer as ELB's CreateLoadBalancer describes it (`{name, listeners: [{protocol,
 * port, serverPort}], servers?, health?, zone?}`), turned into what a configuration file would
 * hold: a pool named NAME, one listener per entry of `listeners`, and an A record NAME in a
 * zone of a dns listener. Pure; every problem of the body is reported at its path in the body.
 */
import type { ConfigPath, PathIssue } from '../config/path.js';

type Raw = Record<string, unknown>;

export interface Expansion {
  readonly issues: PathIssue[];
  readonly pool?: Raw | undefined;
  readonly listeners: Raw[];
  /** The A record (relative name, values), when the load balancer gets a DNS name. */
  readonly record?: Raw | undefined;
  /** The zone the record goes in (lower case). */
  readonly zone?: string | undefined;
  /** A path in the built pool read as a path in the body. */
  mapPool(rest: ConfigPath): ConfigPath;
  /** A path in the built listener `k` read as a path in the body. */
  mapListener(k: number, rest: ConfigPath): ConfigPath;
}

export interface Placement {
  /** Host the listeners bind. */
  readonly listen: string;
  /** Address the name answers with (undefined: none could be found). */
  readonly address: string | undefined;
  /** The default zone (loadBalancers.zone, or the only zone). */
  readonly zone: string | undefined;
  /** Every zone of the dns listeners. */
  readonly zones: readonly string[];
}

const BODY_KEYS = ['name', 'listeners', 'servers', 'health', 'zone'];
const LISTENER_KEYS = ['protocol', 'port', 'serverPort'];
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const PROTOCOLS = ['http', 'tcp'];

const isMap = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v));

function port(v: unknown, min: number): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= 65535 ? n : undefined;
}

/** A server's name made from its address (`10.0.0.5:8080` → `10.0.0.5-8080`). */
export function serverNameOf(address: string): string {
  const s = address.replace(/[[\]]/g, '').replace(/[^A-Za-z0-9_.-]/g, '-');
  return /^[A-Za-z0-9]/.test(s) ? s.slice(0, 64) : `s${s}`.slice(0, 64);
}

/** `host` or `host:port` (`[v6]:port`) with `serverPort` where the port is missing. */
export function withPort(address: string, serverPort: number): string {
  if (/^\[.*\]:\d+$/.test(address) || /^[^:]+:\d+$/.test(address)) return address;
  if (address.includes(':') && !address.startsWith('[')) return `[${address}]:${serverPort}`;
  return `${address}:${serverPort}`;
}

/**
 * ELB's health check in Portico's form: `{target: "HTTP:8080/ping", interval, timeout,
 * healthyThreshold, unhealthyThreshold}` becomes `{type: http, port: 8080, path: /ping,
 * interval, timeout, rise, fall}`; `TCP:PORT` a tcp check. Portico's own form passes unchanged.
 */
export function healthFromElb(h: Raw, at: ConfigPath, issues: PathIssue[]): Raw {
  const out: Raw = {};
  for (const [k, v] of Object.entries(h)) {
    if (k === 'target') continue;
    if (k === 'healthyThreshold') out['rise'] = v;
    else if (k === 'unhealthyThreshold') out['fall'] = v;
    else out[k] = v;
  }
  if (h['target'] === undefined) return out;
  const m = typeof h['target'] === 'string' ? /^(HTTP|TCP):(\d{1,5})(\/.*)?$/i.exec(h['target']) : null;
  const p = m === null ? undefined : port(m[2], 1);
  if (m === null || p === undefined || (m[1]!.toUpperCase() === 'TCP' && m[3] !== undefined)) {
    issues.push({ path: [...at, 'target'], message: `expected HTTP:PORT/PATH or TCP:PORT, got ${show(h['target'])}` });
    return out;
  }
  out['type'] = m[1]!.toLowerCase();
  out['port'] = p;
  if (m[3] !== undefined) out['path'] = m[3];
  return out;
}

/** The listener names of a load balancer: NAME for one listener, NAME-PORT (or NAME-N for port 0) for several. */
export function listenerNames(name: string, ports: readonly number[]): string[] {
  if (ports.length === 1) return [name];
  return ports.map((p, k) => (p === 0 || ports.indexOf(p) !== k ? `${name}-${k + 1}` : `${name}-${p}`));
}

export function expandLoadBalancer(body: Raw, at: Placement): Expansion {
  const issues: PathIssue[] = [];
  for (const k of Object.keys(body)) if (!BODY_KEYS.includes(k)) issues.push({ path: [k], message: `unknown key (known: ${BODY_KEYS.join(', ')})` });
  const name = body['name'];
  if (name === undefined) issues.push({ path: ['name'], message: 'missing required key' });
  else if (typeof name !== 'string' || !LABEL.test(name)) {
    issues.push({ path: ['name'], message: `bad load balancer name ${show(name)}: one DNS label, 1-63 letters, digits or "-", not starting or ending with "-"` });
  }
  const ls = body['listeners'];
  const specs: { protocol: string; port: number; serverPort: number }[] = [];
  if (ls === undefined) issues.push({ path: ['listeners'], message: 'missing required key' });
  else if (!Array.isArray(ls)) issues.push({ path: ['listeners'], message: `expected a list, got ${show(ls)}` });
  else if (ls.length === 0) issues.push({ path: ['listeners'], message: 'needs at least 1 item' });
  else {
    ls.forEach((l: unknown, k) => {
      if (!isMap(l)) {
        issues.push({ path: ['listeners', k], message: `expected a mapping {protocol, port, serverPort}, got ${show(l)}` });
        return;
      }
      for (const key of Object.keys(l)) if (!LISTENER_KEYS.includes(key)) issues.push({ path: ['listeners', k, key], message: `unknown key (known: ${LISTENER_KEYS.join(', ')})` });
      const protocol = typeof l['protocol'] === 'string' ? l['protocol'].toLowerCase() : undefined;
      if (protocol === undefined || !PROTOCOLS.includes(protocol)) {
        const https = protocol === 'https' ? ' (an https listener needs certificates: create it with POST /api/v1/listeners)' : '';
        issues.push({ path: ['listeners', k, 'protocol'], message: l['protocol'] === undefined ? 'missing required key' : `must be one of http | tcp, got ${show(l['protocol'])}${https}` });
      }
      const p = port(l['port'], 0);
      if (p === undefined) issues.push({ path: ['listeners', k, 'port'], message: l['port'] === undefined ? 'missing required key' : `expected a port 0-65535, got ${show(l['port'])}` });
      const sp = port(l['serverPort'], 1);
      if (sp === undefined) {
        issues.push({ path: ['listeners', k, 'serverPort'], message: l['serverPort'] === undefined ? 'missing required key' : `expected a port 1-65535, got ${show(l['serverPort'])}` });
      }
      if (protocol !== undefined && p !== undefined && sp !== undefined) specs.push({ protocol, port: p, serverPort: sp });
    });
    const first = specs[0]?.serverPort;
    ls.forEach((l: unknown, k) => {
      const sp = isMap(l) ? port(l['serverPort'], 1) : undefined;
      if (first !== undefined && sp !== undefined && sp !== first) {
        issues.push({ path: ['listeners', k, 'serverPort'], message: `every listener forwards to the load balancer's one pool: serverPort ${sp} differs from ${first}` });
      }
    });
  }
  const serverPort = specs[0]?.serverPort;
  const servers: Raw[] = [];
  const sv = body['servers'];
  const stringServer: boolean[] = [];
  if (sv !== undefined && !Array.isArray(sv)) issues.push({ path: ['servers'], message: `expected a list, got ${show(sv)}` });
  else
    (sv ?? []).forEach((s: unknown, j: number) => {
      if (typeof s === 'string') {
        if (s.trim() === '') issues.push({ path: ['servers', j], message: 'must not be empty' });
        const address = withPort(s.trim(), serverPort ?? 80);
        servers.push({ name: serverNameOf(address), address });
        stringServer.push(true);
      } else if (isMap(s)) {
        servers.push(structuredClone(s));
        stringServer.push(false);
      } else {
        issues.push({ path: ['servers', j], message: `expected an address (HOST or HOST:PORT) or a server {name, address, ...}, got ${show(s)}` });
        stringServer.push(false);
      }
    });
  let health: Raw | undefined;
  const h = body['health'];
  if (h !== undefined) {
    if (!isMap(h)) issues.push({ path: ['health'], message: `expected a mapping, got ${show(h)}` });
    else health = healthFromElb(h, ['health'], issues);
  }
  let zone: string | undefined;
  const z = body['zone'];
  if (z !== undefined) {
    const want = typeof z === 'string' ? z.toLowerCase().replace(/\.$/, '') : undefined;
    if (want === undefined || !at.zones.includes(want)) {
      issues.push({ path: ['zone'], message: `no dns listener has zone ${show(z)} (${at.zones.length === 0 ? 'there is no dns listener' : `zones: ${at.zones.join(', ')}`})` });
    } else zone = want;
  } else if (at.zone !== undefined) zone = at.zone;
  else if (at.zones.length > 1) issues.push({ path: ['zone'], message: `give the zone of the load balancer's name: one of ${at.zones.join(', ')} (or set loadBalancers.zone)` });
  if (zone !== undefined && at.address === undefined) {
    issues.push({ path: ['zone'], message: 'no address for the DNS name: set loadBalancers.address (listen is 0.0.0.0 and this machine has no non-loopback IPv4 address)' });
  }
  const mapPool = (rest: ConfigPath): ConfigPath => {
    if (rest[0] === 'servers' && typeof rest[1] === 'number') return stringServer[rest[1]] === true ? ['servers', rest[1]] : ['servers', ...rest.slice(1)];
    if (rest[0] === 'health') {
      const k = rest[1];
      const hb = isMap(h) ? h : {};
      if (hb['target'] !== undefined && (k === 'type' || k === 'port' || k === 'path')) return ['health', 'target'];
      if (k === 'rise' && 'healthyThreshold' in hb) return ['health', 'healthyThreshold'];
      if (k === 'fall' && 'unhealthyThreshold' in hb) return ['health', 'unhealthyThreshold'];
      return rest;
    }
    return rest[0] === 'servers' ? ['servers'] : ['name'];
  };
  const mapListener = (k: number, rest: ConfigPath): ConfigPath => {
    if (rest[0] === 'listen') return ['listeners', k, 'port'];
    if (rest[0] === 'protocol') return ['listeners', k, 'protocol'];
    if (rest[0] === 'name') return ['name'];
    return ['listeners', k];
  };
  if (issues.length > 0 || typeof name !== 'string') return { issues, listeners: [], mapPool, mapListener };
  const pool: Raw = { name, servers };
  if (health !== undefined) pool['health'] = health;
  const names = listenerNames(name, specs.map((s) => s.port));
  const listeners = specs.map((s, k): Raw => {
    const listen = `${at.listen}:${s.port}`;
    return s.protocol === 'http' ? { name: names[k], protocol: 'http', listen, routes: [{ pool: name }] } : { name: names[k], protocol: 'tcp', listen, pool: name };
  });
  const record = zone === undefined ? undefined : { name: name.toLowerCase(), type: 'A', values: [at.address] };
  return { issues, pool, listeners, record, zone, mapPool, mapListener };
}
