import { isIP } from 'node:net';

/**
 * `portico keepalived`: a keepalived configuration for active-passive address take-over (SPEC §7).
 * One VRRP instance holds the virtual address; its `vrrp_script` asks this node's Portico whether
 * it is ready (`GET /api/v1/status/ready`: 503 while starting, draining or with no listener up).
 * When the check fails `fall` times in a row the instance goes to FAULT and gives the address up at
 * once (it advertises priority 0), so a peer takes it without waiting for three missed adverts.
 */
export interface KeepalivedOptions {
  /** Virtual address, with an optional prefix length (`198.18.0.100/24`, `2001:db8::10/64`). */
  readonly vip: string;
  /** Interface that carries VRRP and receives the virtual address. */
  readonly interface: string;
  /** VRRP priority, 1..254: the highest ready node holds the address. */
  readonly priority: number;
  /** virtual_router_id, 1..255; the same on every node of the pair, unique on the network segment. */
  readonly routerId: number;
  /** Readiness URL of this node's admin API. */
  readonly readyUrl: string;
  /**
   * Let curl skip the certificate check of an https readiness URL (`--insecure`): set from
   * `-c FILE` when admin.tls is on. The check asks this machine's own loopback, sends no token
   * and reads only the status; a certificate without the loopback address in its names, or one
   * that expired, must not take the virtual address away from every node.
   */
  readonly readyInsecure?: boolean | undefined;
  /** Seconds between readiness checks (keepalived's vrrp_script `interval`). */
  readonly checkIntervalSec: number;
  /** Consecutive failed checks before the address is given up, and passed checks before it may come back. */
  readonly fall: number;
  readonly rise: number;
  /** Seconds between VRRP adverts. */
  readonly advertIntSec: number;
  /** Unicast peers instead of multicast adverts (networks without multicast). */
  readonly unicastPeers: readonly string[];
  /** Do not take the address back from a running peer when this node becomes ready again. */
  readonly nopreempt: boolean;
  /**
   * User that runs the check (keepalived's `script_user`). root by default, as keepalived itself
   * does when no `keepalived_script` user exists; name an unprivileged one where it exists.
   */
  readonly scriptUser: string;
  /** The check command's program (curl); an absolute path, as keepalived's script security asks. */
  readonly curl: string;
}

export const KEEPALIVED_DEFAULTS = {
  routerId: 51,
  readyUrl: 'http://127.0.0.1:9090/api/v1/status/ready',
  checkIntervalSec: 1,
  fall: 2,
  rise: 2,
  advertIntSec: 1,
  nopreempt: false,
  scriptUser: 'root',
  curl: '/usr/bin/curl',
} as const;

export class KeepalivedUsageError extends Error {
  override readonly name = 'KeepalivedUsageError';
}

export const KEEPALIVED_USAGE = `Usage: portico keepalived --vip ADDR[/PREFIX] --interface IF --priority N [options]

Prints a keepalived configuration whose vrrp_script asks this node's Portico
(GET /api/v1/status/ready) whether it may hold the virtual address.

Options:
  --vip ADDR[/PREFIX]   virtual address (IPv4 or IPv6)
  --interface IF        interface for VRRP and the virtual address
  --priority N          1..254; the highest ready node holds the address
  --router-id N         virtual_router_id, 1..255, the same on both nodes (default 51)
  -c, --config FILE     take the admin API address from FILE's admin.listen (https with
                        admin.tls; curl then checks with --insecure: see docs/admin.md)
  --ready-url URL       readiness URL (default http://127.0.0.1:9090/api/v1/status/ready)
  --check-interval S    seconds between checks (default 1)
  --fall N, --rise N    failed checks before giving the address up, passed ones before
                        taking it again (default 2 and 2)
  --advert-int S        seconds between VRRP adverts (default 1)
  --unicast-peer ADDR   send adverts to ADDR instead of multicast (repeatable)
  --nopreempt           do not take the address back from a running peer
  --script-user USER    user that runs the check (default root)
  --curl PATH           curl binary for the check (default /usr/bin/curl)
  -o, --out FILE        write to FILE instead of standard output
  --nft-out FILE        also write nftables rules (load with nft -f FILE) under which a
                        connection attempt to the virtual address on a port where Portico
                        is not listening goes unanswered instead of refused, so that the
                        client tries again and reaches the node that took the address over
  --port N              a TCP port for --nft-out (repeatable); with -c FILE the ports of
                        the listeners on the virtual address or on a wildcard are added
`;

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const PATH = /^\/[A-Za-z0-9_./+-]+$/;

function intIn(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new KeepalivedUsageError(`${flag} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return n;
}

function secondsIn(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || n < min || n > max) throw new KeepalivedUsageError(`${flag} must be a number of seconds from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return n;
}

/** `ADDR` or `ADDR/PREFIX`, checked, so that nothing but an address reaches the configuration text. */
export function checkVip(vip: string): string {
  const slash = vip.indexOf('/');
  const addr = slash < 0 ? vip : vip.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) throw new KeepalivedUsageError(`--vip must be an IPv4 or IPv6 address (got ${JSON.stringify(vip)})`);
  if (slash >= 0) intIn('--vip prefix length', vip.slice(slash + 1), 0, family === 4 ? 32 : 128);
  return vip;
}

/** A readiness URL: http(s) only, and nothing that would break out of keepalived's quoted script line. */
export function checkReadyUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new KeepalivedUsageError(`--ready-url must be a URL (got ${JSON.stringify(raw)})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new KeepalivedUsageError('--ready-url must be http:// or https://');
  const href = u.href;
  if (/[\s"'\\]/.test(href)) throw new KeepalivedUsageError('--ready-url must not contain spaces, quotes or backslashes');
  return href;
}

/** The readiness URL for an admin API listening on `listen` (https with admin.tls); a wildcard host is asked on loopback. */
export function readyUrlFor(listen: { readonly host: string; readonly port: number }, https = false): string {
  let host = listen.host;
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return checkReadyUrl(`${https ? 'https' : 'http'}://${h}:${listen.port}/api/v1/status/ready`);
}

export interface KeepalivedArgs {
  readonly options: KeepalivedOptions;
  /** `--nft-out FILE`: where to write the nftables rules that hold connection attempts (renderNftRules). */
  readonly nftOut: string | undefined;
  /** `--port N`: TCP ports those rules cover, besides the listeners of `-c FILE`. */
  readonly ports: readonly number[];
  /** `-c FILE`, when the readiness URL is to be taken from it. */
  readonly configFile: string | undefined;
  readonly out: string | undefined;
  readonly help: boolean;
}

/** Parse `portico keepalived` arguments; every value is checked (they are written into a configuration file). */
export function parseKeepalivedArgs(argv: readonly string[]): KeepalivedArgs {
  const o: { -readonly [K in keyof KeepalivedOptions]?: KeepalivedOptions[K] } = {};
  const peers: string[] = [];
  const ports: number[] = [];
  let nftOut: string | undefined;
  let configFile: string | undefined;
  let out: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i]!;
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    const next = (): string => {
      if (value !== undefined) return value;
      const v = argv[++i];
      if (v === undefined) throw new KeepalivedUsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        help = true;
        break;
      case '--vip':
        o.vip = checkVip(next());
        break;
      case '--interface': {
        const v = next();
        if (!IFNAME.test(v)) throw new KeepalivedUsageError(`--interface must be an interface name (got ${JSON.stringify(v)})`);
        o.interface = v;
        break;
      }
      case '--priority':
        o.priority = intIn(flag, next(), 1, 254);
        break;
      case '--router-id':
        o.routerId = intIn(flag, next(), 1, 255);
        break;
      case '--ready-url':
        o.readyUrl = checkReadyUrl(next());
        break;
      case '-c':
      case '--config':
        configFile = next();
        break;
      case '--check-interval':
        o.checkIntervalSec = secondsIn(flag, next(), 1, 3600);
        break;
      case '--fall':
        o.fall = intIn(flag, next(), 1, 100);
        break;
      case '--rise':
        o.rise = intIn(flag, next(), 1, 100);
        break;
      case '--advert-int':
        o.advertIntSec = secondsIn(flag, next(), 0.01, 255);
        break;
      case '--unicast-peer': {
        const v = next();
        if (isIP(v) === 0) throw new KeepalivedUsageError(`--unicast-peer must be an IP address (got ${JSON.stringify(v)})`);
        peers.push(v);
        break;
      }
      case '--nopreempt':
        o.nopreempt = true;
        break;
      case '--script-user': {
        const v = next();
        if (!USER.test(v)) throw new KeepalivedUsageError(`--script-user must be a user name (got ${JSON.stringify(v)})`);
        o.scriptUser = v;
        break;
      }
      case '--curl': {
        const v = next();
        if (!PATH.test(v)) throw new KeepalivedUsageError(`--curl must be an absolute path (got ${JSON.stringify(v)})`);
        o.curl = v;
        break;
      }
      case '-o':
      case '--out':
        out = next();
        break;
      case '--nft-out':
        nftOut = next();
        break;
      case '--port':
        ports.push(intIn(flag, next(), 1, 65535));
        break;
      default:
        throw new KeepalivedUsageError(`unknown option ${JSON.stringify(argv[i])}`);
    }
  }
  if (help) return { options: { ...KEEPALIVED_DEFAULTS, vip: '', interface: '', priority: 1, unicastPeers: [] }, nftOut, ports, configFile, out, help };
  const missing = (['vip', 'interface', 'priority'] as const).filter((k) => o[k] === undefined).map((k) => `--${k}`);
  if (missing.length > 0) throw new KeepalivedUsageError(`missing ${missing.join(', ')}`);
  if (o.readyUrl !== undefined && configFile !== undefined) throw new KeepalivedUsageError('give --ready-url or -c FILE, not both');
  if (ports.length > 0 && nftOut === undefined) throw new KeepalivedUsageError('--port names the ports of --nft-out FILE; give --nft-out too');
  if (nftOut !== undefined && nftOut === out) throw new KeepalivedUsageError('--nft-out and -o must name different files');
  return {
    options: { ...KEEPALIVED_DEFAULTS, ...o, unicastPeers: peers } as KeepalivedOptions,
    nftOut,
    ports,
    configFile,
    out,
    help,
  };
}

/** keepalived's configuration text for `o`. Pure. */
export function renderKeepalivedConfig(o: KeepalivedOptions): string {
  const v6 = isIP(o.vip.split('/')[0]!) === 6;
  const vip = o.vip.includes('/') ? o.vip : `${o.vip}/${v6 ? 128 : 32}`;
  const timeoutSec = Math.max(1, Math.floor(o.checkIntervalSec));
  const lines = [
    '# Written by `portico keepalived`: the virtual address follows the ready Portico node.',
    'global_defs {',
    '    enable_script_security',
    `    script_user ${o.scriptUser}`,
    '}',
    '',
    '# Fails (non-zero exit) unless Portico answers 200: not while starting, draining or with no listener up.',
    'vrrp_script portico_ready {',
    `    script "${o.curl} --silent --fail ${o.readyInsecure === true ? '--insecure ' : ''}--output /dev/null --max-time ${timeoutSec} ${o.readyUrl}"`,
    `    interval ${o.checkIntervalSec}`,
    `    timeout ${timeoutSec}`,
    `    fall ${o.fall}`,
    `    rise ${o.rise}`,
    '}',
    '',
    'vrrp_instance portico {',
    '    state BACKUP',
    `    interface ${o.interface}`,
    `    virtual_router_id ${o.routerId}`,
    `    priority ${o.priority}`,
    `    advert_int ${o.advertIntSec}`,
  ];
  if (v6 || o.advertIntSec < 1) lines.push('    version 3');
  if (o.nopreempt) lines.push('    nopreempt');
  if (o.unicastPeers.length > 0) {
    lines.push('    unicast_peer {');
    for (const p of o.unicastPeers) lines.push(`        ${p}`);
    lines.push('    }');
  }
  lines.push('    virtual_ipaddress {', `        ${vip} dev ${o.interface}`, '    }', '    track_script {', '        portico_ready', '    }', '}', '');
  return lines.join('\n');
}

/** The TCP ports of `listeners` that receive connections to `vip`: those bound to it or to a wildcard address. */
export function listenerPortsOn(vip: string, listeners: readonly { readonly listen: { readonly host: string; readonly port: number } }[]): number[] {
  const addr = vip.split('/')[0]!.toLowerCase();
  const v6 = isIP(addr) === 6;
  const out = new Set<number>();
  for (const l of listeners) {
    const h = l.listen.host.toLowerCase();
    // '::' takes IPv4 as well (dual stack); '0.0.0.0' only IPv4.
    const wild = h === '' || h === '::' || (h === '0.0.0.0' && !v6);
    if (l.listen.port > 0 && (wild || h === addr)) out.add(l.listen.port);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * nftables rules for a node that may hold `vip`. When Portico is not listening (killed, restarting,
 * or stopped after a drain) the kernel answers a connection attempt to the address with a reset,
 * and the client fails at once, during the second or two before keepalived moves the address.
 * These rules drop that reset (the RST+ACK with sequence number 0 that answers a SYN; resets of
 * established connections carry a real sequence number and pass), so the attempt looks lost, and
 * the client's TCP sends its SYN again (after 1 s, then 3 s, 7 s...), by then to the node that
 * took the address over: the request is late, not failed. Nothing else is touched: while
 * Portico listens no such reset is sent, and a node without the address receives no SYN for it.
 * `nft -f FILE` loads them again idempotently (the table is replaced). Pure.
 */
export function renderNftRules(vip: string, ports: readonly number[]): string {
  const addr = checkVip(vip).split('/')[0]!;
  if (ports.length === 0) throw new KeepalivedUsageError('--nft-out needs at least one port (--port N, or -c FILE with listeners on the virtual address)');
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new KeepalivedUsageError(`port ${p} is not 1..65535`);
  const family = isIP(addr) === 6 ? 'ip6' : 'ip';
  const set = [...new Set(ports)].sort((a, b) => a - b).join(', ');
  return [
    '# Written by `portico keepalived --nft-out`; load with `nft -f` on every node of the pair.',
    `# A connection attempt to ${addr} on a port where Portico is not listening goes unanswered`,
    '# instead of refused: the client sends its SYN again and reaches whichever node holds the address.',
    'table inet portico_vip',
    'delete table inet portico_vip',
    'table inet portico_vip {',
    '    chain output {',
    '        type filter hook output priority filter; policy accept;',
    `        ${family} saddr ${addr} tcp sport { ${set} } tcp flags & (syn | ack | rst) == (ack | rst) tcp sequence 0 counter drop`,
    '    }',
    '}',
    '',
  ].join('\n');
}
