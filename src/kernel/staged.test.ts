import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Netns, netnsSkip, runsHere } from '../test-helpers/netns.js';
import { runHere, useRunner } from './nft.js';
import { KernelPlane, type PlanePart } from './plane.js';
import { renderBodies, type KernelListenerSpec, type KernelSnapshot } from './render.js';
import { parseDeclarations, splitStatements, stagedScripts } from './staged.js';

const spec = (over: Partial<KernelListenerSpec> = {}): KernelListenerSpec => ({
  listener: 'vip',
  protocol: 'tcp',
  vip: '198.18.9.100',
  port: 80,
  forwarding: 'nat',
  balance: 'roundrobin',
  slots: 1000,
  buckets: 4093,
  snat: 'none',
  persistenceMs: 0,
  ...over,
});

const snap = (weights: readonly number[]): KernelSnapshot => ({
  servers: weights.map((_, i) => ({ name: `s${i + 1}`, address: `198.18.8.${11 + i}`, port: 80 })),
  active: weights.map((weight, index) => ({ index, weight })).filter((a) => a.weight > 0),
});

const decls = (parts: { spec: KernelListenerSpec; snap: KernelSnapshot }[]) =>
  parseDeclarations(`table ip portico {\n${renderBodies(parts).ip}}\n`, 'ip', 'portico');

describe('staged table writes: the plan', () => {
  it('splits statements at newlines and semicolons outside braces and quotes', () => {
    assert.deepEqual(
      splitStatements('a b; c\nmap m { x; y; elements = { 1 : 2,\n 3 : 4 } }\nchain c {\n  r "q;}"\n}\n# note\n').map((s) => s.trim()),
      ['a b', 'c', 'map m { x; y; elements = { 1 : 2,\n 3 : 4 } }', 'chain c {\n  r "q;}"\n}'],
    );
  });

  it('reads the declarations of a rendered table and of the same table as nft lists it', () => {
    const ours = decls([{ spec: spec({ persistenceMs: 300_000 }), snap: snap([5, 3, 2]) }]);
    assert.deepEqual(
      [...ours.keys()].filter((k) => !k.startsWith('counter')),
      ['set vip_slots', 'set vip_ctr_in', 'set vip_ctr_out', 'set vip_sticky', 'chain vip_pre', 'chain vip_fwd', 'chain vip_in'],
    );
    assert.equal(ours.get('set vip_sticky')!.dynamic, true);
    assert.equal(ours.get('set vip_slots')!.dynamic, false);
    // nft's own listing: tabs, its order of statements, its units, the counters' values, the entries.
    const listed = parseDeclarations(
      [
        'table ip portico {',
        '\tcounter vip_in_s1 {',
        '\t\tpackets 12 bytes 3400',
        '\t}',
        '\tmap vip_sticky {',
        '\t\ttypeof ip saddr : ip daddr . tcp dport',
        '\t\tsize 65536',
        '\t\tflags dynamic,timeout',
        '\t\ttimeout 5m',
        '\t\telements = { 198.18.1.10 expires 4m59s : 198.18.8.11 . 80 }',
        '\t}',
        '\tchain vip_pre {',
        '\t\ttype nat hook prerouting priority dstnat; policy accept;',
        '\t\tip daddr 198.18.9.100 tcp dport 80 dnat ip to numgen inc mod 1000 map @vip_slots',
        '\t}',
        '}',
      ].join('\n'),
      'ip',
      'portico',
    );
    assert.equal(listed.get('set vip_sticky')!.header, ours.get('set vip_sticky')!.header, 'timeout 5m and 300s, and the order of the statements, are the same header');
    assert.equal(listed.get('chain vip_pre')!.header, ours.get('chain vip_pre')!.header);
    assert.equal(listed.get('counter vip_in_s1')!.header, '');
  });

  it('the same listeners again: chains and static maps flushed and filled in one transaction; nothing created, deleted, or reset', () => {
    const d = decls([{ spec: spec({ persistenceMs: 300_000 }), snap: snap([5, 3, 2]) }]);
    const { stage, commit } = stagedScripts('ip', 'portico', d, d);
    assert.equal(stage, '');
    assert.doesNotMatch(commit, /^delete /m);
    assert.match(commit, /^flush chain ip portico vip_pre$/m);
    assert.match(commit, /^flush map ip portico vip_slots$/m);
    assert.doesNotMatch(commit, /flush map ip portico vip_sticky/, 'the persistence entries are state');
    assert.doesNotMatch(commit, /map vip_sticky \{/);
    assert.doesNotMatch(commit, /counter vip_in_s1 \{/, 'a counter that exists is not declared again');
    assert.match(commit, /map vip_slots \{[^}]*elements = \{/);
  });

  it('a listener added: its counters, then its maps, staged first; its chains in the commit; the others kept', () => {
    const a = { spec: spec(), snap: snap([5, 3, 2]) };
    const b = { spec: spec({ listener: 'web', port: 81 }), snap: snap([1, 1]) };
    const { stage, commit } = stagedScripts('ip', 'portico', decls([a]), decls([a, b]));
    assert.match(stage, /^table ip portico \{\n/);
    assert.ok(stage.indexOf('counter web_in_s1') < stage.indexOf('map web_slots'), 'counters before the maps that name them');
    assert.ok(stage.indexOf('map web_ctr_in') > stage.indexOf('counter web_out_s2'));
    assert.doesNotMatch(stage, /vip_|chain /);
    assert.match(commit, /chain web_pre \{/);
    assert.doesNotMatch(commit, /map web_slots \{/, 'staged already, with its elements');
    assert.doesNotMatch(commit, /^delete /m);
  });

  it('a listener removed: its chains, then its maps, then its counters deleted, after every flush', () => {
    const a = { spec: spec(), snap: snap([5, 3, 2]) };
    const b = { spec: spec({ listener: 'web', port: 81 }), snap: snap([1, 1]) };
    const { stage, commit } = stagedScripts('ip', 'portico', decls([a, b]), decls([a]));
    assert.equal(stage, '');
    const lines = commit.split('\n');
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    assert.ok(at(/^delete chain ip portico web_pre$/) > at(/^flush chain ip portico web_fwd$/));
    assert.ok(at(/^delete map ip portico web_ctr_in$/) > at(/^delete chain ip portico web_fwd$/));
    assert.ok(at(/^delete counter ip portico web_in_s1$/) > at(/^delete map ip portico web_ctr_in$/));
    assert.equal(at(/^delete .* vip_/), -1);
  });

  it('from what the kernel held at start, the dynamic maps are declared afresh (their entries may name servers that left)', () => {
    const d = decls([{ spec: spec({ persistenceMs: 300_000 }), snap: snap([5, 3, 2]) }]);
    const { commit } = stagedScripts('ip', 'portico', d, d, { keepDynamic: false });
    assert.match(commit, /^delete map ip portico vip_sticky$/m);
    assert.match(commit, /map vip_sticky \{/);
    assert.doesNotMatch(commit, /^delete map ip portico vip_slots$/m, 'the static maps are kept all the same');
  });

  it('a map whose declaration changed (the persistence timeout) is deleted and declared again; a server that left loses its counters', () => {
    const was = decls([{ spec: spec({ persistenceMs: 300_000 }), snap: snap([5, 3, 2]) }]);
    const now = decls([{ spec: spec({ persistenceMs: 600_000 }), snap: snap([5, 3]) }]);
    const { commit } = stagedScripts('ip', 'portico', was, now);
    assert.match(commit, /^delete map ip portico vip_sticky$/m);
    assert.match(commit, /map vip_sticky \{[^}]*timeout 600s/);
    assert.match(commit, /^delete counter ip portico vip_in_s3$/m);
    assert.doesNotMatch(commit, /^delete map ip portico vip_slots$/m);
  });
});

/**
 * Real packets: connections to a NAT listener while the table is written again and again (a
 * second listener added and removed, the first one's weights changed). None may be refused.
 */
describe('staged table writes in the kernel (network namespaces)', { concurrency: false }, () => {
  const skip = netnsSkip(['nft']);
  if (!runsHere(skip)) return;
  const net = new Netns('ks');
  let lb = '';
  let client = '';
  let servers: ReturnType<Netns['spawn']> | undefined;
  before(async () => {
    client = net.add('c');
    lb = net.add('lb');
    const srv = net.add('s');
    const t = net.tag;
    const ip = (...args: string[]): void => {
      const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    };
    ip('link', 'add', `${t}c`, 'netns', client, 'type', 'veth', 'peer', 'name', `${t}l`, 'netns', lb);
    ip('link', 'add', `${t}m`, 'netns', lb, 'type', 'veth', 'peer', 'name', `${t}s`, 'netns', srv);
    ip('-n', client, 'addr', 'add', '198.18.9.10/24', 'dev', `${t}c`);
    ip('-n', client, 'link', 'set', `${t}c`, 'up');
    ip('-n', lb, 'addr', 'add', '198.18.9.1/24', 'dev', `${t}l`);
    ip('-n', lb, 'addr', 'add', '198.18.9.100/32', 'dev', `${t}l`);
    ip('-n', lb, 'addr', 'add', '198.18.8.1/24', 'dev', `${t}m`);
    ip('-n', lb, 'link', 'set', `${t}l`, 'up');
    ip('-n', lb, 'link', 'set', `${t}m`, 'up');
    for (const a of ['198.18.8.11', '198.18.8.12', '198.18.8.13']) ip('-n', srv, 'addr', 'add', `${a}/24`, 'dev', `${t}s`);
    ip('-n', srv, 'link', 'set', `${t}s`, 'up');
    ip('-n', srv, 'route', 'add', 'default', 'via', '198.18.8.1');
    net.run(lb, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const server = `const net = require('net'); for (const a of ['198.18.8.11', '198.18.8.12', '198.18.8.13']) net.createServer((s) => { s.on('error', () => {}); s.end(a + '\\n'); }).listen(80, a, () => console.log('listening ' + a));`;
    servers = net.spawn('servers', srv, [process.execPath, '-e', server]);
    for (let i = 0; i < 600 && (servers.out.match(/listening/g) ?? []).length < 3; i++) {
      if (servers.child.exitCode !== null) throw new Error(`the servers exited: ${servers.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((servers.out.match(/listening/g) ?? []).length, 3, `the servers did not start: ${servers.out}`);
    // The plane's nft runs in the balancer's namespace.
    useRunner((cmd, args, input, timeoutMs) => runHere('ip', ['netns', 'exec', lb, cmd, ...args], input, timeoutMs));
  });
  after(async () => {
    useRunner(runHere);
    await net.destroy();
  });

  it('no connection is refused while the table is written 30 times under its traffic, and the persistence entries outlive the writes', async (t) => {
    const plane = new KernelPlane();
    const part = (s: KernelListenerSpec, weights: () => readonly number[]): PlanePart => ({
      name: s.listener,
      spec: () => s,
      snapshot: () => snap(weights()),
      keepOnExit: () => false,
      written: () => {},
    });
    let weights: readonly number[] = [5, 3, 2];
    // With source persistence: its entries (the kernel's own state) must outlive the writes.
    const vip = part(spec({ persistenceMs: 300_000 }), () => weights);
    const other = part(spec({ listener: 'web', port: 81 }), () => [1, 1, 1]);
    await plane.install(vip);
    assert.equal(plane.lastWrite, 'staged');
    // Connections, 10 at a time, until its standard input ends (at most 200,000, at most 120 s).
    const clientJs = `
const net = require('net'); let ok = 0; const codes = {}; let n = 0; let stop = false;
process.stdin.on('end', () => (stop = true)); process.stdin.resume(); setTimeout(() => (stop = true), 120000).unref();
const one = () => new Promise((r) => { const s = net.connect(80, '198.18.9.100'); const t = setTimeout(() => { codes.timeout = (codes.timeout || 0) + 1; s.destroy(); r(); }, 5000);
  s.on('data', () => { clearTimeout(t); ok++; s.destroy(); r(); }); s.on('error', (e) => { clearTimeout(t); codes[e.code] = (codes[e.code] || 0) + 1; r(); }); });
(async () => { await Promise.all(Array.from({ length: 10 }, async () => { while (!stop && n < 200000) { n++; await one(); } })); console.log(JSON.stringify({ ok, codes })); process.exit(0); })();`;
    const c = net.spawn('client', client, [process.execPath, '-e', clientJs]);
    const WRITES = 30;
    const whole: number[] = [];
    try {
      // Add and remove a listener, change the weights: each a table write, while the client connects.
      for (let i = 0; i < WRITES; i++) {
        if (i % 3 === 0) await plane.install(other);
        else if (i % 3 === 1) await plane.uninstall(other);
        else {
          weights = i % 2 === 0 ? [5, 3, 2] : [1, 1, 1];
          await plane.install(vip);
        }
        if (plane.lastWrite !== 'staged') whole.push(i);
      }
      c.child.stdin!.end();
      await c.exited;
      const r = JSON.parse(c.out.trim().split('\n').pop()!) as { ok: number; codes: Record<string, number> };
      t.diagnostic(`${r.ok} connections during ${WRITES} table writes`);
      assert.deepEqual(whole, [], 'a write fell back to deleting and writing the table again');
      assert.deepEqual(r.codes, {}, `connections failed: ${JSON.stringify(r)}`);
      assert.ok(r.ok >= 500, `only ${r.ok} connections during the writes: nothing was proven`);
      // One more write with no traffic after it: the client's persistence entry is still there.
      weights = [2, 3, 5];
      await plane.install(vip);
      const sticky = net.run(lb, ['nft', 'list', 'map', 'ip', 'portico', 'vip_sticky']).stdout;
      assert.match(sticky, /198\.18\.9\.10 expires/, `the persistence entry did not outlive the writes:\n${sticky}`);
    } finally {
      await plane.uninstall(other).catch(() => undefined);
      await plane.uninstall(vip).catch(() => undefined);
    }
  });
});
