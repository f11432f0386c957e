import { strict as assert } from 'node:assert';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { Etcd3 } from 'etcd3';
import { createPortico, type Portico } from '../../app/app.js';
import type { Logger } from '../../observability/logger.js';
import { startEtcd, skipWithoutEtcd, type EtcdProcess } from '../../test-helpers/etcd.js';
import { freePort, startOrigins, waitFor, type Origin } from '../../test-helpers/origins.js';
import { answers, discoveryPortico, readyNames as names, recorder } from '../../test-helpers/discovery.js';

function portico(discovery: unknown, log: Logger, health: unknown = { type: 'tcp', interval: '100ms', timeout: '2s', rise: 1, fall: 1 }): Portico {
  return discoveryPortico(discovery, log, { health, admin: false });
}

async function get(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return `${res.status} ${await res.text()}`;
}

describe('file discovery', () => {
  let origins: Origin[];
  let dir: string;
  before(async () => {
    origins = await startOrigins(3);
    dir = mkdtempSync(join(tmpdir(), 'portico-disc-'));
  });
  after(async () => {
    for (const o of origins) await o.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the listed servers, follows edits and renames, keeps the last good list on a bad file or an empty one', async (t) => {
    const file = join(dir, 'servers.yaml');
    const write = (text: string): void => {
      // Replace by a rename, as deploy tools do.
      writeFileSync(file + '.tmp', text);
      renameSync(file + '.tmp', file);
    };
    const [o1, o2, o3] = origins as [Origin, Origin, Origin];
    write(`- { name: a, address: ${o1.address} }\n- { name: b, address: ${o2.address} }\n`);
    const { log, lines } = recorder();
    const p = portico({ type: 'file', path: file }, log);
    await p.start();
    try {
      const port = p.address('web')!.port;
      // The first list is in before the listener accepts.
      assert.deepEqual(names(p), ['a', 'b']);
      assert.deepEqual([...(await answers(port, 6))].sort(), ['200 o1', '200 o2']);

      const t0 = performance.now();
      write(JSON.stringify({ servers: [{ name: 'b', address: o2.address }, { name: 'c', address: o3.address, weight: 2 }] }));
      await waitFor(() => names(p).join() === 'b,c', 15_000, 'b and c');
      t.diagnostic(`file rewritten -> pool changed: ${(performance.now() - t0).toFixed(0)} ms`);
      await waitFor(async () => !(await answers(port, 6)).has('200 o1'), 15_000, 'o1 to leave');
      assert.deepEqual([...(await answers(port, 6))].sort(), ['200 o2', '200 o3']);
      // Server b was kept by name: same runtime, requests counted across the change.
      assert.ok(p.pools.get('web')!.byName('b')!.requests >= 3);

      write('- { name: d, address: nowhere }\n');
      await waitFor(() => lines.some((l) => /invalid servers \(the list is refused\)/.test(l)), 15_000, 'the refusal');
      assert.deepEqual(names(p), ['b', 'c']);

      write('[]\n');
      await waitFor(() => lines.some((l) => /empty server list after 2 server\(s\) is ignored/.test(l)), 15_000, 'the empty-list warning');
      assert.deepEqual(names(p), ['b', 'c']);
      assert.deepEqual([...(await answers(port, 4))].sort(), ['200 o2', '200 o3']);
    } finally {
      await p.stop(100);
    }
  });

  it('discovered servers get the pool health checks: one that does not answer goes down', async () => {
    const file = join(dir, 'health.json');
    const dead = await freePort();
    writeFileSync(file, JSON.stringify([{ name: 'live', address: origins[0]!.address }, { name: 'dead', address: `127.0.0.1:${dead}` }]));
    const p = portico({ type: 'file', path: file }, recorder().log);
    await p.start();
    try {
      await waitFor(() => p.pools.get('web')!.byName('dead')?.op === 'down', 15_000, 'dead to be down');
      assert.equal(p.pools.get('web')!.byName('live')!.op, 'up');
      const port = p.address('web')!.port;
      assert.deepEqual([...(await answers(port, 6))], ['200 o1']);
    } finally {
      await p.stop(100);
    }
  });

  it('admin API changes apply to discovered servers by name and outlive a new list; registering is refused', async () => {
    const file = join(dir, 'admin.yaml');
    writeFileSync(file, `- { name: a, address: ${origins[0]!.address} }\n- { name: b, address: ${origins[1]!.address} }\n`);
    const p = createPortico(
      {
        admin: { listen: '127.0.0.1:0' },
        stateDir: join(dir, 'admin-state'),
        listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', health: { type: 'none' }, discovery: { type: 'file', path: file } }],
      },
      { logger: recorder().log },
    );
    await p.start();
    try {
      const api = p.admin!.url;
      const patch = await fetch(`${api}/api/v1/pools/web/servers/a`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"state":"drain"}' });
      assert.equal(patch.status, 200, await patch.text());
      assert.equal(p.pools.get('web')!.byName('a')!.admin, 'drain');
      writeFileSync(file, `- { name: a, address: ${origins[0]!.address}, weight: 5 }\n- { name: b, address: ${origins[1]!.address} }\n`);
      await waitFor(() => p.pools.get('web')!.byName('a')!.server.weight === 5, 15_000, 'the new weight of a');
      assert.equal(p.pools.get('web')!.byName('a')!.admin, 'drain');
      const add = await fetch(`${api}/api/v1/pools/web/servers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'c', address: origins[2]!.address }) });
      assert.equal(add.status, 409);
      assert.match(await add.text(), /come from discovery \(file\)/);
    } finally {
      await p.stop(100);
    }
  });

  it('a reload keeps the discovered servers (the file lists none)', async () => {
    const file = join(dir, 'reload.yaml');
    writeFileSync(file, `- { name: a, address: ${origins[0]!.address} }\n`);
    const { log } = recorder();
    const config = (retries: number) => ({
      admin: { enabled: false },
      listeners: [{ name: 'web', protocol: 'http', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', retries, health: { type: 'none' }, discovery: { type: 'file', path: file } }],
    });
    const p = createPortico(config(1), { logger: log });
    await p.start();
    try {
      assert.deepEqual(names(p), ['a']);
      await p.reload(config(2));
      assert.deepEqual(names(p), ['a']);
      assert.equal(await get(p.address('web')!.port), '200 o1');
    } finally {
      await p.stop(100);
    }
  });
});

/** An authoritative DNS server for the test: SRV and A answers that the test changes, or SERVFAIL. */
class TestDns {
  srv: { target: string; port: number; priority: number; weight: number }[] = [];
  a = new Map<string, string[]>();
  servfail = false;
  queries = 0;
  private sock: UdpSocket | undefined;
  port = 0;

  async start(): Promise<void> {
    const sock = createSocket('udp4');
    this.sock = sock;
    sock.on('message', (msg, rinfo) => {
      this.queries++;
      let q: dnsPacket.Packet;
      try {
        q = dnsPacket.decode(msg);
      } catch {
        return;
      }
      const question = q.questions?.[0];
      if (question === undefined) return;
      const answers: dnsPacket.Answer[] = [];
      if (!this.servfail) {
        if (question.type === 'SRV') {
          for (const r of this.srv) answers.push({ type: 'SRV', name: question.name, ttl: 5, data: { target: r.target, port: r.port, priority: r.priority, weight: r.weight } });
        } else if (question.type === 'A') {
          for (const ip of this.a.get(question.name) ?? []) answers.push({ type: 'A', name: question.name, ttl: 5, data: ip });
        }
      }
      const flags = dnsPacket.AUTHORITATIVE_ANSWER | (this.servfail ? 2 : 0);
      const res = dnsPacket.encode({ type: 'response', id: q.id ?? 0, flags, questions: [question], answers });
      sock.send(res, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    this.port = sock.address().port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.sock === undefined ? resolve() : this.sock.close(() => resolve())));
  }
}

describe('dns-srv discovery', () => {
  let origins: Origin[];
  let dns: TestDns;
  before(async () => {
    origins = await startOrigins(3);
    dns = new TestDns();
    await dns.start();
  });
  after(async () => {
    for (const o of origins) await o.close();
    await dns.close();
  });

  it('resolves SRV then A, refreshes, keeps the last good list on SERVFAIL, lower priority records are backups', async () => {
    const [o1, o2, o3] = origins as [Origin, Origin, Origin];
    dns.a.set('s1.web.test', ['127.0.0.1']);
    dns.a.set('s2.web.test', ['127.0.0.1']);
    dns.srv = [
      { target: 's1.web.test', port: o1.port, priority: 10, weight: 1 },
      { target: 's2.web.test', port: o2.port, priority: 10, weight: 3 },
      { target: 's2.web.test', port: o2.port, priority: 10, weight: 3 }, // a duplicate record
    ];
    const { log, lines } = recorder();
    const p = portico({ type: 'dns-srv', name: '_http._tcp.web.test', refresh: '200ms', nameservers: [`127.0.0.1:${dns.port}`] }, log, { type: 'none' });
    await p.start();
    try {
      const pool = p.pools.get('web')!;
      assert.deepEqual(names(p), [`s1.web.test-${o1.port}`, `s2.web.test-${o2.port}`]);
      assert.equal(pool.byName(`s2.web.test-${o2.port}`)!.server.weight, 3);
      const port = p.address('web')!.port;
      assert.deepEqual([...(await answers(port, 8))].sort(), ['200 o1', '200 o2']);

      dns.servfail = true;
      const before = dns.queries;
      await waitFor(() => lines.some((l) => /SRV lookup failed: ESERVFAIL/.test(l)), 15_000, 'the SERVFAIL warning');
      assert.ok(dns.queries > before);
      assert.deepEqual(names(p), [`s1.web.test-${o1.port}`, `s2.web.test-${o2.port}`]);
      assert.deepEqual([...(await answers(port, 8))].sort(), ['200 o1', '200 o2']);

      dns.servfail = false;
      dns.a.set('s3.web.test', ['127.0.0.1']);
      dns.srv = [
        { target: 's3.web.test', port: o3.port, priority: 10, weight: 1 },
        { target: 's1.web.test', port: o1.port, priority: 20, weight: 1 },
      ];
      // Back-off after the failure is at most a few seconds.
      await waitFor(() => names(p).join() === `s1.web.test-${o1.port},s3.web.test-${o3.port}`, 8000, 'the new SRV set');
      assert.equal(pool.byName(`s1.web.test-${o1.port}`)!.server.backup, true);
      await waitFor(async () => (await answers(port, 6)).size === 1, 15_000, 'o2 to leave');
      assert.deepEqual([...(await answers(port, 6))], ['200 o3']);

      dns.srv = [];
      await waitFor(() => lines.some((l) => /empty server list after 2 server\(s\) is ignored/.test(l)), 15_000, 'the empty-list warning');
      assert.deepEqual(names(p), [`s1.web.test-${o1.port}`, `s3.web.test-${o3.port}`]);
    } finally {
      await p.stop(100);
    }
  });

  it('type dns: the A records of a name with a fixed port', async () => {
    dns.a.set('all.web.test', ['127.0.0.1']);
    const p = portico({ type: 'dns', name: 'all.web.test', port: origins[1]!.port, refresh: '1s', nameservers: [`127.0.0.1:${dns.port}`] }, recorder().log, { type: 'none' });
    await p.start();
    try {
      assert.deepEqual(names(p), [`all.web.test-${origins[1]!.port}`]);
      assert.equal(await get(p.address('web')!.port), '200 o2');
    } finally {
      await p.stop(100);
    }
  });
});

describe('etcd discovery', { skip: skipWithoutEtcd() }, () => {
  let etcd: EtcdProcess;
  let origins: Origin[];
  let client: Etcd3;
  before(async () => {
    etcd = await startEtcd();
    origins = await startOrigins(3);
    client = new Etcd3({ hosts: etcd.endpoint });
  });
  after(async () => {
    client?.close();
    for (const o of origins ?? []) await o.close();
    await etcd?.stop();
  });

  it('servers registered under the prefix join; a deleted key leaves; a key whose lease expires leaves', async (t) => {
    const [o1, o2, o3] = origins as [Origin, Origin, Origin];
    await client.put('/portico/pools/web/a').value(JSON.stringify({ address: o1.address, weight: 2 }));
    await client.put('/portico/pools/web/b').value(o2.address);
    await client.put('/portico/pools/other/x').value(o3.address); // another prefix: not ours
    const { log, lines } = recorder();
    const p = portico({ type: 'etcd', url: `etcd://127.0.0.1:${etcd.port}/portico/pools/web` }, log, { type: 'none' });
    await p.start();
    try {
      assert.deepEqual(names(p), ['a', 'b']);
      assert.equal(p.pools.get('web')!.byName('a')!.server.weight, 2);
      const port = p.address('web')!.port;
      assert.deepEqual([...(await answers(port, 6))].sort(), ['200 o1', '200 o2']);

      // A server that registers with a lease, and then dies (its keep-alives stop).
      const lease = client.lease(2, { autoKeepAlive: false });
      const t0 = performance.now();
      await lease.put('/portico/pools/web/c').value(JSON.stringify({ address: o3.address }));
      await waitFor(() => names(p).join() === 'a,b,c', 15_000, 'c to join');
      const t1 = performance.now();
      t.diagnostic(`etcd put -> server in the pool: ${(t1 - t0).toFixed(0)} ms`);
      await client.delete().key('/portico/pools/web/a');
      await waitFor(() => names(p).join() === 'b,c', 15_000, 'a to leave');
      // etcd expires the lease within a few seconds of its TTL.
      await waitFor(() => names(p).join() === 'b', 10_000, 'c to expire');
      t.diagnostic(`lease of 2 s without keep-alive -> server gone: ${(performance.now() - t1).toFixed(0)} ms after it joined`);

      await client.put('/portico/pools/web/bad').value('{"address": "nowhere"}');
      await waitFor(() => lines.some((l) => /key \/portico\/pools\/web\/bad is not a valid server/.test(l)), 15_000, 'the bad entry warning');
      assert.deepEqual(names(p), ['b']);
      assert.deepEqual([...(await answers(port, 4))], ['200 o2']);
    } finally {
      await p.stop(100);
    }
  });

  it('etcd unreachable at start: start() does not hang, the failure is logged, the pool has no server (503)', async () => {
    const { log, lines } = recorder();
    const closed = await freePort();
    const p = portico({ type: 'etcd', url: `etcd://127.0.0.1:${closed}/portico/pools/web` }, log, { type: 'none' });
    const t0 = Date.now();
    await p.start();
    try {
      assert.ok(Date.now() - t0 < 8000, `start took ${Date.now() - t0} ms`);
      await waitFor(() => lines.some((l) => /discovery etcd .* failed: .*no server list yet|no list yet/.test(l)), 10_000, 'the failure to be logged');
      assert.equal(p.pools.get('web')!.size, 0);
      const res = await fetch(`http://127.0.0.1:${p.address('web')!.port}/`);
      assert.equal(res.status, 503);
      await res.arrayBuffer();
    } finally {
      await p.stop(100);
    }
  });

  it('etcd down: the last list stays and requests are still served', async () => {
    const { log, lines } = recorder();
    await client.delete().prefix('/portico/pools/down/');
    await client.put('/portico/pools/down/a').value(origins[0]!.address);
    const p = portico({ type: 'etcd', url: `etcd://127.0.0.1:${etcd.port}/portico/pools/down` }, log, { type: 'none' });
    await p.start();
    try {
      assert.deepEqual(names(p), ['a']);
      await etcd.stop();
      await waitFor(() => lines.some((l) => /discovery etcd .* failed/.test(l)), 15_000, 'the failure to be reported');
      assert.deepEqual(names(p), ['a']);
      assert.equal(await get(p.address('web')!.port), '200 o1');
    } finally {
      await p.stop(100);
    }
  });
});
