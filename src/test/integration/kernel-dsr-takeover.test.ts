import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { holdsAddress, keepalivedSkip, startKeepalived, stopProc, writeKeepalivedConfig } from '../../test-helpers/keepalived.js';
import { buildL4Topology, Netns, netnsSkip, serverAddr, VIP, type L4Topology, type NsProc, runsHere } from '../../test-helpers/netns.js';

/**
 * A keepalived take-over between two dsr balancers with `balance: hash` keeps the established
 * flows on their servers (SPEC §7, §10; Katran's property, which neither LVS nor nftlb offers).
 *
 *   client (40 addresses) ── router ── bridge ─┬─ n1: Portico, dsr, hash; keepalived priority 150
 *                                              ├─ n2: the same; keepalived priority 100
 *                                              └─ s1, s2, s3 (`portico dsr-setup --apply`)
 *
 * Both nodes run the same configuration; keepalived runs the configuration `portico keepalived`
 * writes for it and moves the virtual address. Long-lived keep-alive connections are opened
 * through the master; then the master fails, and its peer, whose flow map is empty (it never saw
 * these flows), places their next packets by its Maglev table alone: every connection keeps its
 * socket and its server. Then the first node comes back with a fresh table and takes the address
 * back, and the same holds. New connections are placed as before each take-over, address by
 * address. Take-over times and the connections kept are printed.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PORTICO = join(ROOT, 'bin', 'portico');
/** The client's addresses: the first LONG_SOURCES hold the long-lived connections. */
const SOURCES = Array.from({ length: 40 }, (_, i) => `198.18.1.${20 + i}`);
const LONG_SOURCES = 10;
const PER_SOURCE = 3;
const LONG = LONG_SOURCES * PER_SOURCE;
const PERIOD_MS = 200;
/**
 * The readiness check: every 2 s (curl's limit 2 s), given up after 3 failures. `portico
 * keepalived`'s defaults (1 s, 2 failures) took the address over in 1.9 s here on a quiet
 * machine, but on a loaded one a check that takes more than a second fails, and both nodes
 * could give the address up at once (the client then sees EHOSTUNREACH).
 */
const CHECK = ['--check-interval', '2', '--fall', '3'];

/**
 * A server answering its name on port 80 (argv: name). It keeps an idle keep-alive connection
 * 60 s (Node's default is 5 s): while nobody holds the address the next request is late, and the
 * server must not close the connection meanwhile (its FIN, then its reset of the late request,
 * would end the connection whatever the balancers do).
 */
const SERVER = `
const s = require('http').createServer((q, r) => r.end(process.argv[1]));
s.keepAliveTimeout = 60000;
s.listen(80, '0.0.0.0', () => console.log('listening'));
`;

/**
 * `node -e` (argv: host port sources perSource periodMs): perSource keep-alive connections from
 * each source address, each sending a request every periodMs on its own socket; one line per
 * answer {c, src, port, sock, server} or error {c, src, error}. A request may wait 60 s (a packet
 * lost in a take-over is sent again by TCP). When standard input ends it sends no more, waits for
 * the requests under way and prints {"end":true}.
 */
const LONG_CLIENT = `
const http = require('http');
const [host, port, sources, per, period] = [process.argv[1], Number(process.argv[2]), process.argv[3].split(','), Number(process.argv[4]), Number(process.argv[5])];
const ids = new WeakMap(); let nextSock = 0; let stop = false; const open = new Map();
const end = () => { if (stop && open.size === 0) process.stdout.write(JSON.stringify({ end: true }) + '\\n', () => process.exit(0)); };
sources.forEach((src, si) => { for (let k = 0; k < per; k++) {
  const c = si * per + k;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const next = () => {
    if (stop) return end();
    const t0 = Date.now();
    open.set(c, t0);
    let done = false;
    const fin = (line) => { if (done) return; done = true; open.delete(c); console.log(JSON.stringify(line)); setTimeout(next, period); };
    const req = http.get({ host, port, path: '/', agent, localAddress: src, timeout: 60000 }, (res) => {
      const s = res.socket; if (!ids.has(s)) ids.set(s, nextSock++);
      let b = ''; res.setEncoding('utf8'); res.on('data', (d) => (b += d));
      res.on('end', () => fin({ c, src, port: s.localPort, sock: ids.get(s), server: b, sent: t0, ms: Date.now() - t0 }));
      res.on('error', (e) => fin({ c, src, error: e.code || String(e) }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => fin({ c, src, error: e.code || String(e) }));
  };
  setTimeout(next, (c * period) / (sources.length * per));
} });
process.stdin.on('end', () => { stop = true; console.log(JSON.stringify({ stopping: [...open].map(([c, t]) => ({ c, ms: Date.now() - t })) })); end(); }); process.stdin.resume();
`;

/** `node -e` (argv: host port sources count): count fresh connections from each source; prints {bySource: {src: {server: n}}, errors}. */
const FRESH_CLIENT = `
const http = require('http');
const [host, port, sources, count] = [process.argv[1], Number(process.argv[2]), process.argv[3].split(','), Number(process.argv[4])];
const bySource = {}; const errors = []; const jobs = [];
for (const src of sources) for (let i = 0; i < count; i++) jobs.push(src);
let done = 0;
const one = () => {
  const src = jobs.shift(); if (src === undefined) return;
  const fin = (server, err) => { if (err) errors.push(src + ' ' + err); else { const m = (bySource[src] ??= {}); m[server] = (m[server] || 0) + 1; } if (++done === sources.length * count) console.log(JSON.stringify({ bySource, errors })); else one(); };
  const req = http.get({ host, port, path: '/', agent: false, localAddress: src, timeout: 10000 }, (res) => {
    let b = ''; res.setEncoding('utf8'); res.on('data', (d) => (b += d)); res.on('end', () => fin(b)); res.on('error', (e) => fin('', e.code || String(e)));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => fin('', e.code || String(e)));
};
for (let i = 0; i < 8; i++) one();
`;

interface Answer {
  readonly c: number;
  readonly src: string;
  readonly port?: number;
  readonly sock?: number;
  readonly server?: string;
  readonly error?: string;
  readonly end?: boolean;
  /** When the request was sent, and how long its answer took. */
  readonly sent?: number;
  readonly ms?: number;
  /** Index of the line in the output (answers after a mark are those with a larger index). */
  readonly i: number;
}

/**
 * Wait (bounded) for `fn`, trying every 100 ms: most conditions here run `ip` or `nft` in a
 * namespace, and trying them every few milliseconds loads the machine enough to make the
 * keepalived readiness checks time out.
 */
async function poll(fn: () => boolean | Promise<boolean>, ms: number, what: string, everyMs = 100): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() >= until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The client's lines so far, parsed once each (the output grows to megabytes). */
const parsed = new WeakMap<NsProc, { at: number; lines: Answer[] }>();
function answers(p: NsProc): Answer[] {
  let st = parsed.get(p);
  if (st === undefined) parsed.set(p, (st = { at: 0, lines: [] }));
  const end = p.out.lastIndexOf('\n');
  if (end >= st.at) {
    for (const l of p.out.slice(st.at, end).split('\n')) {
      if (l.startsWith('{')) st.lines.push({ ...(JSON.parse(l) as Omit<Answer, 'i'>), i: st.lines.length });
    }
    st.at = end + 1;
  }
  return st.lines;
}

describe('keepalived take-over between two kernel dsr nodes with balance: hash (network namespaces)', () => {
  const skip = netnsSkip(['nft']) ?? keepalivedSkip();
  if (!runsHere(skip)) return;
  let net: Netns | undefined;
  let t: L4Topology;
  let dir = '';
  const portico: (NsProc | undefined)[] = [undefined, undefined];
  const keepalived: (NsProc | undefined)[] = [undefined, undefined];
  const configs: string[] = [];
  const confs: string[] = [];
  let long: NsProc | undefined;
  /** Each long-lived connection's socket and server, as first answered. */
  const first = new Map<number, { sock: number; server: string; src: string; port: number }>();
  /** Where each source address's new connections went (server by address) before the take-over. */
  let placed: Record<string, string> = {};
  const macOf: Record<string, string> = {};

  const node = (i: number): string => t.nodes[i]!;
  const holds = (i: number): boolean => holdsAddress(net!, node(i), 'eth0', VIP);
  const nftText = (i: number, what: string[]): string => net!.run(node(i), ['nft', ...what], false).stdout;
  /** The node's in-counters (frames forwarded to the servers), summed. */
  const forwarded = (i: number): number => {
    const r = net!.run(node(i), ['nft', '-j', 'list', 'counters', 'table', 'netdev', 'portico'], false);
    if (r.status !== 0) return 0;
    const doc = JSON.parse(r.stdout) as { nftables: { counter?: { name: string; packets: number } }[] };
    return doc.nftables.reduce((a, o) => a + (o.counter !== undefined && /^web_in_/.test(o.counter.name) ? o.counter.packets : 0), 0);
  };
  /** The node's flow map: client address . port → server MAC. */
  const flows = (i: number): Map<string, string> => {
    const out = new Map<string, string>();
    const text = nftText(i, ['list', 'map', 'netdev', 'portico', 'web_flows']);
    for (const m of text.matchAll(/(\d+\.\d+\.\d+\.\d+) \. (\d+)(?: timeout \S+)?(?: expires \S+)? : ([0-9a-f:]{17})/g)) out.set(`${m[1]}:${m[2]}`, m[3]!);
    return out;
  };
  /** The node's slot map as text (its elements). */
  const slots = (i: number): string => {
    const text = nftText(i, ['list', 'map', 'netdev', 'portico', 'web_slots']);
    return text.slice(text.indexOf('elements'));
  };
  const startPortico = async (i: number): Promise<NsProc> => {
    const p = net!.spawn(`portico-n${i + 1}`, node(i), [process.execPath, PORTICO, 'start', '-c', configs[i]!], { cwd: dir });
    await poll(() => /listener web on/.test(p.out) || p.child.exitCode !== null, 60_000, `portico on n${i + 1} to start`);
    assert.equal(p.child.exitCode, null, `${p.out}\n${net!.run(node(i), ['ss', '-ltnp'], false).stdout}`);
    // Both nodes must know the three servers' MACs to render the whole table.
    await poll(() => Object.values(macOf).every((m) => slots(i).includes(m)), 30_000, `n${i + 1}'s slot map to name the three servers`);
    portico[i] = p;
    return p;
  };
  const fresh = (sources: readonly string[], count: number): { bySource: Record<string, Record<string, number>>; errors: string[] } => {
    const r = net!.run(t.client, [process.execPath, '-e', FRESH_CLIENT, VIP, '80', sources.join(','), String(count)]);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { bySource: Record<string, Record<string, number>>; errors: string[] };
  };
  /** Every long-lived connection has answered `n` more times after line index `mark`. */
  const answeredSince = (mark: number, n: number): boolean => {
    const count = new Map<number, number>();
    for (const a of answers(long!)) if (a.i > mark && a.server !== undefined) count.set(a.c, (count.get(a.c) ?? 0) + 1);
    return count.size === LONG && [...count.values()].every((k) => k >= n);
  };
  const out = (): string => [...portico, ...keepalived].filter((p) => p !== undefined).map((p) => `--- ${p!.name}\n${p!.out.slice(-1500)}`).join('\n');

  /**
   * The long-lived connections after line `mark`: how many kept their socket and server with no
   * error, and the others' stories.
   */
  const survivors = (mark: number): { kept: number; broken: string[] } => {
    const broken = new Set<string>();
    for (const a of answers(long!)) {
      if (a.i <= mark || a.c === undefined) continue;
      const f = first.get(a.c)!;
      if (a.error !== undefined) broken.add(`${a.c} (${a.src}): ${a.error}`);
      else if (a.sock !== f.sock) broken.add(`${a.c} (${a.src}): a new socket`);
      else if (a.server !== f.server) broken.add(`${a.c} (${a.src}): answered by ${a.server}, not ${f.server}`);
    }
    const cs = new Set([...broken].map((b) => b.split(' ')[0]));
    return { kept: LONG - cs.size, broken: [...broken] };
  };

  /**
   * The other node holds the address and `i` carries none of the long-lived flows: its flow map,
   * flushed, is still empty a few answers later.
   */
  const quiet = async (i: number): Promise<boolean> => {
    if (!holds(1 - i) || holds(i)) return false;
    net!.run(node(i), ['nft', 'flush', 'map', 'netdev', 'portico', 'web_flows']);
    const mark = answers(long!).length - 1;
    await poll(() => answers(long!).length - 1 >= mark + LONG, 60_000, 'a round of answers');
    return flows(i).size === 0 && holds(1 - i) && !holds(i);
  };
  const diag = (): string =>
    `router: ${net!.run(t.router, ['ip', 'neigh'], false).stdout}\nfdb: ${net!.run(t.sw, ['bridge', 'fdb', 'show', 'br', 'br0'], false).stdout}\nn1 ${net!.mac(node(0), 'eth0')} holds ${holds(0)}, n2 ${net!.mac(node(1), 'eth0')} holds ${holds(1)}\n${out()}`;
  /** The slowest answer to a request sent since `since` (ms). */
  /** The slowest answer among those printed after line `mark` (requests in flight then included). */
  const slowest = (mark: number): number => answers(long!).reduce((m, a) => (a.i > mark && a.ms !== undefined && a.ms > m ? a.ms : m), 0);
  const brokenText = (s: { broken: string[] }): string => (s.broken.length > 0 ? `; broken: ${s.broken.slice(0, 10).join('; ')}` : '');

  before(async () => {
    if (skip !== undefined) return;
    net = new Netns('kto');
    t = buildL4Topology(net, { servers: 3, nodes: 2, balancer: false });
    dir = mkdtempSync(join(tmpdir(), 'portico-dsr-takeover-'));
    for (const a of SOURCES) net.run(t.client, ['ip', 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
    const servers: NsProc[] = [];
    for (const [i, ns] of t.servers.entries()) {
      assert.match(net.run(ns, [process.execPath, PORTICO, 'dsr-setup', '--vip', VIP, '--apply']).stdout, /applied/);
      servers.push(net.spawn(`server-s${i + 1}`, ns, [process.execPath, '-e', SERVER, `s${i + 1}`]));
      macOf[`s${i + 1}`] = net.mac(ns, 'eth0');
    }
    await poll(() => servers.every((s) => s.out.includes('listening')), 30_000, 'the servers to listen');
    for (const i of [0, 1]) {
      const config = join(dir, `portico-n${i + 1}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          admin: { listen: '127.0.0.1:9090' },
          cluster: { workers: 1, node: `n${i + 1}` },
          stateDir: join(dir, `state-n${i + 1}`),
          listeners: [{ name: 'web', protocol: 'tcp', listen: `${VIP}:80`, dataPlane: 'kernel', forwarding: 'dsr', pool: 'web', kernel: { interface: 'eth0', addressHeldBy: 'keepalived' } }],
          pools: [
            {
              name: 'web',
              balance: 'hash',
              hash: { key: 'source-ip' },
              retries: 0,
              health: { type: 'tcp', interval: '500ms', timeout: '400ms', rise: 1, fall: 2 },
              // Listed in another order on each node: the table is built over the names.
              servers: (i === 0 ? [1, 2, 3] : [3, 1, 2]).map((k) => ({ name: `s${k}`, address: `${serverAddr(k)}:80` })),
            },
          ],
        }),
      );
      configs.push(config);
      const conf = join(dir, `keepalived-n${i + 1}.conf`);
      const text = writeKeepalivedConfig({ config, out: conf, vip: `${VIP}/24`, interface: 'eth0', priority: i === 0 ? 150 : 100, routerId: 43, extra: CHECK });
      assert.match(text, /track_script/);
      confs.push(conf);
      // Neither node holds the address before keepalived gives it: Portico starts all the same.
      assert.equal(holds(i), false);
      await startPortico(i);
      keepalived[i] = startKeepalived(net, node(i), `keepalived-n${i + 1}`, conf, dir);
    }
    await poll(() => holds(0) && !holds(1), 90_000, 'n1 (priority 150) to hold the virtual address').catch((err: unknown) => {
      throw new Error(`${String(err)}\n${out()}`);
    });
  });

  after(async () => {
    try {
      if (long !== undefined) long.child.stdin?.end();
      await net?.destroy();
    } finally {
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    }
  });

  it('both nodes hold the same Maglev table; new connections are placed by address and spread', { skip, timeout: 120_000 }, () => {
    assert.equal(slots(0), slots(1), "the nodes' slot maps are the same, bucket for bucket");
    const h = fresh(SOURCES, 3);
    assert.deepEqual(h.errors, []);
    for (const [src, m] of Object.entries(h.bySource)) {
      assert.equal(Object.keys(m).length, 1, `${src}'s connections all went to one server: ${JSON.stringify(m)}`);
      placed[src] = Object.keys(m)[0]!;
    }
    assert.equal(Object.keys(placed).length, SOURCES.length);
    const spread = new Map<string, number>();
    for (const server of Object.values(placed)) spread.set(server, (spread.get(server) ?? 0) + 1);
    process.stdout.write(`# dsr take-over: the ${SOURCES.length} client addresses are placed ${JSON.stringify(Object.fromEntries([...spread].sort()))}\n`);
    assert.equal(spread.size, 3, `the addresses spread over the three servers: ${JSON.stringify(placed)}`);
  });

  it('the master dies (SIGKILL of its Portico): the other node takes the address and every long-lived connection keeps its server', { skip, timeout: 240_000 }, async () => {
    assert.ok(Object.keys(placed).length > 0, 'the first test placed the addresses');
    long = net!.spawn('long', t.client, [process.execPath, '-e', LONG_CLIENT, VIP, '80', SOURCES.slice(0, LONG_SOURCES).join(','), String(PER_SOURCE), String(PERIOD_MS)]);
    await poll(() => answeredSince(-1, 3), 60_000, 'three answers on every long-lived connection');
    for (const a of answers(long)) if (a.server !== undefined && !first.has(a.c)) first.set(a.c, { sock: a.sock!, server: a.server, src: a.src, port: a.port! });
    assert.equal(first.size, LONG);
    for (const f of first.values()) assert.equal(f.server, placed[f.src], `a long-lived connection from ${f.src} is on its address's server`);
    assert.ok(new Set([...first.values()].map((f) => f.server)).size >= 2, 'the long-lived connections are on several servers');
    // n2 must not know these flows: a readiness check that timed out on a loaded machine may
    // have moved the address to it for a moment, so its flow map is emptied here. From now on
    // only its Maglev table can place their packets.
    await poll(() => quiet(1), 60_000, "n1 to carry the flows alone (n2's flow map flushed stays empty)").catch((err: unknown) => {
      throw new Error(`${String(err)}\n${diag()}`);
    });
    const n2Before = forwarded(1);

    const atKill = answers(long).length - 1;
    const killedAt = Date.now();
    portico[0]!.child.kill('SIGKILL');
    await portico[0]!.exited;
    let vipAt = 0;
    let forwardedAt = 0;
    await poll(
      () => {
        if (vipAt === 0 && holds(1)) vipAt = Date.now();
        if (forwardedAt === 0 && forwarded(1) > n2Before) forwardedAt = Date.now();
        return vipAt !== 0 && forwardedAt !== 0 && !holds(0);
      },
      60_000,
      'n2 to hold the address and forward, n1 to give it up',
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${out()}`);
    });
    // Once n2 forwards, every connection answers five more times.
    const mark = answers(long).length - 1;
    await poll(() => answeredSince(mark, 5), 60_000, 'five more answers on every long-lived connection through n2');
    // n1's rules are still in its kernel (Portico was killed), but nothing reaches it any more.
    const n1Before = forwarded(0);
    const mark2 = answers(long).length - 1;
    await poll(() => answeredSince(mark2, 3), 60_000, 'three more answers');
    assert.equal(forwarded(0), n1Before, 'n1 forwarded nothing after the take-over: n2 carried the flows');
    // n2 placed each flow by its slot map alone and remembered it, with its server's MAC.
    const learnt = flows(1);
    for (const f of first.values()) assert.equal(learnt.get(`${f.src}:${f.port}`), macOf[f.server], `n2's flow map has ${f.src}:${f.port} on ${f.server}`);
    const s = survivors(-1);
    process.stdout.write(
      `# dsr take-over (SIGKILL of the master's Portico; readiness check ${CHECK.join(' ')}): n2 held the address ${vipAt - killedAt} ms after the kill and forwarded its first frame at ${forwardedAt - killedAt} ms; ` +
        `${s.kept} of ${LONG} long-lived connections kept their socket and server; slowest answer since the kill ${slowest(atKill)} ms${brokenText(s)}\n`,
    );
    assert.deepEqual(s.broken, [], 'every long-lived connection kept its socket and its server');
    // New connections: the same server for each address as before.
    const h = fresh(SOURCES, 2);
    assert.deepEqual(h.errors, []);
    for (const [src, m] of Object.entries(h.bySource)) assert.deepEqual(Object.keys(m), [placed[src]], `${src}: ${JSON.stringify(m)} after the take-over, ${placed[src]} before`);
  });

  it('n1 comes back with a fresh table and takes the address back: the connections keep their servers again', { skip, timeout: 240_000 }, async () => {
    assert.equal(first.size, LONG, 'the previous test opened the long-lived connections');
    await stopProc(portico[0]!, 'SIGKILL'); // (the previous test killed it)
    // keepalived on n1 stopped first, so that n1 is seen with its fresh (empty) flow map before it takes the address.
    await stopProc(keepalived[0]!);
    await startPortico(0);
    assert.equal(flows(0).size, 0, "n1's new table has an empty flow map");
    assert.equal(slots(0), slots(1), 'the restarted node renders the same slot map');
    const before0 = forwarded(0);
    const atStart = answers(long!).length - 1;
    const startedAt = Date.now();
    keepalived[0] = startKeepalived(net!, node(0), 'keepalived-n1-again', confs[0]!, dir);
    let vipAt = 0;
    await poll(
      () => {
        if (vipAt === 0 && holds(0)) vipAt = Date.now();
        return vipAt !== 0 && !holds(1) && forwarded(0) > before0;
      },
      60_000,
      'n1 to take the address back and forward',
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${out()}`);
    });
    const mark = answers(long!).length - 1;
    await poll(() => answeredSince(mark, 5), 60_000, 'five more answers on every long-lived connection through n1');
    const learnt = flows(0);
    for (const f of first.values()) assert.equal(learnt.get(`${f.src}:${f.port}`), macOf[f.server], `n1's flow map has ${f.src}:${f.port} on ${f.server}`);
    const s = survivors(-1);
    process.stdout.write(
      `# dsr fail-back (n1's Portico restarted, then its keepalived): n1 held the address ${vipAt - startedAt} ms after keepalived started; ` +
        `${s.kept} of ${LONG} long-lived connections kept their socket and server through both take-overs; slowest answer since ${slowest(atStart)} ms${brokenText(s)}\n`,
    );
    assert.deepEqual(s.broken, []);
    const h = fresh(SOURCES, 2);
    assert.deepEqual(h.errors, []);
    for (const [src, m] of Object.entries(h.bySource)) assert.deepEqual(Object.keys(m), [placed[src]], `${src}: ${JSON.stringify(m)}`);
  });

  it("the master is lost (its link goes down): n2 takes the address when the adverts stop, and TCP's retransmissions find the same servers", { skip, timeout: 240_000 }, async () => {
    assert.equal(first.size, LONG, 'the previous tests opened the long-lived connections');
    await poll(() => quiet(1), 60_000, "n1 to carry the flows alone (n2's flow map flushed stays empty)").catch((err: unknown) => {
      throw new Error(`${String(err)}\n${diag()}`);
    });
    const n2Before = forwarded(1);
    const atLoss = answers(long!).length - 1;
    const lostAt = Date.now();
    // Nothing reaches n1 or leaves it any more: no advert, no forwarded frame.
    net!.run(node(0), ['ip', 'link', 'set', 'eth0', 'down']);
    let vipAt = 0;
    await poll(
      () => {
        if (vipAt === 0 && holds(1)) vipAt = Date.now();
        return vipAt !== 0 && forwarded(1) > n2Before;
      },
      60_000,
      'n2 to hold the address and forward',
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${out()}`);
    });
    // The frames sent while nobody held the address were lost; TCP sends them again (after up to a few seconds).
    const mark = answers(long!).length - 1;
    await poll(() => answeredSince(mark, 5), 90_000, 'five more answers on every long-lived connection through n2');
    const learnt = flows(1);
    for (const f of first.values()) assert.equal(learnt.get(`${f.src}:${f.port}`), macOf[f.server], `n2's flow map has ${f.src}:${f.port} on ${f.server}`);
    const s = survivors(-1);
    process.stdout.write(
      `# dsr take-over (n1's link down): n2 held the address ${vipAt - lostAt} ms after; ${s.kept} of ${LONG} long-lived connections kept their socket and server; ` +
        `slowest answer since ${slowest(atLoss)} ms (TCP retransmission)${brokenText(s)}\n`,
    );
    assert.deepEqual(s.broken, []);
    const h = fresh(SOURCES, 2);
    assert.deepEqual(h.errors, []);
    for (const [src, m] of Object.entries(h.bySource)) assert.deepEqual(Object.keys(m), [placed[src]], `${src}: ${JSON.stringify(m)}`);
    // The client ends: every request under way is answered.
    long!.child.stdin!.end();
    await poll(() => answers(long!).some((a) => a.end === true), 90_000, 'the long-lived client to end').catch((err: unknown) => {
      const pid = long!.child.pid;
      const stat = pid === undefined ? '' : net!.run(t.client, ['sh', '-c', `cat /proc/${pid}/stat /proc/${pid}/wchan 2>&1; ls -l /proc/${pid}/fd 2>&1`], false).stdout;
      throw new Error(`${String(err)}\nexit ${long!.child.exitCode} ${long!.child.signalCode} stdin ${long!.child.stdin?.writableEnded} ${long!.child.stdin?.destroyed}\n${stat}\n${long!.out.split('\n').filter((l) => l.includes('stopping')).join('\n')}\n${long!.out.slice(-600)}`);
    });
  });
});
