import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';

/**
 * The Ethernet addresses of the real servers for `forwarding: dsr` (SPEC §10): the kernel rewrites
 * a packet's destination MAC to its server's, so Portico learns each server's MAC from the
 * neighbour table (`ip -j neigh`), provoking resolution with a datagram when an entry is missing,
 * and notices when one changes (a replaced host or NIC on the same address) so that the map is
 * rendered again.
 */

/** One row of `ip -j neigh`. */
export interface Neighbour {
  readonly address: string;
  readonly device: string;
  /** Lower case, `aa:bb:cc:dd:ee:ff`; undefined while unresolved. */
  readonly mac: string | undefined;
  readonly states: readonly string[];
}

export class NeighbourError extends Error {}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** States whose lladdr is not to be used: resolution failed or is still under way. */
const UNUSABLE = new Set(['FAILED', 'INCOMPLETE', 'NONE']);

/** Parse the output of `ip -j neigh [show ...]`. Throws NeighbourError on anything else. */
export function parseNeighbours(text: string): Neighbour[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text.trim() === '' ? '[]' : text);
  } catch (err) {
    throw new NeighbourError(`ip -j neigh printed something that is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc)) throw new NeighbourError('ip -j neigh printed JSON that is not a list');
  const out: Neighbour[] = [];
  for (const row of doc as unknown[]) {
    if (typeof row !== 'object' || row === null) throw new NeighbourError('ip -j neigh: a row is not an object');
    const r = row as Record<string, unknown>;
    if (typeof r['dst'] !== 'string') throw new NeighbourError('ip -j neigh: a row has no dst');
    const states = Array.isArray(r['state']) ? (r['state'] as unknown[]).filter((s): s is string => typeof s === 'string') : [];
    const ll = typeof r['lladdr'] === 'string' ? r['lladdr'].toLowerCase() : undefined;
    out.push({ address: r['dst'], device: typeof r['dev'] === 'string' ? r['dev'] : '', mac: ll !== undefined && MAC.test(ll) ? ll : undefined, states });
  }
  return out;
}

/** The MAC to use for `address` on `device` (undefined when none is resolved there). */
export function usableMac(rows: readonly Neighbour[], address: string, device: string): string | undefined {
  for (const r of rows) {
    if (r.address !== address || (r.device !== '' && r.device !== device) || r.mac === undefined) continue;
    if (r.states.some((s) => UNUSABLE.has(s))) continue;
    return r.mac;
  }
  return undefined;
}

function isStale(rows: readonly Neighbour[], address: string): boolean {
  return rows.some((r) => r.address === address && r.states.includes('STALE'));
}

/** `ip -j neigh show dev DEVICE`, as text. */
export function readNeighbourTable(device: string, ipBinary = 'ip'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ipBinary, ['-j', 'neigh', 'show', 'dev', device], { timeout: 5000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new NeighbourError(`ip -j neigh show dev ${device}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export interface NeighbourWatchOptions {
  /** The segment the servers are on (`kernel.interface`). */
  readonly device: string;
  /** How often the table is read again (and missing entries provoked). */
  readonly intervalMs: number;
  /** Called with every address's MAC each time one of them is learnt, changes or is lost. */
  readonly onChange: (macs: ReadonlyMap<string, string>) => void;
  /** Reads the table (default: `ip -j neigh show dev`); tests give their own. */
  readonly read?: ((device: string) => Promise<string>) | undefined;
  /** Makes the kernel resolve an address (default: a UDP datagram to its discard port). */
  readonly provoke?: ((address: string) => void) | undefined;
  readonly onError?: ((err: Error) => void) | undefined;
}

/**
 * Keeps the MACs of a set of addresses on one device. `resolve()` waits (with a bound) until every
 * address has one; `start()` reads the table again every interval and calls `onChange` when a MAC is
 * learnt, changes or is lost, provoking resolution of the addresses that have none.
 */
export class NeighbourWatch {
  private readonly o: NeighbourWatchOptions;
  private addresses: readonly string[] = [];
  private macs = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private sock: Socket | undefined;
  private busy = false;

  constructor(o: NeighbourWatchOptions) {
    this.o = o;
  }

  /** The addresses to follow (the pool's servers); a change is picked up at the next read. */
  setAddresses(addresses: readonly string[]): void {
    for (const a of addresses) if (isIP(a) !== 4) throw new NeighbourError(`${a} is not an IPv4 address (dsr forwards IPv4 frames)`);
    this.addresses = [...new Set(addresses)];
  }

  /** The MACs known now, by address. */
  current(): ReadonlyMap<string, string> {
    return this.macs;
  }

  /**
   * Read the table once; provoke resolution of the addresses without a usable entry. Returns
   * whether anything changed (and then `onChange` was called).
   */
  async refresh(): Promise<boolean> {
    const rows = parseNeighbours(await (this.o.read ?? readNeighbourTable)(this.o.device));
    const next = new Map<string, string>();
    for (const a of this.addresses) {
      const mac = usableMac(rows, a, this.o.device);
      if (mac !== undefined) next.set(a, mac);
      // No entry: resolve it. A stale one: have the kernel confirm it, so a MAC that changed
      // without a gratuitous ARP is noticed (the probes of the old address fail, the next
      // resolution finds the new one).
      if (mac === undefined || isStale(rows, a)) this.provoke(a);
    }
    const changed = next.size !== this.macs.size || [...next].some(([a, m]) => this.macs.get(a) !== m);
    this.macs = next;
    if (changed) this.o.onChange(next);
    return changed;
  }

  /** Wait until every address has a MAC, reading every `pollMs`; throws naming those without one after `timeoutMs`. */
  async resolve(timeoutMs: number, pollMs = 50): Promise<ReadonlyMap<string, string>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      await this.refresh();
      const missing = this.addresses.filter((a) => !this.macs.has(a));
      if (missing.length === 0) return this.macs;
      if (Date.now() >= until) {
        throw new NeighbourError(
          `no MAC address for ${missing.join(', ')} on ${this.o.device} after ${timeoutMs} ms: dsr needs the servers on the same segment as ${this.o.device} (is the address right, the server up, the interface the right one?)`,
        );
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.refresh()
        .catch((err: Error) => this.o.onError?.(err))
        .finally(() => (this.busy = false));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.sock?.close();
    this.sock = undefined;
  }

  private provoke(address: string): void {
    if (this.o.provoke !== undefined) {
      this.o.provoke(address);
      return;
    }
    // Any datagram to the address makes the kernel resolve it; port 9 is discard.
    if (this.sock === undefined) {
      this.sock = createSocket('udp4');
      this.sock.on('error', () => undefined);
      this.sock.unref();
    }
    this.sock.send(Buffer.alloc(0), 9, address, () => undefined);
  }
}
