/** The kernel's connection tracking: a server's flows cut (maint), a listener's flows listed (admin API). */
import { readFile } from 'node:fs/promises';
import { run } from './nft.js';

export interface Flow {
  /** `address:port` of the client. */
  readonly client: string;
  /** `address:port` of the server (after DNAT). */
  readonly server: string;
  readonly protocol: string;
  /** TCP state (`ESTABLISHED` ...), or `ASSURED` / `UNREPLIED` for UDP. */
  readonly state: string;
  /** Seconds since the flow began, when the kernel keeps timestamps (net.netfilter.nf_conntrack_timestamp); else null. */
  readonly age: number | null;
  /** Seconds before the kernel forgets the flow if nothing more passes. */
  readonly timeout: number;
}

/**
 * Delete the flows whose reply comes from `address:port` (a server in maint, or removed at once):
 * their next packet finds no translation and the client's connection ends. Resolves with the
 * count deleted; a missing conntrack binary rejects with the fix.
 */
export async function cutFlows(protocol: string, address: string, port: number): Promise<number> {
  let r;
  try {
    r = await run('conntrack', ['-D', '-p', protocol, '--reply-src', address, '--reply-port-src', String(port)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('conntrack not found: install conntrack (Debian: apt-get install conntrack) so that Portico can cut a server\'s flows');
    throw err;
  }
  const m = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(r.stderr + r.stdout);
  if (m !== null) return Number(m[1]);
  if (r.code !== 0) throw new Error(`conntrack -D failed (exit ${r.code}): ${r.stderr.trim()}`);
  return 0;
}

/** One line of `conntrack -L -o extended` (or of /proc/net/nf_conntrack), parsed; undefined if it is not a flow. */
export function parseConntrackLine(line: string, nowSec: number): (Flow & { vip: string; vport: number }) | undefined {
  const t = line.trim().split(/\s+/);
  // ipv4 2 tcp 6 TIMEOUT [STATE] src= dst= sport= dport= ... src= dst= sport= dport= ...
  const pi = t.findIndex((x) => x === 'tcp' || x === 'udp');
  if (pi < 0) return undefined;
  const protocol = t[pi]!;
  const timeout = Number(t[pi + 2]);
  const kv: [string, string][] = [];
  let state = '';
  for (let i = pi + 3; i < t.length; i++) {
    const x = t[i]!;
    const eq = x.indexOf('=');
    if (eq > 0) kv.push([x.slice(0, eq), x.slice(eq + 1)]);
    else if (/^[A-Z_]+$/.test(x) && kv.length === 0) state = x;
    else if (x === '[ASSURED]' && state === '') state = 'ASSURED';
    else if (x === '[UNREPLIED]' && state === '') state = 'UNREPLIED';
  }
  const first = (k: string, n: number): string | undefined => kv.filter(([a]) => a === k)[n]?.[1];
  const src = first('src', 0);
  const dst = first('dst', 0);
  const sport = first('sport', 0);
  const dport = first('dport', 0);
  const rsrc = first('src', 1);
  const rsport = first('sport', 1);
  if (src === undefined || dst === undefined || sport === undefined || dport === undefined || rsrc === undefined || rsport === undefined) return undefined;
  const start = kv.find(([a]) => a === 'start')?.[1];
  const age = start !== undefined && Number.isFinite(Number(start)) ? Math.max(0, Math.round(nowSec - Number(start) / 1e9)) : null;
  if (state === '') state = line.includes('[UNREPLIED]') ? 'UNREPLIED' : line.includes('[ASSURED]') ? 'ASSURED' : 'NEW';
  return { client: `${src}:${sport}`, server: `${rsrc}:${rsport}`, protocol, state, age, timeout: Number.isFinite(timeout) ? timeout : 0, vip: dst, vport: Number(dport) };
}

/** The flows to `vip:port` (original direction), at most `limit` of them. */
export async function listFlows(protocol: string, vip: string, port: number, limit = 10_000): Promise<Flow[]> {
  let text: string;
  try {
    const r = await run('conntrack', ['-L', '-p', protocol, '--orig-dst', vip, '--orig-port-dst', String(port), '-o', 'extended']);
    text = r.stdout;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    text = await readFile('/proc/net/nf_conntrack', 'utf8').catch(() => {
      throw new Error('conntrack not found and /proc/net/nf_conntrack unreadable: install conntrack (Debian: apt-get install conntrack)');
    });
  }
  const now = Date.now() / 1000;
  const out: Flow[] = [];
  for (const line of text.split('\n')) {
    const f = parseConntrackLine(line, now);
    if (f === undefined || f.protocol !== protocol || f.vip !== vip || f.vport !== port) continue;
    const { vip: _v, vport: _p, ...flow } = f;
    out.push(flow);
    if (out.length >= limit) break;
  }
  return out;
}
