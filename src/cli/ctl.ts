/**
 * `portico ctl`: the admin API from the shell. Readable tables by default, the API's JSON
 * with --json. Exit codes: 0 done, 1 the API refused (its error is printed), 2 usage error,
 * 3 the admin API could not be reached.
 */

import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import '../app/listener-kinds.js'; // the listener kinds a configuration may name (ctl reads the file, config push validates it)
import { runConfigCtl } from '../cluster/etcd-config-cli.js';
import { ConfigError } from '../config/errors.js';
import { loadConfigFile } from '../config/load.js';
import { LB_USAGE, LB_VALUE_FLAGS, planLbCall } from './ctl-lb.js';

export const CTL_USAGE = `Usage: portico ctl [-c FILE | --admin URL] [--token T] [--cacert FILE | --insecure] [--json] COMMAND

Commands:
  status                          node, version, uptime, listeners, configuration, runtime changes
  pools                           every pool: algorithm, servers, available, requests per second
  servers POOL                    the servers of POOL: state, health, weight, connections, rates;
                                  its discovery (source, updates, failures, last error) if it has one
  laws POOL [--z DURATION]        the operational laws of POOL: X, R, N against X·R, each server's
                                  service time, parallelism, utilization and demand, the bottleneck,
                                  where the pool saturates and the bounds (think time --z, default 0)
  weight POOL/SERVER N            set the weight (0-256)
  drain POOL/SERVER               no new sessions; traffic already pinned may continue
  ready POOL/SERVER               back in service
  maint POOL/SERVER               no traffic at all, health checks paused
  add POOL NAME ADDRESS [--weight N] [--backup]
                                  register a server
  remove POOL/SERVER [--now]      deregister: drain, remove once idle (--now: at once)
  reset POOL/SERVER               drop the server's runtime change (weight, state ... set through
                                  the API): the file's values apply again
  reload                          re-read the configuration file; an invalid file is refused
  upgrade                         with cluster.workers: re-read the file, start new workers from the code
                                  on disk, then drain the old ones (no connection dropped); waits for
                                  the new workers, at least 120 s (or --timeout)
  flows LISTENER                  a kernel listener's flows (conntrack: client, server, state, age)
                                  and its persistence entries (client, server, seconds left)
  cache                           every cache: entries, bytes, hits, misses, hit ratio, stale, revalidated, evictions
                                  (and the shared tier's hits, misses, writes, errors)
  purge CACHE --url PATH | --prefix PATH | --tag TAG
                                  drop from CACHE every variant of a URL (/path?q on every host, or
                                  host/path), every URL under a path prefix, or every object whose
                                  Surrogate-Key lists TAG
${LB_USAGE}  config push FILE [--etcd URL]   validate FILE and store it in etcd for every node (portico ctl config --help)

Options:
  -c FILE        the configuration Portico runs: the admin API at its admin.listen (https with
                 admin.tls), with its admin.token
  --admin URL    the admin API (default: -c FILE's, else $PORTICO_ADMIN or http://127.0.0.1:9090)
  --token T      bearer token (default: -c FILE's, else $PORTICO_ADMIN_TOKEN); sent with every request
  --cacert FILE  with an https:// URL: PEM file of the CA (or the self-signed certificate)
                 that the admin certificate must chain to (default: $PORTICO_ADMIN_CACERT,
                 else the system CAs)
  --insecure     with an https:// URL: do not verify the certificate at all (anyone on the
                 path can read the token and the answers); for tests only
  --json         print the API's JSON instead of tables
  --timeout MS   give up after MS milliseconds (default 10000); for configure-healthcheck and
                 health, --timeout D is the check's timeout

Exit codes: 0 done, 1 refused by the API, 2 usage error, 3 admin API unreachable.
`;

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

export interface CtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

interface CtlOptions {
  admin: string;
  token: string | undefined;
  /** PEM text of the CA (--cacert) the admin certificate must chain to. */
  cacert: string | undefined;
  insecure: boolean;
  json: boolean;
  timeoutMs: number;
  weight: number | undefined;
  backup: boolean;
  now: boolean;
  /** `purge`: what to drop (--url, --prefix, --tag), in the order given. */
  purge: { by: 'url' | 'prefix' | 'tag'; value: string }[];
  /** `laws`: the think time of the bounds (--z). */
  z: string | undefined;
  /** The options of the load-balancer and health commands (ctl-lb.ts), every value given. */
  flags: Map<string, string[]>;
  /** `--timeout D` of configure-healthcheck and health: the check's timeout. */
  checkTimeout: string | undefined;
  words: string[];
}

/** Commands whose `--timeout` is a health check's, not the request's. */
const CHECK_TIMEOUT = new Set(['configure-healthcheck', 'health']);

class UsageError extends Error {}

/** Run `portico ctl ARGS`; resolves with the exit code. */
export async function runCtl(argv: readonly string[], io: CtlIo): Promise<number> {
  const first = firstWord(argv);
  if (first !== undefined && argv[first] === 'config') return runConfigCtl(argv.slice(first + 1), io);
  let o: CtlOptions;
  try {
    o = parseCtlArgs(argv, io.env ?? process.env);
  } catch (err) {
    io.err(`portico ctl: ${(err as Error).message}\n\n${CTL_USAGE}`);
    return EXIT_USAGE;
  }
  const [cmd, ...rest] = o.words;
  if (cmd === undefined || cmd === 'help') {
    (cmd === undefined ? io.err : io.out)(CTL_USAGE);
    return cmd === undefined ? EXIT_USAGE : EXIT_OK;
  }
  try {
    const call = planCall(cmd, rest, o);
    const r = await request(o, call.method, call.path, call.body);
    if (r.status >= 400 || (r.status >= 300 && r.status < 400)) {
      if (o.json) io.err(JSON.stringify(r.body, null, 2) + '\n');
      else io.err(describeError(r) + '\n');
      return EXIT_REFUSED;
    }
    if (o.json) io.out(JSON.stringify(r.body, null, 2) + '\n');
    else io.out(call.render(r.body as Json));
    return EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`portico ctl: ${err.message}\n\n${CTL_USAGE}`);
      return EXIT_USAGE;
    }
    if (err instanceof Unreachable) {
      io.err(`portico ctl: ${err.message}\n`);
      return EXIT_UNREACHABLE;
    }
    throw err;
  }
}

/** The index of the first word that is not an option or an option's value. */
function firstWord(argv: readonly string[]): number | undefined {
  const withValue = new Set(['--admin', '--token', '--cacert', '--timeout', '--weight', '-c', '--config', '--url', '--prefix', '--tag', ...LB_VALUE_FLAGS]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (withValue.has(a)) i++;
    else if (!a.startsWith('-')) return i;
  }
  return undefined;
}

function parseCtlArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CtlOptions {
  const o: CtlOptions = {
    admin: env.PORTICO_ADMIN ?? 'http://127.0.0.1:9090',
    token: env.PORTICO_ADMIN_TOKEN === '' ? undefined : env.PORTICO_ADMIN_TOKEN,
    cacert: undefined,
    insecure: false,
    json: false,
    timeoutMs: 10_000,
    weight: undefined,
    backup: false,
    now: false,
    purge: [],
    z: undefined,
    flags: new Map(),
    checkTimeout: undefined,
    words: [],
  };
  let timeout: string | undefined;
  let cacertFile = env.PORTICO_ADMIN_CACERT === '' ? undefined : env.PORTICO_ADMIN_CACERT;
  let cacertGiven = false;
  let adminGiven = false;
  let tokenGiven = false;
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--admin':
        o.admin = value();
        adminGiven = true;
        break;
      case '--token':
        o.token = value();
        tokenGiven = true;
        break;
      case '-c':
      case '--config':
        configFile = value();
        break;
      case '--cacert':
        cacertFile = value();
        cacertGiven = true;
        break;
      case '--insecure':
        o.insecure = true;
        break;
      case '--json':
        o.json = true;
        break;
      case '--timeout':
        timeout = value();
        break;
      case '--weight':
        o.weight = Number(value());
        if (!Number.isInteger(o.weight)) throw new Error('--weight takes a whole number');
        break;
      case '--backup':
        o.backup = true;
        break;
      case '--now':
        o.now = true;
        break;
      case '--z':
        o.z = value();
        break;
      case '--url':
      case '--prefix':
      case '--tag':
        o.purge.push({ by: flag.slice(2) as 'url' | 'prefix' | 'tag', value: value() });
        break;
      case '-h':
      case '--help':
        o.words = ['help'];
        return o;
      default:
        if ((LB_VALUE_FLAGS as readonly string[]).includes(flag)) {
          const v = value();
          o.flags.set(flag, [...(o.flags.get(flag) ?? []), v]);
          break;
        }
        if (a.startsWith('-') && a !== '-' && !/^-\d/.test(a)) throw new Error(`unknown option ${a}`);
        o.words.push(a);
    }
  }
  if (timeout !== undefined) {
    if (CHECK_TIMEOUT.has(o.words[0] ?? '')) o.checkTimeout = timeout;
    else o.timeoutMs = positiveInt(timeout, '--timeout');
  }
  if (configFile !== undefined) {
    const a = adminOfConfig(configFile, env);
    if (!adminGiven) o.admin = a.url;
    if (!tokenGiven && a.token !== undefined) o.token = a.token;
  }
  let url: URL;
  try {
    url = new URL(o.admin.includes('://') ? o.admin : `http://${o.admin}`);
  } catch {
    throw new Error(`--admin ${o.admin} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--admin ${o.admin}: http or https only`);
  o.admin = url.origin + url.pathname.replace(/\/+$/, '');
  if (url.protocol === 'http:') {
    if ((cacertGiven || o.insecure) && !o.words.includes('help')) throw new Error(`--cacert and --insecure are for an https:// admin URL (got ${o.admin})`);
    return o;
  }
  if (cacertGiven && o.insecure) throw new Error('give --cacert or --insecure, not both');
  if (o.insecure) return o;
  if (cacertFile !== undefined) {
    try {
      o.cacert = readFileSync(cacertFile, 'utf8');
    } catch (err) {
      throw new Error(`--cacert ${cacertFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (!o.cacert.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--cacert ${cacertFile}: holds no PEM certificate`);
  }
  return o;
}

/**
 * `-c FILE`: the admin API of the Portico that runs FILE (as `keepalived -f` reads its own
 * file): its URL from `admin.listen` (https with `admin.tls`; an any-address listen is reached
 * on loopback) and its token. `--admin` and `--token` given on the command line win.
 */
function adminOfConfig(file: string, env: NodeJS.ProcessEnv): { url: string; token: string | undefined } {
  let admin;
  try {
    admin = loadConfigFile(file, env, { files: false, runnable: false }).admin;
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`-c ${file}:\n${err.lines().join('\n')}`);
    throw err;
  }
  if (!admin.enabled) throw new Error(`-c ${file}: admin.enabled is false: that Portico runs no admin API`);
  const h = admin.listen.host;
  const host = h === '0.0.0.0' || h === '' ? '127.0.0.1' : h === '::' ? '[::1]' : h.includes(':') ? `[${h}]` : h;
  return { url: `${admin.tls === false ? 'http' : 'https'}://${host}:${admin.listen.port}`, token: admin.token === '' ? undefined : admin.token };
}

function positiveInt(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} takes a positive whole number`);
  return n;
}

// ---- commands -------------------------------------------------------------------------------

type Json = Record<string, any>;

interface Call {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  render(body: Json): string;
}

function planCall(cmd: string, args: readonly string[], o: CtlOptions): Call {
  const want = (n: number, shape: string): void => {
    if (args.length !== n) throw new UsageError(`${cmd} takes ${shape}`);
  };
  const seg = encodeURIComponent;
  switch (cmd) {
    case 'status':
      want(0, 'no argument');
      return { method: 'GET', path: '/api/v1/status', render: renderStatus };
    case 'pools':
      want(0, 'no argument');
      return { method: 'GET', path: '/api/v1/pools', render: (b) => renderPools(b.pools as Json[]) };
    case 'servers': {
      want(1, 'POOL');
      return { method: 'GET', path: `/api/v1/pools/${seg(args[0]!)}`, render: (b) => renderServers(b) };
    }
    case 'laws': {
      want(1, 'POOL');
      const q = o.z === undefined ? '' : `?z=${encodeURIComponent(o.z)}`;
      return { method: 'GET', path: `/api/v1/pools/${seg(args[0]!)}/laws${q}`, render: renderLaws };
    }
    case 'weight': {
      want(2, 'POOL/SERVER N');
      const [pool, server] = poolServer(args[0]!);
      const n = Number(args[1]);
      if (!Number.isInteger(n)) throw new UsageError(`weight ${args[1]} is not a whole number`);
      return { method: 'PATCH', path: `/api/v1/pools/${seg(pool)}/servers/${seg(server)}`, body: { weight: n }, render: (b) => `${pool}/${b.name}: weight ${b.weight}\n` };
    }
    case 'drain':
    case 'ready':
    case 'maint': {
      want(1, 'POOL/SERVER');
      const [pool, server] = poolServer(args[0]!);
      return {
        method: 'PATCH',
        path: `/api/v1/pools/${seg(pool)}/servers/${seg(server)}`,
        body: { state: cmd },
        render: (b) => `${pool}/${b.name}: ${b.state} (active ${b.active})\n`,
      };
    }
    case 'add': {
      want(3, 'POOL NAME ADDRESS [--weight N] [--backup]');
      const [pool, name, address] = args as [string, string, string];
      const body: Json = { name, address };
      if (o.weight !== undefined) body.weight = o.weight;
      if (o.backup) body.backup = true;
      return { method: 'POST', path: `/api/v1/pools/${seg(pool)}/servers`, body, render: (b) => `${pool}/${b.name}: added at ${b.address}, weight ${b.weight}, ${b.state}\n` };
    }
    case 'remove': {
      want(1, 'POOL/SERVER [--now]');
      const [pool, server] = poolServer(args[0]!);
      return {
        method: 'DELETE',
        path: `/api/v1/pools/${seg(pool)}/servers/${seg(server)}${o.now ? '?now=true' : ''}`,
        render: (b) => (b.state === 'removed' ? `${pool}/${b.server}: removed\n` : `${pool}/${b.server}: draining (${b.active} in flight); removed once idle\n`),
      };
    }
    case 'reset': {
      want(1, 'POOL/SERVER');
      const [pool, server] = poolServer(args[0]!);
      return {
        method: 'DELETE',
        path: `/api/v1/pools/${seg(pool)}/servers/${seg(server)}/runtime-change`,
        render: (b) => `${pool}/${b.name}: runtime change dropped; weight ${b.weight}, ${b.state} as the file says\n`,
      };
    }
    case 'reload':
      want(0, 'no argument');
      return {
        method: 'POST',
        path: '/api/v1/reload',
        render: (b) => {
          const lines = [`reloaded: generation ${b.generation}`];
          const changes = b.changes as string[];
          if (changes.length === 0) lines.push('  nothing changed');
          for (const c of changes) lines.push(`  ${c}`);
          for (const k of b.restartRequired as string[]) lines.push(`  ${k}: changed; takes effect at the next start`);
          for (const o of (b.overridden as string[] | undefined) ?? []) lines.push(`  overridden: ${o}`);
          return lines.join('\n') + '\n';
        },
      };
    case 'upgrade':
      want(0, 'no argument');
      return planUpgrade(o);
    case 'flows':
      want(1, 'LISTENER');
      return { method: 'GET', path: `/api/v1/listeners/${seg(args[0]!)}/flows`, render: renderFlows };
    case 'cache':
      want(0, 'no argument');
      return { method: 'GET', path: '/api/v1/caches', render: (b) => renderCaches(b.caches as Json[]) };
    case 'purge': {
      want(1, 'CACHE and one of --url PATH, --prefix PATH, --tag TAG');
      if (o.purge.length !== 1) throw new UsageError(`purge takes one of --url, --prefix or --tag (got ${o.purge.length === 0 ? 'none' : o.purge.map((x) => '--' + x.by).join(', ')})`);
      const { by, value } = o.purge[0]!;
      const what = by === 'tag' ? `tagged ${value}` : by === 'prefix' ? `under ${value}` : value;
      return {
        method: 'DELETE',
        path: `/api/v1/caches/${seg(args[0]!)}?${by}=${seg(value)}`,
        render: (b) => `${args[0]}: ${b.purged} object${b.purged === 1 ? '' : 's'} purged (${what})\n`,
      };
    }
    default: {
      const lb = planLbCall(cmd, args, o.flags, (m) => new UsageError(m), o.checkTimeout);
      if (lb !== undefined) return lb;
      throw new UsageError(`unknown command ${cmd}`);
    }
  }
}

/** How long `upgrade` waits at least: the reload, the new workers' start and their first answers. */
const UPGRADE_WAIT_MS = 120_000;

/** `upgrade`: POST /api/v1/upgrade (src/cluster/upgrade.ts), which answers once the new workers accept. */
function planUpgrade(o: CtlOptions): Call {
  o.timeoutMs = Math.max(o.timeoutMs, UPGRADE_WAIT_MS);
  return {
    method: 'POST',
    path: '/api/v1/upgrade',
    render: (b) => `upgraded: workers ${(b.started as number[]).join(', ')} accept; workers ${(b.draining as number[]).join(', ')} drain and exit\n`,
  };
}

function poolServer(s: string): [string, string] {
  const i = s.indexOf('/');
  if (i <= 0 || i === s.length - 1) throw new UsageError(`expected POOL/SERVER, got ${s}`);
  return [s.slice(0, i), s.slice(i + 1)];
}

// ---- HTTP -----------------------------------------------------------------------------------

class Unreachable extends Error {}

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

async function request(o: CtlOptions, method: string, path: string, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  // Every request carries the token when one is given: with admin.protectReads reads need it too.
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  const url = new URL(o.admin + path);
  let res: { status: number; text: string };
  try {
    res = await send(url, method, headers, payload, o);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.name === 'TimeoutError' ? `no answer within ${o.timeoutMs} ms` : (e.code ?? e.message);
    const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(why) ? ' (--cacert FILE names the CA that signed the admin certificate)' : '';
    throw new Unreachable(`cannot reach the admin API at ${o.admin}: ${why}${hint}`);
  }
  let parsed: unknown;
  try {
    parsed = res.text === '' ? {} : JSON.parse(res.text);
  } catch {
    throw new Unreachable(`${o.admin}${path} answered ${res.status} with something that is not JSON: is it Portico's admin API?`);
  }
  return { status: res.status, body: parsed };
}

/** One request with node:http or node:https (https: verified against --cacert, or not at all with --insecure). */
function send(url: URL, method: string, headers: Record<string, string>, payload: string | undefined, o: CtlOptions): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const signal = AbortSignal.timeout(o.timeoutMs);
    const options = { method, headers, signal };
    const onRes = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...options, ...(o.cacert === undefined ? {} : { ca: o.cacert }), rejectUnauthorized: !o.insecure }, onRes)
        : httpRequest(url, options, onRes);
    req.on('error', (err) => reject(signal.aborted ? Object.assign(new Error('timeout'), { name: 'TimeoutError' }) : err));
    req.end(payload);
  });
}

function describeError(r: Reply): string {
  const e = (r.body as { error?: { code?: string; message?: string; issues?: { path: string; message: string }[] } }).error;
  if (e === undefined) return `portico ctl: the admin API answered ${r.status}`;
  const lines = [`portico ctl: ${e.message ?? 'refused'} (${e.code ?? r.status})`];
  for (const i of e.issues ?? []) lines.push(`  ${i.path}: ${i.message}`);
  return lines.join('\n');
}

// ---- rendering ------------------------------------------------------------------------------

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [head.map(String), ...rows.map((r) => r.map((c) => String(c)))];
  const numeric = head.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === '-'));
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return (
    cells
      .map((r) =>
        r
          .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

const rate = (r: Json | null | undefined): number | string => (r === null || r === undefined ? '-' : Math.round((r.rps as number) * 10) / 10);

function renderStatus(b: Json): string {
  const c = b.config as Json;
  const lines = [
    `node        ${b.node}`,
    `version     ${b.version}`,
    `uptime      ${duration(b.uptimeSec as number)}`,
    `ready       ${b.ready ? 'yes' : 'no'}`,
    `config      ${c.file ?? '(an object, not a file)'}, generation ${c.generation}, loaded ${c.loadedAt}`,
  ];
  const last = c.lastReload as Json | null;
  if (last !== null) lines.push(`last reload ${last.at}: ${last.ok ? 'applied' : 'refused'}`);
  for (const e of (last?.errors as string[] | undefined) ?? []) lines.push(`  ${e}`);
  lines.push('', table(['LISTENER', 'PROTOCOL', 'ADDRESS'], (b.listeners as Json[]).map((l) => [l.name, l.protocol, l.address])).trimEnd());
  const rc = b.runtimeChanges as Json;
  const inForce = rc.inForce as Json[];
  const notApplied = rc.notApplied as Json[];
  lines.push('', `runtime changes (${rc.journal ?? 'kept in memory only'}): ${inForce.length} in force${notApplied.length > 0 ? `, ${notApplied.length} not applied` : ''}`);
  if (rc.problem !== undefined) lines.push(`  journal problem: ${rc.problem}`);
  const row = (x: Json): (string | number)[] => [x.server === undefined ? x.pool : `${x.pool}/${x.server}`, x.kind, brief(x.runtime), brief(x.config), x.reason ?? ''];
  const rows = [...inForce, ...notApplied].map(row);
  if (rows.length > 0) lines.push(table(['WHAT', 'CHANGE', 'NOW', 'IN THE FILE', 'NOT APPLIED BECAUSE'], rows).trimEnd());
  return lines.join('\n') + '\n';
}

/** `portico ctl flows LISTENER`: the flows, then the persistence entries. */
export function renderFlows(b: Json): string {
  const flows = (b.flows as Json[] | undefined) ?? [];
  const sticky = (b.sticky as Json[] | undefined) ?? [];
  const parts: string[] = [];
  parts.push(
    flows.length === 0
      ? 'no flow\n'
      : table(
          ['CLIENT', 'SERVER', 'PROTOCOL', 'STATE', 'AGE', 'TIMEOUT'],
          flows.map((f) => [f.client, f.server, f.protocol, f.state, f.age === null || f.age === undefined ? '-' : `${f.age}s`, `${f.timeout}s`]),
        ),
  );
  if (sticky.length > 0) {
    parts.push(table(['STICKY CLIENT', 'SERVER', 'EXPIRES'], sticky.map((e) => [e.client, e.server, `${e.expires}s`])));
  }
  return parts.join('\n');
}

function renderPools(pools: readonly Json[]): string {
  if (pools.length === 0) return 'no pool\n';
  return table(
    ['POOL', 'BALANCE', 'SERVERS', 'AVAILABLE', 'INFLIGHT', 'RPS'],
    pools.map((p) => [p.name, p.balance ?? '-', p.size, p.available, p.inflight, rate(p.rates)]),
  );
}

function renderServers(p: Json): string {
  const servers = p.servers as Json[];
  const head = `pool ${p.name} (${p.balance}): ${p.available} of ${p.size} available${p.usingBackups ? ', on backups' : ''}\n` + renderDiscovery(p.discovery as Json | null | undefined);
  if (servers.length === 0) return head + 'no server\n';
  const unchecked = servers.some((s) => s.health === 'no check')
    ? 'no health check: servers are taken as up and only FAILURES shows a dead one (add a health section: docs/health.md)\n'
    : '';
  return (
    head +
    unchecked +
    table(
      ['SERVER', 'ADDRESS', 'STATE', 'HEALTH', 'WEIGHT', 'ACTIVE', 'REQUESTS', 'FAILURES', 'RPS', 'SOURCE'],
      servers.map((s) => [
        s.name + (s.backup ? ' (backup)' : ''),
        s.address,
        s.state,
        s.health,
        weightOf(s.effectiveWeight as number, s.weight as number),
        s.active,
        s.requests,
        failureShare(s.failures as number, s.requests as number),
        rate(s.rates),
        s.source,
      ]),
    )
  );
}

function renderLaws(l: Json): string {
  if (l.at === null || l.at === undefined) return `pool ${l.pool}: ${l.summary}\n`;
  const f = (x: unknown, d = 2): string => (typeof x === 'number' ? x.toFixed(d) : '-');
  let out = `pool ${l.pool}: ${l.summary}\n`;
  out += `X ${f(l.X, 1)} req/s, R ${f(l.R)} ms, N ${f(l.N, 3)} (X·R ${f(l.XR, 3)}) over ${f(l.windowSec, 0)} s\n`;
  if (l.saturation !== null) {
    out += `D ${f(l.D, 3)} ms, Dmax ${f(l.Dmax, 4)} ms, knee N* ${f(l.knee)}; at N ${f(l.bounds.N, 3)} and Z ${l.Z} ms: X <= ${f(l.bounds.Xmax, 1)} req/s, R >= ${f(l.bounds.Rmin)} ms\n`;
  }
  return (
    out +
    table(
      ['SERVER', 'V', 'X', 'R', 'N', 'X·R', 'T', 'S', 'C', 'U', 'D', 'CAPACITY'],
      (l.servers as Json[]).map((s) => [
        s.name + (s.name === l.bottleneck ? ' *' : ''),
        f(s.V, 3),
        f(s.X, 1),
        f(s.R),
        f(s.N, 3),
        f(s.XR, 3),
        f(s.T),
        f(s.S),
        s.c === null ? '-' : (s.cSource === 'observed' ? '>=' : '') + f(s.c) + ` (${s.cSource})`,
        s.utilization === null ? '-' : `${(s.utilization * 100).toFixed(1)}%`,
        f(s.D, 4),
        f(s.capacity, 1),
      ]),
    )
  );
}

function renderCaches(caches: readonly Json[]): string {
  if (caches.length === 0) return 'no cache\n';
  const head = ['CACHE', 'ENTRIES', 'BYTES', 'HITS', 'MISSES', 'HIT RATIO', 'STALE', 'REVALIDATED', 'EVICTIONS'];
  const rows = caches.map((c): (string | number)[] => [c.name, c.entries, c.bytes, c.hits, c.misses, percent(c.hitRatio), c.stale, c.revalidated, c.evictions]);
  // The shared tier's figures (cluster.store), when a cache has one; '-' for the caches without.
  if (caches.some((c) => c.shared !== undefined && c.shared !== null)) {
    head.push('SHARED HITS', 'SHARED MISSES', 'SHARED WRITES', 'SHARED ERRORS');
    caches.forEach((c, i) => {
      const s = c.shared;
      rows[i]!.push(...(s === undefined || s === null ? ['-', '-', '-', '-'] : [s.hits, s.misses, s.writes, s.errors]));
    });
  }
  return table(head, rows);
}

/** The view's hit ratio (answers from the cache, fresh, stale or revalidated, over every request counted) as a percentage; '-' before any. */
function percent(ratio: unknown): string {
  return typeof ratio === 'number' ? `${Math.round(ratio * 1000) / 10}%` : '-';
}

/** The weight column: the configured weight, or `effective/configured` during slow start, rounded to two decimals. */
export function weightOf(effective: number, configured: number): string {
  if (effective === configured) return String(configured);
  return `${Math.round(effective * 100) / 100}/${configured}`;
}

/** Failed requests, with their share of the requests when any failed (`6 (100%)`). */
function failureShare(failures: number, requests: number): string {
  if (failures === 0 || requests === 0) return String(failures);
  return `${failures} (${Math.round((failures / requests) * 100)}%)`;
}

/** The discovery lines of a pool's view (nothing for a static pool). */
export function renderDiscovery(d: Json | null | undefined): string {
  if (d === null || d === undefined) return '';
  const head = `discovery ${d.type} ${d.source}`;
  // Where the primary of cluster.workers did not answer, a worker knows only the type and source.
  if (typeof d.updates !== 'number') return `${head}: no status (the process that runs it did not answer)\n`;
  const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;
  const lines = [
    `${head}: ${plural(d.servers as number, 'server')}, ${plural(d.updates as number, 'update')}${d.lastUpdateAt !== null ? ` (last ${d.lastUpdateAt})` : ''}, ` +
      `${plural(d.failures as number, 'failure')}${d.ignoredEmpty > 0 ? `, ${d.ignoredEmpty} empty list(s) ignored` : ''}`,
  ];
  if (d.lastError !== null) lines.push(`  last error ${d.lastErrorAt ?? ''}: ${d.lastError}`);
  if (d.usingLastKnownGood === true) lines.push('  the source is failing: the last known good list stays in force');
  return lines.join('\n') + '\n';
}

function brief(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v !== 'object') return String(v);
  return Object.entries(v as Json)
    .filter(([, x]) => x !== undefined)
    .map(([k, x]) => `${k}=${typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x)}`)
    .join(' ');
}

function duration(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  return [d > 0 ? `${d}d` : '', h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', `${s}s`].filter((x) => x !== '').join(' ');
}
