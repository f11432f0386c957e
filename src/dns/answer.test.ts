import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SequenceRng, SeededRng } from '../core/rng.js';
import { serverId, type Server, type ServerId } from '../core/server.js';
import { ServerSet, type ServerStatus } from '../core/server-set.js';
import { chooseTargets, dnsAddressOf, prepareTargets, rotated, weightedSample, type AnswerTarget, type ChooseOptions } from './answer.js';
import { GeoMap } from './geo.js';

function server(name: string, host: string, meta: Record<string, string> = {}, weight = 1, backup = false): Server {
  return Object.freeze({ id: serverId('web', name), name, host, port: 80, weight, backup, maxConnections: 0, meta: Object.freeze(meta) });
}

function setOf(servers: Server[], status: Record<string, Partial<ServerStatus>> = {}, version = 1): ServerSet {
  const m = new Map<ServerId, ServerStatus>();
  for (const s of servers) m.set(s.id, { admin: status[s.name]?.admin ?? 'ready', op: status[s.name]?.op ?? 'up' });
  return ServerSet.build(servers, m, version);
}

const names = (ts: readonly AnswerTarget[]): string[] => ts.map((t) => t.server.name);

const base: ChooseOptions = {
  policy: 'roundrobin',
  answers: 0,
  cursor: 0,
  rng: new SeededRng(1),
  location: { region: undefined, prefixBits: 0 },
  geo: undefined,
};

describe('dns answer: which servers an answer holds', () => {
  const a = server('a', '192.0.2.1');
  const b = server('b', '192.0.2.2');
  const c = server('c', '192.0.2.3');
  const v6 = server('v6', '2001:db8::1');
  const named = server('named', 'web.internal');
  const viaDns = server('viaDns', '10.0.0.9', { dnsAddress: '198.51.100.9' });

  it('the address is dnsAddress, else the host when it is an IP', () => {
    assert.equal(dnsAddressOf(a), '192.0.2.1');
    assert.equal(dnsAddressOf(viaDns), '198.51.100.9');
    assert.equal(dnsAddressOf(named), undefined);
  });

  it('A takes IPv4 servers, AAAA IPv6 ones, SRV every server', () => {
    const set = setOf([a, v6, named, viaDns]);
    assert.deepEqual(names(prepareTargets(set, 'A').available), ['a', 'viaDns']);
    assert.deepEqual(names(prepareTargets(set, 'AAAA').available), ['v6']);
    assert.deepEqual(names(prepareTargets(set, 'SRV').available), ['a', 'v6', 'named', 'viaDns']);
    assert.equal(prepareTargets(set, 'SRV').available.find((t) => t.server.name === 'named')!.address, undefined);
  });

  it('a down, draining or maint server is not available; `all` keeps every server but maint', () => {
    const set = setOf([a, b, c], { a: { op: 'down' }, b: { admin: 'drain' }, c: { admin: 'maint' } });
    const p = prepareTargets(set, 'A');
    assert.deepEqual(names(p.available), []);
    assert.deepEqual(names(p.all), ['a', 'b']);
  });

  it('roundrobin rotates by the cursor and keeps `answers` records', () => {
    const list = prepareTargets(setOf([a, b, c]), 'A').available;
    assert.deepEqual(names(chooseTargets(list, { ...base, cursor: 0 })), ['a', 'b', 'c']);
    assert.deepEqual(names(chooseTargets(list, { ...base, cursor: 1 })), ['b', 'c', 'a']);
    assert.deepEqual(names(chooseTargets(list, { ...base, cursor: 5, answers: 2 })), ['c', 'a']);
    // over a whole cycle each server leads exactly once
    const leads = [0, 1, 2].map((cursor) => chooseTargets(list, { ...base, cursor, answers: 1 })[0]!.server.name);
    assert.deepEqual(leads.sort(), ['a', 'b', 'c']);
  });

  it('answers are new arrays: the shared, frozen list is never mutated', () => {
    const list = prepareTargets(setOf([a, b, c]), 'A').available;
    assert.ok(Object.isFrozen(list));
    const before = names(list);
    for (let cursor = 0; cursor < 10; cursor++) {
      const out = chooseTargets(list, { ...base, cursor });
      assert.notEqual(out, list);
      out.reverse();
    }
    assert.deepEqual(names(list), before);
    assert.deepEqual(rotated([1, 2, 3], -1, 3), [3, 1, 2]);
  });

  it('first answers the first available server in configuration order (failover)', () => {
    const set = setOf([a, b, c], { a: { op: 'down' } });
    const list = prepareTargets(set, 'A').available;
    assert.deepEqual(names(chooseTargets(list, { ...base, policy: 'first', cursor: 7 })), ['b']);
    assert.deepEqual(names(chooseTargets(list, { ...base, policy: 'first', answers: 2 })), ['b', 'c']);
  });

  it('all answers every available server, unrotated', () => {
    const list = prepareTargets(setOf([a, b, c]), 'A').available;
    assert.deepEqual(names(chooseTargets(list, { ...base, policy: 'all', cursor: 2 })), ['a', 'b', 'c']);
  });

  it('weighted draws distinct servers in proportion to their weights', () => {
    const heavy = server('heavy', '192.0.2.7', {}, 3);
    const list = prepareTargets(setOf([a, heavy]), 'A').available;
    const rng = new SeededRng(42);
    const firsts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const out = weightedSample(list, 2, rng);
      assert.equal(new Set(names(out)).size, 2);
      firsts.set(out[0]!.server.name, (firsts.get(out[0]!.server.name) ?? 0) + 1);
    }
    const share = (firsts.get('heavy') ?? 0) / 4000;
    assert.ok(Math.abs(share - 0.75) < 0.03, `heavy first in ${share}`);
    // a fixed random sequence gives a fixed answer
    assert.deepEqual(names(chooseTargets(list, { ...base, policy: 'weighted', answers: 1, rng: new SequenceRng([0.1]) })), ['a']);
    assert.deepEqual(names(chooseTargets(list, { ...base, policy: 'weighted', answers: 1, rng: new SequenceRng([0.5]) })), ['heavy']);
  });

  describe('geo and nearest', () => {
    const eu1 = server('eu1', '192.0.2.11', { region: 'eu' });
    const eu2 = server('eu2', '192.0.2.12', { site: 'eu' });
    const us1 = server('us1', '192.0.2.21', { region: 'us' });
    const ap1 = server('ap1', '192.0.2.31', { region: 'ap' });
    const geo = new GeoMap({
      regions: { eu: ['10.1.0.0/16'], us: ['10.2.0.0/16'], ap: ['10.3.0.0/16'], euLab: ['10.1.9.0/24'] },
      fallback: { eu: ['us', 'ap'], ap: ['us'] },
      proximity: { ap: { ap: 0, us: 100, eu: 150 }, eu: { eu: 0, us: 80, ap: 150 } },
    });

    it('clients are placed by the longest matching prefix', () => {
      assert.equal(geo.locate('10.1.2.3').region, 'eu');
      assert.equal(geo.locate('10.1.9.3').region, 'euLab');
      assert.equal(geo.locate('10.9.0.1').region, undefined);
      assert.equal(geo.locate('::ffff:10.2.0.1').region, 'us');
    });

    it('geo answers with the client region, then its fallback regions in order, then everything', () => {
      const all = [eu1, eu2, us1, ap1];
      const at = (region: string | undefined, down: Record<string, Partial<ServerStatus>> = {}): string[] => {
        const list = prepareTargets(setOf(all, down), 'A').available;
        return names(chooseTargets(list, { ...base, policy: 'geo', geo, location: { region, prefixBits: 16 } })).sort();
      };
      assert.deepEqual(at('eu'), ['eu1', 'eu2']);
      assert.deepEqual(at('us'), ['us1']);
      assert.deepEqual(at('eu', { eu1: { op: 'down' }, eu2: { op: 'down' } }), ['us1']);
      assert.deepEqual(at('eu', { eu1: { op: 'down' }, eu2: { op: 'down' }, us1: { op: 'down' } }), ['ap1']);
      assert.deepEqual(at(undefined), ['ap1', 'eu1', 'eu2', 'us1']);
      // a region with no server and no fallback: every available server
      assert.deepEqual(at('euLab'), ['ap1', 'eu1', 'eu2', 'us1']);
    });

    it('nearest answers with the servers at the smallest distance', () => {
      const all = [eu1, eu2, us1, ap1];
      const near = (region: string, down: Record<string, Partial<ServerStatus>> = {}): string[] => {
        const list = prepareTargets(setOf(all, down), 'A').available;
        return names(chooseTargets(list, { ...base, policy: 'nearest', geo, location: { region, prefixBits: 16 } })).sort();
      };
      assert.deepEqual(near('ap'), ['ap1']);
      assert.deepEqual(near('ap', { ap1: { op: 'down' } }), ['us1']);
      assert.deepEqual(near('eu', { eu1: { op: 'down' } }), ['eu2']);
      assert.deepEqual(near('eu', { eu1: { op: 'down' }, eu2: { op: 'down' } }), ['us1']);
      // no proximity row for the client: every available server
      assert.deepEqual(near('us'), ['ap1', 'eu1', 'eu2', 'us1']);
    });
  });
});
